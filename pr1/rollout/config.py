"""The rollout engine's config and outputs (the contract eval, RL, chat and the dashboard code against)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from pr1.errors import Pr1Error
from pr1.settings import Settings, setting

if TYPE_CHECKING:
    from pr1.structured import TagIds

MODES = ("fork", "free", "structured")
ENGINES = ("auto", "hf", "vllm")  # pr1.rollout.engines

Prompt = str | Sequence[dict] | Sequence[int]  # raw text, chat messages, or token ids


@dataclass
class RolloutConfig(Settings):
    """The rollout engine's settings (METHOD.md §5). The jobs that sample (`pr1 eval`, `pr1 rl`, `pr1 chat`)
    extend this class, so each setting is declared here once."""

    mode: str = setting(
        "fork",
        "How paths are decoded: fork = the reference fork/join runtime, free = one causal stream (the model "
        "writes every tag), structured = paths decoded in parallel at multiverse positions, caches merged.",
        choices=MODES,
    )
    num_paths: int = setting(2, "Paths forked at each <Parallel>.", min=1)
    max_blocks: int = setting(
        4, "Parallel blocks per response; after the last the text goes on unforked.", min=0
    )
    max_path_tokens: int = setting(4096, "Tokens a path may sample (its </Path> included).", min=1)
    max_tokens: int = setting(3000, "Response budget in tokens, paths and inserted tags included.", min=1)
    max_prompt_tokens: int = setting(2000, "Longer prompts are cut from the left (and flagged).", min=1)
    temperature: float = setting(1.0, "Sampling temperature (0 = greedy).", min=0)
    top_p: float = setting(1.0, "Nucleus sampling mass.", above=0, max=1)
    top_k: int = setting(0, "Top-k sampling (0 = off).", min=0)
    seed: int | None = setting(None, "Sampling seed (samples are reproducible for a seed).", shown="random")
    rollout_batch: int = setting(
        64, "Trajectories decoded at once (their paths decode alongside): the rollout's memory knob.", min=1
    )
    compile: bool = setting(False, "torch.compile the model's forward pass (GPU).")
    engine: str = setting(
        "auto",
        "Rollout engine: hf (pr1's decoder on transformers: every mode), vllm (vLLM: fork and free), auto "
        "(vllm where it is installed, the mode allows it and the job repays its start-up; else hf).",
        choices=ENGINES,
    )

    @classmethod
    def of(cls, settings: RolloutConfig) -> RolloutConfig:
        """The engine's part of a job's settings (an `EvalConfig`, `RLConfig`, ... extends this class)."""
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls)})


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
