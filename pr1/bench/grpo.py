"""`pr1 bench grpo`: one GRPO step per backend (`hf`, `unsloth`): time, peak memory and the rollout's share.

Each backend runs `pr1 rl`'s trainer in its own process (so that peak memory is its own) on the same model,
prompts and settings for `steps` RL steps; the figures are those of the last step (the first includes warm-up),
read back from the run's metrics.jsonl. Trajectories have a fixed shape: a `ForcedSchedule` forks at
`fork_after` tokens, closes paths after `path_tokens` and summaries after `summary_tokens`, and suppresses EOS,
so every trajectory is exactly `max_tokens` long whatever the weights (`mode` free: no forks, EOS suppressed).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pr1.bench.common import backends_report, run_backends, run_child
from pr1.bench.report import Report, num
from pr1.jsonl import read_jsonl

_SHAPE = ("mode", "batch", "samples", "max_tokens", "fork_after", "path_tokens", "summary_tokens")
SETTINGS = {
    "cpu": dict(mode="fork", batch=2, samples=8, max_tokens=64, fork_after=20, path_tokens=10, summary_tokens=6,
                micro_batch=8, rollout_batch=64, lora_r=16, steps=2),
    "cuda": dict(mode="fork", batch=8, samples=8, max_tokens=1024, fork_after=256, path_tokens=256,
                 summary_tokens=64, micro_batch=8, rollout_batch=64, lora_r=32, steps=2),
    "quick": dict(mode="fork", batch=1, samples=2, max_tokens=24, fork_after=6, path_tokens=4, summary_tokens=3,
                  micro_batch=2, rollout_batch=64, lora_r=4, steps=1),
}  # fmt: skip


def child(backend: str, out: Path, settings: dict[str, Any]) -> None:
    """Runs in the benchmark's child process: `pr1 rl` with forced trajectory shapes."""
    from pr1.backends import import_unsloth_first, pick_backend

    if pick_backend(backend, "causal")[0] == "unsloth":
        import_unsloth_first()
    from pr1.models import load_tokenizer
    from pr1.rl.config import RLConfig
    from pr1.rl.rollout import EngineRollout
    from pr1.rl.trainer import train
    from pr1.rollout import ForcedSchedule

    s = settings
    cfg = RLConfig(
        **{"model": s["model"], "data": "gsm8k", "limit": s["batch"], "reward": "alternating", "mode": s["mode"],
         "backend": backend, "batch": s["batch"], "samples": s["samples"], "steps": s["steps"],
         "max_tokens": s["max_tokens"], "micro_batch": s["micro_batch"], "rollout_batch": s["rollout_batch"],
         "lora_r": s["lora_r"],
         "save_every": 0, "log_rollouts": 0}
    )  # fmt: skip
    tokenizer = load_tokenizer(
        s["model"]
    )  # a folder saved with the tags (pr1.bench.common.saved_bench_model)
    fork = s["mode"] == "fork"
    forced = ForcedSchedule.for_tokenizer(
        tokenizer,
        fork_after=s["fork_after"] if fork else None,
        path_tokens=s["path_tokens"] if fork else None,
        summary_tokens=s["summary_tokens"] if fork else None,
    )
    train(cfg, out, rollout_func=EngineRollout(cfg, tokenizer, cfg.backend, logits_processor=forced))


def run_backend(backend: str, model: str, out: Path, settings: dict[str, Any]) -> dict[str, Any]:
    error = run_child(["-m", "pr1.bench.grpo", backend, str(out), json.dumps({**settings, "model": model})])
    if error:
        return {"backend": backend, "error": error}
    rows = read_jsonl(out / "metrics.jsonl")
    last = rows[-1]
    step = last["time_rollout"] + last["time_scoring"] + last["time_update"]
    return {
        "backend": backend,
        "step_time_s": step,
        "time_rollout_s": last["time_rollout"],
        "time_scoring_s": last["time_scoring"],
        "time_update_s": last["time_update"],
        "rollout_share": last["time_rollout"] / step,
        "rollout_tokens_per_s": last["tokens_per_s"],
        "peak_memory_gb": max(r["memory_gb"] for r in rows),
        "response_tokens_mean": last["response_tokens_mean"],
    }


def grpo_report(
    model: str, workdir: Path, settings: dict[str, Any], backends: tuple[str, ...], log: Callable[[str], None]
) -> Report:
    """One row per backend (figures, or why it was skipped or failed); unsloth relative to hf when both ran."""
    results = run_backends(
        "grpo", backends, lambda b: run_backend(b, model, workdir / f"grpo-{b}", settings), log
    )
    columns = ["backend", "step (s)", "rollout (s)", "scoring (s)", "update (s)", "rollout share",
               "rollout tokens/s", "peak memory (GB)"]  # fmt: skip
    shape = ", ".join(f"{k}={settings[k]}" for k in _SHAPE)
    return backends_report(
        "grpo",
        f"GRPO step (the last of {settings['steps']}), {shape}",
        columns,
        results,
        settings,
        row=lambda r: [
            r["backend"],
            num(r["step_time_s"], 2),
            num(r["time_rollout_s"], 2),
            num(r["time_scoring_s"], 2),
            num(r["time_update_s"], 2),
            f"{r['rollout_share']:.0%}",
            num(r["rollout_tokens_per_s"]),
            num(r["peak_memory_gb"], 2),
        ],  # fmt: skip
        compared=("step_time_s", "peak_memory_gb"),
        comparison=lambda q: (
            f"unsloth vs hf: {q['step_time_s']:.2f}x the step time, {q['peak_memory_gb']:.2f}x the peak memory"
        ),
    )


if __name__ == "__main__":  # the child process of `run_backend`
    child(sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3]))
