"""The rollout engine's config and outputs (the contract eval, RL, chat and the dashboard code against)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from pr1.errors import Pr1Error

if TYPE_CHECKING:
    from pr1.structured import TagIds

MODES = ("fork", "free", "structured")

Prompt = str | Sequence[dict] | Sequence[int]  # raw text, chat messages, or token ids


@dataclass
class RolloutConfig:
    # "fork" (reference fork/join runtime) | "free" (one causal stream, no runtime insertion) |
    # "structured" (paths decoded in parallel at multiverse positions, their caches merged at the join)
    mode: str = "fork"
    num_paths: int = 2  # paths forked at each <Parallel>
    max_blocks: int = 4  # after the last allowed block the main text goes on without forking
    max_path_tokens: int = 4096  # tokens a path may sample (its </Path> included)
    max_tokens: int = 3000  # total response budget (all generated + inserted tokens of a trajectory)
    max_prompt_tokens: int = 2000  # longer prompts are truncated from the left (and flagged)
    temperature: float = 1.0  # 0 = greedy
    top_p: float = 1.0
    top_k: int = 0  # 0 = off
    seed: int | None = None  # reproducible for a seed
    mask_inserted: bool = True  # False = reference behaviour: runtime-inserted tokens are trained on
    batch_size: int = 64  # trajectories decoded at once (their paths decode alongside)
    compile: bool = False  # torch.compile the model's forward (GPU)

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> RolloutConfig:
        """The rollout part of a job's config (an eval or RL config): every field of the same name."""
        values = {f.name: getattr(settings, f.name) for f in fields(cls) if hasattr(settings, f.name)}
        return cls(**{**values, **overrides})

    def __post_init__(self) -> None:
        checks = {
            "mode": (self.mode in MODES, f"one of {', '.join(MODES)}"),
            "num_paths": (self.num_paths >= 1, ">= 1"),
            "max_blocks": (self.max_blocks >= 0, ">= 0"),
            "max_path_tokens": (self.max_path_tokens >= 1, ">= 1"),
            "max_tokens": (self.max_tokens >= 1, ">= 1"),
            "max_prompt_tokens": (self.max_prompt_tokens >= 1, ">= 1"),
            "temperature": (self.temperature >= 0, ">= 0"),
            "top_p": (0 < self.top_p <= 1, "in (0, 1]"),
            "top_k": (self.top_k >= 0, ">= 0"),
            "batch_size": (self.batch_size >= 1, ">= 1"),
        }
        for name, (ok, expected) in checks.items():
            if not ok:
                raise Pr1Error(f"rollout {name}={getattr(self, name)!r}: expected {expected}")


@dataclass
class Trajectory:
    prompt_ids: list[int]
    completion_ids: list[int]  # the response in layout order: main, <Parallel>, path 1, path 2, ...
    logprobs: list[float]  # sampling log-prob per completion token (0.0 for inserted tokens)
    inserted: list[bool]  # True where the runtime inserted the token
    text: str  # tagged text of the completion (tags written literally; a final EOS left out)
    generated_tokens: int  # tokens sampled by the model
    critical_path_tokens: int  # main + summaries + longest path per block
    parallel_positions: list[float]  # token index of each <Parallel> / completion length
    truncated: bool  # hit max_tokens (or was stopped) before EOS
    prompt_index: int  # which prompt it came from
    sample_index: int  # which sample of that prompt
    prompt_truncated: bool = False  # the prompt was cut to max_prompt_tokens (from the left)


@dataclass
class TokenEvent:
    trajectory: int  # index in the output list (prompt_index * n + sample_index)
    segment: str  # "main" | "path" | "summary"
    block: int | None  # 0-based block number for path/summary segments
    path: int | None  # 0-based path number within the block for "path"
    token_id: int  # -1 for an event that carries no token (the final one; held-back text)
    text: str  # decoded text this token adds (tags as literal text)
    inserted: bool
    done: bool = False  # True once the trajectory is finished (a final event per trajectory)


def encode_prompt(tokenizer: Any, prompt: Prompt) -> list[int]:
    """Token ids of a prompt: raw text as is, chat messages through the chat template (with the generation
    prompt), token ids unchanged. Every rollout engine encodes prompts this way."""
    if isinstance(prompt, str):
        text = prompt
    elif prompt and all(isinstance(x, int) for x in prompt):
        return list(prompt)  # type: ignore[arg-type]
    elif prompt and all(isinstance(m, dict) for m in prompt):
        text = tokenizer.apply_chat_template(list(prompt), add_generation_prompt=True, tokenize=False)
    else:
        raise Pr1Error("a prompt must be a string, a list of chat messages or a list of token ids")
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def make_trajectory(
    tokenizer: Any,
    tag_ids: TagIds,
    eos_ids: Collection[int],
    *,
    prompt_ids: list[int],
    completion_ids: list[int],
    logprobs: list[float],
    inserted: list[bool],
    truncated: bool,
    prompt_index: int,
    sample_index: int,
    prompt_truncated: bool,
) -> Trajectory:
    """A finished trajectory with its derived fields (text, counts, positions) computed the one way every
    engine reports them: the text decoded with the tags kept and a final EOS left out, the critical path
    read from the multiverse positions of `pr1.structured.build_structure`."""
    from pr1.structured import build_structure

    ids = completion_ids
    text_ids = ids[:-1] if ids and ids[-1] in eos_ids else ids
    positions = build_structure(ids, tag_ids).position_ids
    opening = tag_ids.parallel_open
    return Trajectory(
        prompt_ids=prompt_ids,
        completion_ids=ids,
        logprobs=logprobs,
        inserted=inserted,
        text=tokenizer.decode(text_ids, skip_special_tokens=False),
        generated_tokens=len(ids) - sum(inserted),
        critical_path_tokens=max(positions) + 1 if positions else 0,
        parallel_positions=[i / len(ids) for i, tok in enumerate(ids) if tok == opening],
        truncated=truncated,
        prompt_index=prompt_index,
        sample_index=sample_index,
        prompt_truncated=prompt_truncated,
    )
