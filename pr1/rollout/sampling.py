"""Token sampling: temperature, top-k, top-p, counter-based randomness, logits processors.

Randomness: each sampled token draws one uniform number from a hash of (seed, prompt key, sample index,
block, path, token index) and picks its token by inverting the cumulative distribution. A trajectory's
tokens therefore depend only on the seed, its own key and the model's logits — not on which other
trajectories share the batch, how many paths run beside it, or in which step it is decoded.

Log-probs: the engine reports log_softmax(logits / temperature) of the model's own logits for the sampled
token — before top-k/top-p truncation, logits processors and the engine's `<Parallel>` ban — which is what
a trainer recomputes from the model for importance ratios (TRL's GRPO divides by the same temperature).
With temperature 0 (greedy) they are at temperature 1.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from pr1.models import tag_token_ids

FORCED_LOGIT = 1e4  # high enough that a forced token takes all the probability mass


@dataclass(frozen=True)
class SampleContext:
    """Where a token is about to be sampled, for logits processors."""

    trajectory: int
    prompt_index: int
    sample_index: int
    segment: str  # "main" | "path" | "summary"
    block: int | None
    path: int | None
    segment_tokens: int  # tokens already sampled in this segment (inserted tags not counted)
    completion_tokens: int  # tokens of the trajectory so far (all paths included)


LogitsProcessor = Callable[[Sequence[SampleContext], torch.Tensor], torch.Tensor]


def uniform(*key: int) -> float:
    """A uniform number in [0, 1) determined by the integers in `key`."""
    digest = hashlib.blake2b(struct.pack(f"<{len(key)}q", *key), digest_size=8).digest()
    return (int.from_bytes(digest, "little") >> 11) / 2.0**53


def sample(
    logits: torch.Tensor,
    uniforms: Sequence[float],
    *,
    temperature: float,
    top_p: float = 1.0,
    top_k: int = 0,
    processed: torch.Tensor | None = None,
) -> tuple[list[int], list[float]]:
    """One token per row of `logits` [S, V] (float32), and its log-prob under the model's distribution at
    `temperature`. `processed` (the logits after processors and bans) is what is sampled from, when given."""
    scale = temperature if temperature > 0 else 1.0
    logp = torch.log_softmax(logits / scale, dim=-1)
    z = logits if processed is None else processed
    if temperature == 0:
        tokens = z.argmax(-1)
    else:
        z = z / temperature
        index = None
        if top_k or top_p < 1:
            k = min(top_k or z.shape[-1], z.shape[-1])
            z, index = z.sort(-1, descending=True) if top_p < 1 else z.topk(k, -1)
            z = z[:, :k]
        probs = torch.softmax(z, dim=-1)
        if top_p < 1:  # keep the smallest prefix (by probability) that reaches top_p
            probs = probs.masked_fill(probs.cumsum(-1) - probs >= top_p, 0.0)
        cdf = probs.double().cumsum(-1)
        u = torch.tensor(uniforms, dtype=torch.float64, device=cdf.device)
        pick = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None], right=True).clamp_(max=cdf.shape[-1] - 1)
        tokens = (pick if index is None else index[:, :k].gather(1, pick)).squeeze(1)
    chosen = logp.gather(1, tokens[:, None]).squeeze(1)
    return tokens.tolist(), chosen.tolist()


@dataclass
class ForcedSchedule:
    """A logits processor that forces the shape of traces (tests, benchmarks): `<Parallel>` once a main
    segment has `fork_after` sampled tokens, `</Path>` once a path has `path_tokens` (one number, or one per
    path), `</Summary>` once a summary has `summary_tokens`; EOS never, when `suppress_eos`. The engine's
    own rules still apply on top (no `<Parallel>` in paths, summaries, or after `max_blocks`)."""

    parallel_open: int
    path_close: int
    summary_close: int
    eos: tuple[int, ...]
    fork_after: int | None = None
    path_tokens: int | Sequence[int] | None = None
    summary_tokens: int | None = None
    suppress_eos: bool = True

    @classmethod
    def for_tokenizer(cls, tokenizer, eos: Sequence[int] = (), **kwargs: object) -> ForcedSchedule:  # noqa: ANN001
        """Tag ids from `tokenizer`; EOS ids `eos` (the engine's `eos_ids`), else the tokenizer's EOS."""
        tags = tag_token_ids(tokenizer)
        eos = tuple(eos) or ((tokenizer.eos_token_id,) if tokenizer.eos_token_id is not None else ())
        return cls(tags["<Parallel>"], tags["</Path>"], tags["</Summary>"], eos, **kwargs)  # type: ignore[arg-type]

    def __call__(self, contexts: Sequence[SampleContext], logits: torch.Tensor) -> torch.Tensor:
        for i, c in enumerate(contexts):
            if c.segment == "main":
                at, token = self.fork_after, self.parallel_open
            elif c.segment == "summary":
                at, token = self.summary_tokens, self.summary_close
            else:
                at = self.path_tokens
                if isinstance(at, Sequence):
                    at = at[min(c.path or 0, len(at) - 1)]
                token = self.path_close
            if at is not None and c.segment_tokens == at:
                logits[i, token] = FORCED_LOGIT
            if self.suppress_eos:
                logits[i, list(self.eos)] = float("-inf")
        return logits
