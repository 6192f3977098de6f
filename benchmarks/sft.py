"""SFT throughput and peak memory per backend (`hf`, `unsloth`) on the same model, data and settings.

Each backend trains in its own `pr1 sft` process (so peak memory is its own) for a few optimizer steps; the
figures are read back from the run's metrics.jsonl: median tokens/s over the steps after the first (which
includes warm-up), and the peak memory (GPU: torch's peak allocation; CPU: the process's peak RSS).

    python benchmarks/sft.py                        # hf and unsloth (skipped where unavailable)
    python benchmarks/sft.py --backends hf --steps 6 --micro-batch 2 --max-length 512
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

SETTINGS = {
    "model": "smollm2-135m",
    "data": "parallel-gsm8k-sample",
    "steps": 6,
    "micro_batch": 2,
    "max_length": 512,
    "lora_r": 16,
    "quant": "auto",
}


def unavailable(backend: str) -> str | None:
    """Why `backend` cannot run here, or None."""
    import torch

    from pr1.sft.backends import unsloth_available

    if backend == "unsloth" and not torch.cuda.is_available():
        return "needs a CUDA GPU"
    if backend == "unsloth" and not unsloth_available():
        return "Unsloth is not installed"
    return None


def device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{torch.get_num_threads()}-thread CPU ({platform.processor() or platform.machine()})"


def run_backend(backend: str, workdir: Path, **settings: Any) -> dict[str, Any]:
    """Train `steps` steps with one backend in a child process and summarise its metrics."""
    s = {**SETTINGS, **settings}
    out = workdir / backend
    cmd = [
        sys.executable, "-m", "pr1", "sft",
        "--model", s["model"], "--data", s["data"], "--out", str(out), "--backend", backend,
        "--max-steps", str(s["steps"]), "--batch", str(s["micro_batch"]), "--micro-batch", str(s["micro_batch"]),
        "--max-length", str(s["max_length"]), "--lora-r", str(s["lora_r"]), "--quant", s["quant"],
        "--lr", "1e-4", "--format-check", "0", "--save-every", "1000000", "--keep-checkpoints", "1",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"backend": backend, "error": tail[0]}
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "loss" in r]
    steady = [r["tokens_per_s"] for r in rows[1:]] or [rows[0]["tokens_per_s"]]
    info = json.loads((out / "run.json").read_text())
    return {
        "backend": backend,
        "quant": info.get("quant"),
        "tokens_per_s": statistics.median(steady),
        "peak_memory_gb": max(r["memory_gb"] for r in rows),
        "steps": len(rows),
        "loss_first": rows[0]["loss"],
        "loss_last": rows[-1]["loss"],
    }


def bench_sft(backends: tuple[str, ...] = ("hf", "unsloth"), **settings: Any) -> dict[str, Any]:
    """{"device", "settings", "results": one row per backend (figures, or "skipped" / "error" with why)}.
    When both ran: unsloth's tokens/s and memory relative to hf (targets: >= 1.5x and <= 0.6x)."""
    results = []
    with tempfile.TemporaryDirectory(prefix="pr1-bench-sft-") as tmp:
        for backend in backends:
            why = unavailable(backend)
            results.append(
                {"backend": backend, "skipped": why} if why else run_backend(backend, Path(tmp), **settings)
            )
    out: dict[str, Any] = {"device": device_name(), "settings": {**SETTINGS, **settings}, "results": results}
    by = {r["backend"]: r for r in results if "tokens_per_s" in r}
    if "hf" in by and "unsloth" in by:
        out["unsloth_vs_hf"] = {
            "tokens_per_s": by["unsloth"]["tokens_per_s"] / by["hf"]["tokens_per_s"],
            "peak_memory": by["unsloth"]["peak_memory_gb"] / by["hf"]["peak_memory_gb"],
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="hf,unsloth", help="comma-separated: hf, unsloth")
    for key, value in SETTINGS.items():
        parser.add_argument("--" + key.replace("_", "-"), type=type(value), default=value)
    args = vars(parser.parse_args())
    backends = tuple(b.strip() for b in args.pop("backends").split(",") if b.strip())
    result = bench_sft(backends, **args)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
