"""One GRPO step per backend (`hf`, `unsloth`): time, peak memory and the rollout's share of the step.

Each backend runs `pr1 rl` in its own process (so peak memory is its own) on the same model, prompts and
settings, for `steps` RL steps; the figures are those of the last step (the first includes warm-up), read
back from the run's metrics.jsonl. Trajectories have a fixed shape: a pr1.rollout.ForcedSchedule forks at
`fork_after` tokens, closes paths after `path_tokens` and summaries after `summary_tokens`, and suppresses
EOS, so every trajectory is exactly `max_tokens` long whatever the weights (`--mode free`: no forks, EOS
suppressed only).

Model: on CUDA a random-weight Qwen3 (`pr1.models.qwen3_config(size)`, with the embedded tokenizer and the
tags); on CPU the embedded SmolLM2-135M with small settings.

    PR1_DATA_DIR=../shared/data python benchmarks/grpo.py                   # hf and unsloth where available
    PR1_DATA_DIR=../shared/data python benchmarks/grpo.py --backends hf --max-tokens 64
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

CPU_SETTINGS = {
    "model": "smollm2-135m",
    "mode": "fork",  # "free": no forks, EOS suppressed only
    "batch": 2,  # prompts per step
    "group": 8,
    "max_tokens": 64,
    "fork_after": 20,
    "path_tokens": 10,
    "summary_tokens": 6,
    "micro_batch": 8,
    "lora_r": 16,
    "steps": 2,
}
GPU_SETTINGS = {
    "model": "qwen3-0.6b",
    "mode": "fork",
    "batch": 8,
    "group": 8,
    "max_tokens": 1024,
    "fork_after": 256,
    "path_tokens": 256,
    "summary_tokens": 64,
    "micro_batch": 8,
    "lora_r": 32,
    "steps": 2,
}


def default_settings() -> dict[str, Any]:
    import torch

    return dict(GPU_SETTINGS if torch.cuda.is_available() else CPU_SETTINGS)


def unavailable(backend: str) -> str | None:
    import torch

    from pr1.rl.backends import unsloth_available

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


def prepare_model(name: str, folder: Path) -> str:
    """The benchmark's model saved in `folder` with the tags in its tokenizer; returns the folder.
    `qwen3-<size>`: a random-weight Qwen3 (pr1.models.qwen3_config) with the embedded tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM

    from pr1.models import (
        EMBEDDED_MODEL,
        add_tag_tokens,
        load_model,
        load_tokenizer,
        qwen3_config,
        save_model,
    )

    if name.startswith("qwen3-"):
        tokenizer = load_tokenizer(EMBEDDED_MODEL)
        config = qwen3_config(name)
        config.bos_token_id = config.eos_token_id = tokenizer.eos_token_id
        config.pad_token_id = tokenizer.pad_token_id
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
        add_tag_tokens(model, tokenizer)
    else:
        model, tokenizer = load_model(name, device="cpu")
    save_model(model, tokenizer, folder)
    return str(folder)


def child(backend: str, out: Path, settings: dict[str, Any]) -> None:
    """Runs in the benchmark's child process: `pr1 rl` with forced trajectory shapes."""
    from pr1.models import load_tokenizer
    from pr1.rl.config import resolve
    from pr1.rl.rollout import EngineRollout
    from pr1.rl.trainer import train
    from pr1.rollout import ForcedSchedule

    cfg = resolve(
        {
            "model": settings["model"],
            "data": "gsm8k",
            "limit": settings["batch"],
            "reward": "alternating",
            "mode": settings["mode"],
            "backend": backend,
            "batch": settings["batch"],
            "group": settings["group"],
            "steps": settings["steps"],
            "max_tokens": settings["max_tokens"],
            "micro_batch": settings["micro_batch"],
            "lora_r": settings["lora_r"],
            "save_every": 0,
            "log_rollouts": 0,
        }
    )
    tokenizer = load_tokenizer(settings["model"])  # a folder saved with the tags (see `prepare_model`)
    fork = settings["mode"] == "fork"
    forced = ForcedSchedule.for_tokenizer(
        tokenizer,
        fork_after=settings["fork_after"] if fork else None,
        path_tokens=settings["path_tokens"] if fork else None,
        summary_tokens=settings["summary_tokens"] if fork else None,
    )
    train(cfg, out, rollout_func=EngineRollout(cfg, tokenizer, cfg.backend, logits_processor=forced))


def run_backend(backend: str, workdir: Path, settings: dict[str, Any]) -> dict[str, Any]:
    out = workdir / backend
    cmd = [
        sys.executable,
        __file__,
        "--child",
        backend,
        "--out",
        str(out),
        "--settings",
        json.dumps(settings),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"backend": backend, "error": tail[0]}
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    last = rows[-1]
    step = last["time_rollout"] + last["time_scoring"] + last["time_update"]
    return {
        "backend": backend,
        "step_time_s": round(step, 3),
        "time_rollout_s": round(last["time_rollout"], 3),
        "time_scoring_s": round(last["time_scoring"], 3),
        "time_update_s": round(last["time_update"], 3),
        "rollout_share": round(last["time_rollout"] / step, 3),
        "rollout_tokens_per_s": round(last["tokens_per_s"], 1),
        "peak_memory_gb": round(max(r["memory_gb"] for r in rows), 3),
        "response_tokens_mean": last["response_tokens_mean"],
        "blocks_mean": last["blocks_mean"],
    }


def bench_grpo(backends: tuple[str, ...] = ("hf", "unsloth"), **settings: Any) -> dict[str, Any]:
    """{"device", "settings", "results": one row per backend (figures, or "skipped"/"error" with why)},
    plus unsloth's step time and memory relative to hf when both ran."""
    s = {**default_settings(), **settings}
    results = []
    with tempfile.TemporaryDirectory(prefix="pr1-bench-grpo-") as tmp:
        s["model"] = prepare_model(s["model"], Path(tmp) / "model")
        for backend in backends:
            why = unavailable(backend)
            results.append(
                {"backend": backend, "skipped": why} if why else run_backend(backend, Path(tmp), s)
            )
    out: dict[str, Any] = {
        "device": device_name(),
        "settings": {**default_settings(), **settings},
        "results": results,
    }
    by = {r["backend"]: r for r in results if "step_time_s" in r}
    if "hf" in by and "unsloth" in by:
        out["unsloth_vs_hf"] = {
            "step_time": by["unsloth"]["step_time_s"] / by["hf"]["step_time_s"],
            "peak_memory": by["unsloth"]["peak_memory_gb"] / by["hf"]["peak_memory_gb"],
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="hf,unsloth", help="comma-separated: hf, unsloth")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--settings", help=argparse.SUPPRESS)
    for key, value in {**CPU_SETTINGS}.items():
        parser.add_argument("--" + key.replace("_", "-"), type=type(value), default=None)
    args = vars(parser.parse_args())
    if args["child"]:
        child(args["child"], Path(args["out"]), json.loads(args["settings"]))
        return
    backends = tuple(b.strip() for b in args.pop("backends").split(",") if b.strip())
    overrides = {k: v for k, v in args.items() if k in CPU_SETTINGS and v is not None}
    print(json.dumps(bench_grpo(backends, **overrides), indent=2))


if __name__ == "__main__":
    main()
