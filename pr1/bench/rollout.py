"""`pr1 bench rollout` and `pr1 bench structured`: the rollout engine's throughput against plain
`model.generate`, and structured mode's latency against one causal stream (figures in docs/BENCHMARKS.md).

Every run produces a fixed number of tokens per trajectory: EOS is suppressed, and in fork mode a
`ForcedSchedule` opens a block after `fork_after` main tokens with paths of `path_tokens` tokens and a
summary of `summary_tokens`, until the budget is spent. Throughput counts sampled tokens only (the
runtime's inserted tags are free), per second of wall time, prefill included.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from pr1.bench.report import Report, num, target
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
    tokens: int  # sampled tokens (per round)
    seconds: float  # the median round
    peak_memory_gb: float | None = None  # torch's peak CUDA allocation during the run (None on CPU)
    rounds: list[float] = field(default_factory=list)  # seconds of every round

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds

    @property
    def spread(self) -> str:
        """The tokens/s of the slowest and the fastest round: "71-84" (one round: "")."""
        if len(self.rounds) < 2:
            return ""
        return f"{self.tokens / max(self.rounds):.0f}-{self.tokens / min(self.rounds):.0f}"


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
    repeats: int = 3,
    log: Callable[[str], None] = print,
) -> dict[str, BenchResult]:
    """Runs `generate` (plain HF generation), `free` and `fork` with `trajectories` at once, and `fork`
    one trajectory at a time over the first `sequential` prompts, `repeats` rounds of each in turn (so a busy
    moment of the machine hits every run alike). Returns the results by name, each with its median round."""
    prompts = [build_messages(PROBLEMS[i % len(PROBLEMS)]) for i in range(trajectories)]

    def engine(mode: str, batch_size: int) -> RolloutEngine:
        config = RolloutConfig(
            mode=mode, max_tokens=max_tokens, seed=0, rollout_batch=batch_size, compile=compile
        )
        return RolloutEngine(model, tokenizer, config)

    def timed(name: str, n: int, fn: Callable[[], int]) -> BenchResult:
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        fn_start = time.perf_counter()
        tokens = fn()
        seconds = time.perf_counter() - fn_start
        memory = torch.cuda.max_memory_allocated() / 1e9 if cuda else None
        log(f"{name:>22}: {tokens} tokens in {seconds:.1f}s = {tokens / seconds:.1f} tokens/s")
        return BenchResult(name, n, tokens, seconds, memory, [seconds])

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
    runs = {
        "generate": (
            "model.generate",
            trajectories,
            lambda: _plain_generate(model, tokenizer, prompts, max_tokens),
        ),
        "free": ("engine free", trajectories, run("free", trajectories, trajectories, False)),
        "fork": ("engine fork", trajectories, run("fork", trajectories, trajectories, True)),
        "fork_sequential": ("engine fork, 1 at a time", sequential, run("fork", 1, sequential, True)),
    }
    rounds = [{key: timed(*spec) for key, spec in runs.items()} for _ in range(max(1, repeats))]
    return {key: median_round([r[key] for r in rounds]) for key in runs}


def median_round(results: list[BenchResult]) -> BenchResult:
    """One result from several rounds of the same run: the median round's time, every round's kept."""
    ordered = sorted(results, key=lambda r: r.seconds)
    middle = ordered[len(ordered) // 2]
    memory = [r.peak_memory_gb for r in results if r.peak_memory_gb is not None]
    rounds = [s for r in results for s in r.rounds]
    return BenchResult(
        middle.name, middle.trajectories, middle.tokens, middle.seconds, max(memory, default=None), rounds
    )


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


@dataclass
class StructuredResult:
    tokens: int  # completion tokens of the response (inserted tags included)
    critical_path_tokens: int
    structured_s: float
    causal_s: float

    @property
    def ideal(self) -> float:
        return self.tokens / self.critical_path_tokens

    @property
    def speedup(self) -> float:
        return self.causal_s / self.structured_s

    @property
    def efficiency(self) -> float:
        return self.speedup / self.ideal


def structured_benchmark(
    model,  # noqa: ANN001
    tokenizer,  # noqa: ANN001
    *,
    blocks: int = 2,
    paths: int = 4,
    path_tokens: int = 32,
    main_tokens: int = 8,
    summary_tokens: int = 8,
    tail_tokens: int = 8,
    repeats: int = 3,
    log: Callable[[str], None] = print,
) -> StructuredResult:
    """Latency of one response with `blocks` blocks of `paths` paths of `path_tokens` sampled tokens each
    (`main_tokens` before each block, summaries of `summary_tokens`, `tail_tokens` after the last block; EOS
    suppressed) in `structured` mode, against decoding the same number of tokens as one causal stream
    (`free` mode). Best of `repeats` for each."""
    prompt = [build_messages(PROBLEMS[0])]
    newline = len(tokenizer.encode("\n", add_special_tokens=False))
    block = main_tokens + 1 + paths * (path_tokens + 2) + 2 + newline + summary_tokens + 1
    total = blocks * block + tail_tokens

    def timed(mode: str, **forced: object) -> tuple[float, int, int]:
        config = RolloutConfig(mode=mode, num_paths=paths, max_blocks=blocks, max_tokens=total, seed=0,
                               max_path_tokens=path_tokens + 1, rollout_batch=1)  # fmt: skip
        eng = RolloutEngine(model, tokenizer, config)
        schedule = ForcedSchedule.for_tokenizer(tokenizer, eos=eng.eos_ids, **forced)  # type: ignore[arg-type]
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            (t,) = eng.generate(prompt, logits_processor=schedule)
            best = min(best, time.perf_counter() - start)
        return best, len(t.completion_ids), t.critical_path_tokens

    timed("free")  # warm-up
    s, tokens, critical = timed(
        "structured", fork_after=main_tokens, path_tokens=path_tokens, summary_tokens=summary_tokens
    )
    if tokens != total:
        raise RuntimeError(f"structured response of {tokens} tokens, expected {total}")
    c, causal_tokens, _ = timed("free")
    if causal_tokens != total:
        raise RuntimeError(f"causal response of {causal_tokens} tokens, expected {total}")
    result = StructuredResult(tokens, critical, s, c)
    log(
        f"{blocks} blocks x {paths} paths x {path_tokens} tokens: {tokens} tokens, critical path {critical}; "
        f"structured {s:.2f}s, causal {c:.2f}s: speedup {result.speedup:.2f}x of ideal {result.ideal:.2f}x "
        f"= {result.efficiency:.0%}"
    )
    return result


def logprob_gaps(
    model,  # noqa: ANN001
    tokenizer,  # noqa: ANN001
    *,
    modes: tuple[str, ...] = ("structured", "fork"),
    trajectories: int = 4,
    max_tokens: int = 160,
    fork_after: int = 16,
    path_tokens: int = 24,
    summary_tokens: int = 12,
) -> dict[str, tuple[float, float]]:
    """The RL diagnostic `logprob_gap_mean/max` for the structured variant, per sampling mode: |sampling -
    scoring| log-prob over the sampled tokens, scoring being the trainer's structured pass
    (`pr1.rl.trainer.score_completions`) over trajectories with forced blocks (2 paths, up to 2 blocks)."""
    from pr1.rl.trainer import score_completions

    prompts = [build_messages(PROBLEMS[i % len(PROBLEMS)]) for i in range(trajectories)]
    out = {}
    for mode in modes:
        config = RolloutConfig(mode=mode, max_tokens=max_tokens, max_blocks=2, seed=0)
        eng = RolloutEngine(model, tokenizer, config)
        forced = dict(fork_after=fork_after, path_tokens=path_tokens, summary_tokens=summary_tokens)
        schedule = ForcedSchedule.for_tokenizer(tokenizer, eos=eng.eos_ids, **forced)  # type: ignore[arg-type]
        trajs = eng.generate(prompts, logits_processor=schedule)
        P = max(len(t.prompt_ids) for t in trajs)
        C = max(len(t.completion_ids) for t in trajs)
        ids = torch.zeros(len(trajs), P + C, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for k, t in enumerate(trajs):  # TRL's layout: prompts left-padded, completions right-padded
            p, c = len(t.prompt_ids), len(t.completion_ids)
            ids[k, P - p : P + c] = torch.tensor(t.prompt_ids + t.completion_ids)
            mask[k, P - p : P + c] = 1
        with torch.no_grad():
            scored, _, _ = score_completions(
                model, ids, mask, C, eng.tag_ids, structured=True, pad_id=0, batch_size=len(trajs)
            )
        gaps = [
            abs(scored[k, i].item() - lp)
            for k, t in enumerate(trajs)
            for i, (lp, ins) in enumerate(zip(t.logprobs, t.inserted, strict=True))
            if not ins
        ]
        out[mode] = (sum(gaps) / len(gaps), max(gaps))
    return out


# The settings of `pr1 bench rollout` / `structured`: on CPU those of docs/BENCHMARKS.md, on CUDA larger
# batches and responses, `quick` for a smoke run.
ROLLOUT_SETTINGS = {
    "cpu": dict(
        trajectories=16,
        sequential=4,
        max_tokens=256,
        fork_after=48,
        path_tokens=40,
        summary_tokens=16,
        repeats=3,
    ),
    "cuda": dict(
        trajectories=64,
        sequential=4,
        max_tokens=1024,
        fork_after=192,
        path_tokens=160,
        summary_tokens=64,
        repeats=3,
    ),
    "quick": dict(
        trajectories=4, sequential=1, max_tokens=32, fork_after=8, path_tokens=6, summary_tokens=4, repeats=1
    ),
}
STRUCTURED_SETTINGS = {
    "cpu": dict(paths=(2, 4, 8), blocks=2, path_tokens=32, repeats=3, gaps=True),
    "cuda": dict(paths=(2, 4, 8), blocks=2, path_tokens=256, repeats=3, gaps=True),
    "quick": dict(paths=(2,), blocks=1, path_tokens=8, repeats=1, gaps=False),
}


def rollout_report(model, tokenizer, settings: dict, log: Callable[[str], None] = print) -> Report:  # noqa: ANN001
    """`rollout_benchmark` as a table, with the ratios its targets are about."""
    results = rollout_benchmark(model, tokenizer, **settings, log=log)
    ratios = summary(results)
    gpu = torch.cuda.is_available()
    rows = [
        [r.name, str(r.trajectories), f"{r.tokens:,}", num(r.seconds), num(r.tokens_per_s), r.spread]
        + ([num(r.peak_memory_gb, 2)] if gpu else [])
        for r in results.values()
    ]
    n = settings["trajectories"]
    notes = [
        target("fork/join vs model.generate (tokens/s)", ratios["fork_vs_generate"], 0.9),
        f"fork/join vs the engine's plain decoding (free): {ratios['fork_vs_free']:.2f}x",
        target(f"{n} trajectories at once vs one at a time", ratios["batched_vs_sequential"], 4.0),
    ]
    columns = [
        "run",
        "trajectories",
        "sampled tokens",
        "seconds (median round)",
        "tokens/s",
        "slowest-fastest",
    ]
    columns += ["peak GPU memory (GB)"] if gpu else []
    figures = {
        "results": {k: {**vars(r), "tokens_per_s": r.tokens_per_s} for k, r in results.items()},
        **ratios,
    }
    return Report("rollout", "Rollout engine throughput", columns, rows, notes, settings, figures)


def structured_report(model, tokenizer, settings: dict, log: Callable[[str], None] = print) -> Report:  # noqa: ANN001
    """`structured_benchmark` for each number of paths (and `logprob_gaps` when `gaps`) as a table."""
    s = dict(settings)
    gaps = s.pop("gaps")
    rows, figures = [], {}
    for paths in s.pop("paths"):
        r = structured_benchmark(model, tokenizer, paths=paths, log=log, **s)
        rows.append(
            [str(paths), str(r.tokens), str(r.critical_path_tokens), num(r.structured_s, 2), num(r.causal_s, 2),
             f"{r.speedup:.2f}x", f"{r.ideal:.2f}x", f"{r.efficiency:.0%}"]
        )  # fmt: skip
        figures[f"paths_{paths}"] = {
            **vars(r),
            "speedup": r.speedup,
            "ideal": r.ideal,
            "efficiency": r.efficiency,
        }
    goal = 0.8 if torch.cuda.is_available() else 0.6
    notes = [
        f"target: at least {goal:.0%} of the ideal speedup ({'GPU' if goal == 0.8 else 'CPU'}): "
        + ", ".join(
            f"{p.removeprefix('paths_')} paths {'met' if f['efficiency'] >= goal else 'MISSED'}"
            for p, f in figures.items()
        )
    ]
    if gaps:
        for mode, (mean, worst) in logprob_gaps(model, tokenizer).items():
            notes.append(
                f"logprob_gap under structured scoring, {mode} sampling: mean {mean:.1e}, max {worst:.1e}"
            )
            figures[f"logprob_gap_{mode}"] = {"mean": mean, "max": worst}
    columns = ["paths", "response tokens", "critical path", "structured (s)", "causal (s)", "speedup", "ideal",
               "of ideal"]  # fmt: skip
    title = (
        f"Structured mode: {s['blocks']} blocks x N paths x {s['path_tokens']} tokens vs one causal stream"
    )
    return Report("structured", title, columns, rows, notes, settings, figures)
