"""What the benchmarks share: the machine's description, which backends can run, the benchmark model, and
running one backend's training in a child process (so that its peak memory is its own)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from pr1.backends import unsloth_available
from pr1.bench.report import Report
from pr1.models import EMBEDDED_MODEL, add_tag_tokens, load_model, load_tokenizer, qwen3_config, save_model
from pr1.processes import child_env


def device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{_cpu_model()}, {os.cpu_count()} cores, torch threads: {torch.get_num_threads()}"


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def environment() -> dict[str, str]:
    """The device and the library versions a figure depends on."""
    import transformers
    import trl

    return {
        "device": device_name(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "python": platform.python_version(),
    }


def unavailable(backend: str) -> str | None:
    """Why a training backend cannot run here, or None."""
    if backend not in ("hf", "unsloth"):
        return f"unknown backend {backend!r} (hf or unsloth)"
    if backend == "unsloth" and not torch.cuda.is_available():
        return "needs a CUDA GPU"
    if backend == "unsloth" and not unsloth_available():
        return "Unsloth is not installed"
    return None


def default_model() -> str:
    """The embedded model on CPU; on CUDA a random-weight Qwen3-0.6B (no weights need downloading)."""
    return "qwen3-0.6b" if torch.cuda.is_available() else EMBEDDED_MODEL


def is_random_qwen3(name: str) -> bool:
    return name.lower().startswith("qwen3-") and "/" not in name


def load_bench_model(name: str, dtype: str = "auto") -> tuple[Any, Any]:
    """(model, tokenizer) with the tags. `qwen3-<size>` (0.6b, 1.7b, 4b): a random-weight Qwen3 of that
    architecture with the embedded tokenizer, for speed and memory figures without downloading weights."""
    if not is_random_qwen3(name):
        return load_model(name, dtype=dtype)
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(EMBEDDED_MODEL)
    config = qwen3_config(name)
    config.bos_token_id = config.eos_token_id = tokenizer.eos_token_id
    config.pad_token_id = tokenizer.pad_token_id
    cuda = torch.cuda.is_available()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16 if cuda else torch.float32)
    add_tag_tokens(model, tokenizer)
    return model.to("cuda" if cuda else "cpu").eval(), tokenizer


def saved_bench_model(name: str, folder: Path) -> str:
    """The benchmark model saved (with the tags) in `folder`, for training commands run as child processes;
    reused when already there. Returns the folder."""
    if not (folder / "config.json").is_file():
        model, tokenizer = load_bench_model(name)
        save_model(model, tokenizer, folder)
        del model
    return str(folder)


def run_child(cmd: list[str]) -> str | None:
    """Run a benchmark child process; None on success, else its last line of output (the error). The child
    dies with this process (`pr1.processes`: even when this one is killed), and is killed when this one stops
    waiting for it (Ctrl-C, SIGTERM)."""
    proc = subprocess.run([sys.executable, *cmd], capture_output=True, text=True, env=child_env())
    if proc.returncode == 0:
        return None
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
    return tail[0]


def settings_for(table: dict[str, dict[str, Any]], quick: bool) -> dict[str, Any]:
    """A benchmark's settings: its `quick` ones for a smoke run, else those for this machine's device."""
    return dict(table["quick" if quick else "cuda" if torch.cuda.is_available() else "cpu"])


def run_backends(
    job: str, backends: tuple[str, ...], run: Callable[[str], dict[str, Any]], log: Callable[[str], None]
) -> list[dict[str, Any]]:
    """`run(backend)` for each backend that can run here; {"backend", "skipped": why} for the others."""
    results = []
    for backend in backends:
        why = unavailable(backend)
        log(f"{job} {backend}: " + (f"skipped ({why})" if why else "running"))
        results.append({"backend": backend, "skipped": why} if why else run(backend))
    return results


def backends_report(
    name: str,
    title: str,
    columns: list[str],
    results: list[dict[str, Any]],
    settings: dict[str, Any],
    *,
    row: Callable[[dict[str, Any]], list[str]],
    compared: tuple[str, ...],
    comparison: Callable[[dict[str, float]], str],
) -> Report:
    """A table with a row per backend: `row(result)` for one that ran (it has the `compared` figures), the
    reason for one skipped or failed; and unsloth's `compared` figures over hf's, as `comparison` words it."""
    rows = [row(r) if all(k in r for k in compared) else _not_run_row(r, len(columns)) for r in results]
    figures: dict[str, Any] = {"results": results}
    notes = []
    by = {r["backend"]: r for r in results if all(k in r for k in compared)}
    if "hf" in by and "unsloth" in by:
        ratio = {k: by["unsloth"][k] / by["hf"][k] for k in compared}
        figures["unsloth_vs_hf"] = ratio
        notes.append(comparison(ratio))
    failed = any("error" in r for r in results)
    return Report(name, title, columns, rows, notes, settings, figures, failed)


def _not_run_row(result: dict[str, Any], width: int) -> list[str]:
    why = result.get("skipped") or f"failed: {result.get('error')}"
    return [result["backend"], *["-"] * (width - 2), why]
