"""`pr1 bench sft`: SFT throughput and peak memory per backend (`hf`, `unsloth`) on the same model, data and
settings.

Each backend trains in its own `pr1 sft` process (so that peak memory is its own) for a few optimizer steps; the
figures are read back from the run's metrics.jsonl: median tokens/s over the steps after the first (which
includes warm-up), and the peak memory (GPU: torch's peak allocation; CPU: the process's peak RSS).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pr1.bench.common import backends_report, run_backends, run_child
from pr1.bench.report import Report, num, target
from pr1.jsonl import read_jsonl

SETTINGS = {
    "cpu": dict(data="parallel-gsm8k-sample", steps=6, micro_batch=2, max_length=512, lora_r=16, quant="auto"),
    "cuda": dict(data="parallel-gsm8k-sample", steps=8, micro_batch=4, max_length=2048, lora_r=32, quant="auto"),
    "quick": dict(data="parallel-gsm8k-sample", steps=2, micro_batch=1, max_length=512, lora_r=4, quant="auto"),
}  # fmt: skip


def run_backend(backend: str, model: str, out: Path, s: dict[str, Any]) -> dict[str, Any]:
    """Train `steps` steps with one backend in a child process and summarise its metrics."""
    error = run_child(
        ["-m", "pr1", "sft", "--model", model, "--data", s["data"], "--out", str(out), "--backend", backend,
         "--max-steps", str(s["steps"]), "--batch", str(s["micro_batch"]), "--micro-batch", str(s["micro_batch"]),
         "--max-length", str(s["max_length"]), "--lora-r", str(s["lora_r"]), "--quant", s["quant"],
         "--lr", "1e-4", "--format-check", "0", "--save-every", "1000000", "--keep-checkpoints", "1"]
    )  # fmt: skip
    if error:
        return {"backend": backend, "error": error}
    rows = [r for r in read_jsonl(out / "metrics.jsonl") if "loss" in r]
    steady = [r["tokens_per_s"] for r in rows[1:]] or [rows[0]["tokens_per_s"]]
    info = json.loads((out / "run.json").read_text(encoding="utf-8"))
    return {
        "backend": backend,
        "quant": info.get("quant"),
        "tokens_per_s": statistics.median(steady),
        "peak_memory_gb": max(r["memory_gb"] for r in rows),
        "steps": len(rows),
        "loss_first": rows[0]["loss"],
        "loss_last": rows[-1]["loss"],
    }


def sft_report(
    model: str, workdir: Path, settings: dict[str, Any], backends: tuple[str, ...], log: Callable[[str], None]
) -> Report:
    """One row per backend (figures, or why it was skipped or failed); unsloth relative to hf when both ran
    (targets: at least 1.5x the tokens/s and at most 0.6x the peak memory)."""
    results = run_backends(
        "sft", backends, lambda b: run_backend(b, model, workdir / f"sft-{b}", settings), log
    )
    columns = ["backend", "quantization", "tokens/s", "peak memory (GB)", "loss (first → last step)"]
    return backends_report(
        "sft",
        f"SFT, {settings['steps']} optimizer steps per backend",
        columns,
        results,
        settings,
        row=lambda r: [
            r["backend"],
            str(r["quant"]),
            num(r["tokens_per_s"]),
            num(r["peak_memory_gb"], 2),
            f"{r['loss_first']:.2f} → {r['loss_last']:.2f}",
        ],  # fmt: skip
        compared=("tokens_per_s", "peak_memory_gb"),
        comparison=lambda q: (
            f"{target('unsloth vs hf tokens/s', q['tokens_per_s'], 1.5)}; unsloth vs hf peak memory: "
            f"{q['peak_memory_gb']:.2f}x (target: at most 0.6x): {'met' if q['peak_memory_gb'] <= 0.6 else 'MISSED'}"
        ),
    )
