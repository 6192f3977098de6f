"""The checkpoints and the final model of a training run folder (`pr1 sft`, `pr1 rl`).

    RUN_DIR/checkpoints/step-NNNNNN/   a trainer checkpoint; it counts once COMPLETE is in it
    RUN_DIR/final/                     the trained adapter (or model) and tokenizer; always a complete save

transformers' `Trainer` writes `OUTPUT_DIR/checkpoint-N` (N: optimizer steps); a job points its output dir at
`RUN_DIR/checkpoints` and adopts each one as `step-NNNNNN` (its own step: an RL step is several optimizer
steps), renamed first and marked COMPLETE last, so a checkpoint interrupted while being written is never
resumed from. `final/` is written aside (`.final.partial`) and renamed.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pr1.errors import Pr1Error
from pr1.jsonl import write_json_atomic

CHECKPOINTS_DIR = "checkpoints"
COMPLETE_FILE = "COMPLETE"
FINAL_DIR = "final"
ADAPTER_CONFIG = "adapter_config.json"  # what makes a folder a peft adapter


def checkpoint_dir(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS_DIR / f"step-{step:06d}"


def checkpoint_step(checkpoint: Path) -> int:
    """The step of a `step-NNNNNN` folder."""
    return int(checkpoint.name.split("-")[1])


def is_complete(checkpoint: Path) -> bool:
    return (checkpoint / COMPLETE_FILE).is_file()


def mark_checkpoint_complete(checkpoint: Path, **state: Any) -> None:
    """Written last, after every file of the checkpoint: a checkpoint without it is ignored on resume."""
    write_json_atomic(checkpoint / COMPLETE_FILE, {"time": time.time(), **state})


def complete_checkpoints(run_dir: str | Path) -> list[Path]:
    """The complete checkpoints of a run folder, oldest first."""
    return [c for c in sorted((Path(run_dir) / CHECKPOINTS_DIR).glob("step-*")) if is_complete(c)]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint (what a resumed run continues from), or None."""
    complete = complete_checkpoints(run_dir)
    return complete[-1] if complete else None


def adopt(written: Path, run_dir: str | Path, step: int, **state: Any) -> Path | None:
    """Move the trainer's checkpoint folder `written` to `RUN_DIR/checkpoints/step-NNNNNN` (replacing an
    incomplete one an interrupted save left there) and mark it complete with `step` and `state`. Returns the
    new folder, or None when the trainer wrote no folder."""
    if not written.is_dir():
        return None
    target = checkpoint_dir(run_dir, step)
    if target.exists():
        shutil.rmtree(target)
    written.rename(target)
    mark_checkpoint_complete(target, step=step, **state)
    return target


def prune(run_dir: str | Path, keep: int) -> None:
    """Delete all but the newest `keep` complete checkpoints (`keep` <= 0 keeps them all)."""
    if keep <= 0:
        return
    for old in complete_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def save_final(run_dir: str | Path, save: Callable[[str], None]) -> Path:
    """`save(folder)` into `RUN_DIR/.final.partial`, then renamed to `RUN_DIR/final`: `final/` exists only
    complete (a save interrupted half-way leaves the previous one, or none)."""
    run_dir = Path(run_dir)
    final, partial = run_dir / FINAL_DIR, run_dir / f".{FINAL_DIR}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    save(str(partial))
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    return final


# Pickle-format weights: loading one runs whatever code it holds. The trainer's own state files in pr1's
# checkpoints (optimizer.pt, scheduler.pt, rng_state.pth, training_args.bin) are written by pr1 itself.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")
TRAINER_STATE_FILES = ("optimizer.pt", "scheduler.pt", "rng_state.pth", "training_args.bin", "scaler.pt")


def refuse_pickle_weights(folder: str | Path) -> None:
    """A one-line Pr1Error when a model, adapter or checkpoint folder holds pickle-format weights: pr1 loads
    safetensors only (peft and transformers would fall back to `torch.load` on `adapter_model.bin` or
    `pytorch_model.bin`)."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    names = (f.name for f in folder.iterdir() if f.suffix in PICKLE_SUFFIXES)
    pickles = sorted(n for n in names if n not in TRAINER_STATE_FILES and not n.startswith("rng_state"))
    if pickles:
        raise Pr1Error(
            f"{folder}: holds pickle-format weights ({', '.join(pickles)}), which pr1 does not load (loading a "
            "pickle can run code); convert them to safetensors where you trust them (e.g. load with peft or "
            "transformers and save_pretrained(..., safe_serialization=True))"
        )
