"""Throughput of the rollout engine against plain `model.generate` (the figures in docs/BENCHMARKS.md).

Every run produces a fixed number of tokens per trajectory: EOS is suppressed, and in fork mode a
`ForcedSchedule` opens a block after `fork_after` main tokens with paths of `path_tokens` tokens and a
summary of `summary_tokens`, until the budget is spent. Throughput counts sampled tokens only (the
runtime's inserted tags are free), per second of wall time, prefill included.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from pr1.prompts import build_messages
from pr1.rollout.config import RolloutConfig
from pr1.rollout.engine import RolloutEngine
from pr1.rollout.sampling import ForcedSchedule

PROBLEMS = [
    f"A shop sells {a} apples a day at {b} cents each. How many dollars does it take in over {c} days?"
    for a, b, c in [
        (12, 25, 3),
        (40, 10, 7),
        (7, 90, 2),
        (15, 60, 5),
        (33, 5, 9),
        (8, 75, 4),
        (21, 30, 6),
        (50, 2, 8),
    ]
]


@dataclass
class BenchResult:
    name: str
    trajectories: int
    tokens: int  # sampled tokens
    seconds: float

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds


def rollout_benchmark(
    model,  # noqa: ANN001
    tokenizer,  # noqa: ANN001
    *,
    trajectories: int = 16,
    sequential: int = 4,
    max_tokens: int = 256,
    fork_after: int = 48,
    path_tokens: int = 40,
    summary_tokens: int = 16,
    compile: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, BenchResult]:
    """Runs `generate` (plain HF generation), `free` and `fork` with `trajectories` at once, and `fork`
    one trajectory at a time over the first `sequential` prompts. Returns the results by name."""
    prompts = [build_messages(PROBLEMS[i % len(PROBLEMS)]) for i in range(trajectories)]

    def engine(mode: str, batch_size: int) -> RolloutEngine:
        config = RolloutConfig(
            mode=mode, max_tokens=max_tokens, seed=0, batch_size=batch_size, compile=compile
        )
        return RolloutEngine(model, tokenizer, config)

    def timed(name: str, n: int, fn: Callable[[], int]) -> BenchResult:
        fn_start = time.perf_counter()
        tokens = fn()
        result = BenchResult(name, n, tokens, time.perf_counter() - fn_start)
        log(
            f"{name:>22}: {result.tokens} tokens in {result.seconds:.1f}s = {result.tokens_per_s:.1f} tokens/s"
        )
        return result

    def run(mode: str, batch_size: int, n: int, forced: bool) -> Callable[[], int]:
        eng = engine(mode, batch_size)
        kw = (
            dict(fork_after=fork_after, path_tokens=path_tokens, summary_tokens=summary_tokens)
            if forced
            else {}
        )
        schedule = ForcedSchedule.for_tokenizer(tokenizer, eos=eng.eos_ids, **kw)
        return lambda: sum(t.generated_tokens for t in eng.generate(prompts[:n], logits_processor=schedule))

    engine("free", 1).generate(prompts[:1], logits_processor=None)  # warm-up (lazy init, allocator)
    return {
        "generate": timed(
            "model.generate", trajectories, lambda: _plain_generate(model, tokenizer, prompts, max_tokens)
        ),
        "free": timed("engine free", trajectories, run("free", trajectories, trajectories, False)),
        "fork": timed("engine fork", trajectories, run("fork", trajectories, trajectories, True)),
        "fork_sequential": timed("engine fork, 1 at a time", sequential, run("fork", 1, sequential, True)),
    }


def _plain_generate(model, tokenizer, prompts: list, max_tokens: int) -> int:  # noqa: ANN001
    texts = [tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False) for p in prompts]
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    finally:
        tokenizer.padding_side = side
    with torch.inference_mode():
        out = model.generate(
            **batch,
            do_sample=True,
            temperature=1.0,
            top_p=1.0,
            top_k=0,
            max_new_tokens=max_tokens,
            min_new_tokens=max_tokens,
            pad_token_id=tokenizer.pad_token_id,
        )
    return (out.shape[1] - batch["input_ids"].shape[1]) * len(prompts)


def summary(results: dict[str, BenchResult]) -> dict[str, float]:
    """The two ratios the targets are about."""
    return {
        "fork_vs_generate": results["fork"].tokens_per_s / results["generate"].tokens_per_s,
        "fork_vs_free": results["fork"].tokens_per_s / results["free"].tokens_per_s,
        "batched_vs_sequential": results["fork"].tokens_per_s / results["fork_sequential"].tokens_per_s,
    }
