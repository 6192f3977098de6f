"""`pr1 bench rollout` with vLLM: the two rollout engines side by side, in one run, on the same prompts and
token counts: vLLM's plain `LLM.generate`, the vLLM engine in fork and free mode, the hf engine in fork and
free mode (figures in docs/VLLM.md).

As in `pr1.bench.rollout`, every run produces a fixed number of tokens per trajectory: EOS is suppressed
(plain generation: `ignore_eos`), and in fork mode a `ForcedSchedule` opens a block after `fork_after` main
tokens with paths of `path_tokens` tokens and a summary of `summary_tokens`, until the budget is spent.
Throughput counts sampled tokens only (the runtime's inserted tags are free), per second of wall time,
prefill included. Plain generation asks for the sampled tokens' log-probs, as TRL does and as the engine
always does; a second plain row without them shows what they cost. The runs take turns, `repeats` rounds,
and each reports its best round: on a shared machine a neighbour's burst then lands in one round of one run
instead of skewing a ratio.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pr1.bench.report import Report, num, target
from pr1.bench.rollout import PROBLEMS, BenchResult
from pr1.prompts import build_messages
from pr1.rollout.config import RolloutConfig
from pr1.rollout.sampling import ForcedSchedule

# The settings of the comparison: on CPU those of docs/VLLM.md (the hf engine's `pr1 bench rollout` sizes),
# on CUDA larger batches and responses, `quick` for a smoke run.
VLLM_SETTINGS = {
    "cpu": dict(trajectories=16, max_tokens=256, fork_after=48, path_tokens=40, summary_tokens=16, repeats=3),
    "cuda": dict(
        trajectories=64, max_tokens=1024, fork_after=192, path_tokens=160, summary_tokens=64, repeats=3
    ),
    "quick": dict(trajectories=4, max_tokens=32, fork_after=8, path_tokens=6, summary_tokens=4, repeats=1),
}


def engines_benchmark(
    model: Any,
    *,
    trajectories: int = 16,
    max_tokens: int = 256,
    fork_after: int = 48,
    path_tokens: int = 40,
    summary_tokens: int = 16,
    repeats: int = 1,
    hf: bool = True,
    log: Callable[[str], None] = print,
    **llm_kwargs: Any,
) -> dict[str, BenchResult]:
    """Runs, on `trajectories` prompts at once: vLLM `LLM.generate` (with and without log-probs), the vLLM
    engine's fork and free modes, and (when `hf`) the hf engine's fork and free modes on the same weights;
    `repeats` rounds in turn, the best round of each.
    `model`: a model folder or `smollm2-135m` (`llm_kwargs` go to the `vllm.LLM`), or a `VLLMRolloutEngine`
    to use (its `config` is replaced; it is left open). Returns results by name:
    `vllm_generate`, `vllm_generate_no_logprobs`, `vllm_fork`, `vllm_free`, `hf_fork`, `hf_free`."""
    import torch

    from pr1.rollout.vllm_engine import VLLMRolloutEngine

    config = RolloutConfig(max_tokens=max_tokens, seed=0, rollout_batch=trajectories)
    own = not isinstance(model, VLLMRolloutEngine)
    vllm_engine = VLLMRolloutEngine.from_model(model, config, **llm_kwargs) if own else model
    prompts = [build_messages(PROBLEMS[i % len(PROBLEMS)]) for i in range(trajectories)]
    forced = dict(fork_after=fork_after, path_tokens=path_tokens, summary_tokens=summary_tokens)

    def engine_run(engine: Any, mode: str, schedule: dict) -> Callable[[], int]:
        def run() -> int:
            engine.config = RolloutConfig(
                mode=mode, max_tokens=max_tokens, seed=0, rollout_batch=trajectories
            )
            processor = ForcedSchedule.for_tokenizer(engine.tokenizer, eos=engine.eos_ids, **schedule)
            return sum(t.generated_tokens for t in engine.generate(prompts, logits_processor=processor))

        return run

    runs: dict[str, tuple[str, Callable[[], int]]] = {
        "vllm_generate": ("vLLM LLM.generate", _plain_generate(vllm_engine, prompts, max_tokens, True)),
        "vllm_generate_no_logprobs": (
            "vLLM LLM.generate, no log-probs",
            _plain_generate(vllm_engine, prompts, max_tokens, False),
        ),
        "vllm_fork": ("vLLM engine fork", engine_run(vllm_engine, "fork", forced)),
        "vllm_free": ("vLLM engine free", engine_run(vllm_engine, "free", {})),
    }
    engine_run(vllm_engine, "free", {})()  # warm-up: vLLM compiles its sampler's kernels on first use
    if hf:
        from pr1.models import load_model
        from pr1.rollout.engine import RolloutEngine

        path = vllm_engine.llm.llm_engine.model_config.model
        model_, tokenizer = load_model(path, dtype="auto" if torch.cuda.is_available() else "float32")
        hf_engine = RolloutEngine(model_, tokenizer, config)
        runs["hf_fork"] = ("hf engine fork", engine_run(hf_engine, "fork", forced))
        runs["hf_free"] = ("hf engine free", engine_run(hf_engine, "free", {}))
        engine_run(hf_engine, "free", {})()  # warm-up (lazy init, allocator)
    best: dict[str, BenchResult] = {}
    try:
        for round_ in range(repeats):
            for key, (name, fn) in runs.items():
                start = time.perf_counter()
                tokens = fn()
                seconds = time.perf_counter() - start
                log(
                    f"{name:>30} (round {round_ + 1}): {tokens} tokens in {seconds:.1f}s = {tokens / seconds:.1f} tokens/s"
                )
                if key not in best or seconds < best[key].seconds:
                    best[key] = BenchResult(name, trajectories, tokens, seconds)
    finally:
        if own:
            vllm_engine.close()
    return best


def _plain_generate(engine: Any, prompts: list, max_tokens: int, logprobs: bool) -> Callable[[], int]:
    from vllm import SamplingParams

    ids = [{"prompt_token_ids": engine.encode(p)} for p in prompts]
    params = [
        SamplingParams(max_tokens=max_tokens, ignore_eos=True, temperature=1.0, seed=i, logprobs=0 if logprobs else None)
        for i in range(len(prompts))
    ]  # fmt: skip

    def run() -> int:
        outputs = engine.llm.generate(ids, params, use_tqdm=False)
        return sum(len(o.outputs[0].token_ids) for o in outputs)

    return run


def ratios(results: dict[str, BenchResult]) -> dict[str, float]:
    """The ratios the targets are about (tokens/s over tokens/s); the hf ones only when the hf engine ran."""
    speed = {k: r.tokens_per_s for k, r in results.items()}
    out = {"vllm_fork_vs_generate": speed["vllm_fork"] / speed["vllm_generate"]}
    for mode in ("fork", "free"):
        if f"hf_{mode}" in speed:
            out[f"vllm_vs_hf_{mode}"] = speed[f"vllm_{mode}"] / speed[f"hf_{mode}"]
    return out


def faster_engine(results: dict[str, BenchResult]) -> dict[str, str]:
    """Per mode, the engine with the higher tokens/s in this run (what `--engine auto` should pick here)."""
    return {
        mode: max(("vllm", "hf"), key=lambda e: results[f"{e}_{mode}"].tokens_per_s)
        for mode in ("fork", "free")
        if f"hf_{mode}" in results
    }


def engines_report(
    model: Any, settings: dict, log: Callable[[str], None] = print, **llm_kwargs: Any
) -> Report:
    """`engines_benchmark` as a table with its ratios and the faster engine per mode."""
    results = engines_benchmark(model, **settings, log=log, **llm_kwargs)
    r = ratios(results)
    rows = [
        [res.name, str(res.trajectories), f"{res.tokens:,}", num(res.seconds), num(res.tokens_per_s)]
        for res in results.values()
    ]
    notes = [target("vLLM fork vs vLLM LLM.generate (tokens/s)", r["vllm_fork_vs_generate"], 0.9)]
    for mode, engine in faster_engine(results).items():
        notes.append(
            f"{mode}: vLLM {r[f'vllm_vs_hf_{mode}']:.2f}x the hf engine's tokens/s; faster here: {engine} "
            f"(what --engine auto should pick)"
        )
    columns = ["run", "trajectories", "sampled tokens", "seconds (best round)", "tokens/s"]
    figures = {
        "results": {k: {**vars(v), "tokens_per_s": v.tokens_per_s} for k, v in results.items()},
        **r,
        "faster": faster_engine(results),
    }
    return Report(
        "engines", "Rollout engines: vLLM and hf side by side", columns, rows, notes, settings, figures
    )
