"""Helpers for the SFT and export tests: tiny random-weight models saved as folders, and small SFT files."""

from __future__ import annotations

import json
from pathlib import Path

from pr1 import settings
from pr1.commands.sft import FLAGS
from pr1.models import EMBEDDED_MODEL, load_tokenizer, save_model, tiny_model
from pr1.sft.config import MAY_CHANGE_ON_RESUME, Pr1SFTConfig

TRACE = (
    "Add them. <Parallel><Path>{a} plus {b} is {c}.</Path><Path>Count up from {a}: {c}.</Path></Parallel>\n"
    "<Summary>Both give {c}.</Summary> Final Answer: {c}"
)


def model_dir(root: Path, arch: str) -> Path:
    """`tiny_model(arch)` saved under root/arch (once per root) without the tags, like a real base model: loading
    it for training adds them and resizes the embeddings."""
    path = root / arch
    if not path.is_dir():
        model, _ = tiny_model(arch)
        tokenizer = load_tokenizer(EMBEDDED_MODEL)
        model.resize_token_embeddings(len(tokenizer))  # the tags are the last rows
        save_model(model, tokenizer, path)
    return path


def write_sft_rows(path: Path, n: int = 24) -> Path:
    rows = [
        {
            "id": f"r{i}",
            "prompt": [{"role": "user", "content": f"What is {i} + {i + 1}?"}],
            "completion": [{"role": "assistant", "content": TRACE.format(a=i, b=i + 1, c=2 * i + 1)}],
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_problems(path: Path, n: int = 2) -> Path:
    rows = [{"id": f"p{i}", "problem": f"What is {i} + 2?", "answer": str(i + 2)} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def tiny_config(model: Path, data: Path, **overrides: object) -> Pr1SFTConfig:
    """Seconds-long settings: rank 4, batch 2 of micro-batches of 1, 3 steps, lr high enough to move the tags."""
    settings = {
        "lora_r": 4,
        "batch": 2,
        "micro_batch": 1,
        "max_length": 256,
        "max_steps": 3,
        "lr": 1e-2,
        "warmup_ratio": 0.0,
        "save_every": 100,
        "format_check": 0,
        "gradient_checkpointing": False,
        "backend": "hf",
        **overrides,
    }
    return Pr1SFTConfig(model=str(model), data=str(data), **settings)


def resolve_config(flags: dict, stored: dict | None = None, files: tuple = ()) -> Pr1SFTConfig:
    """`pr1 sft`'s resolution of its settings: flags over a resumed run's settings over the --config files."""
    return settings.resolve(
        Pr1SFTConfig, flags, files, saved=stored, may_change=MAY_CHANGE_ON_RESUME, flags=FLAGS
    )
