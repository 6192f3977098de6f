"""`pr1 export RUN_DIR --out DIR`: the adapter of a run (`final/`, else its latest complete checkpoint), as
is or merged into its base model (`--merge`): a full model folder (safetensors) with the tokenizer and its tags,
loadable by transformers, vLLM or `pr1 --model DIR` without peft.

The merge loads the base model unquantized (even when training used 4-bit QLoRA, as usual for QLoRA merges),
so a merged 4B model needs its full-precision weights' worth of memory.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from pr1.backends import run_base_model
from pr1.checkpoints import ADAPTER_CONFIG, COMPLETE_FILE, FINAL_DIR, latest_checkpoint
from pr1.errors import Pr1Error
from pr1.runs import read_run_info

EXPORT_INFO = "pr1_export.json"
TRAINER_FILES = (COMPLETE_FILE, "trainer_state.json")


def adapter_source(run_dir: str | Path) -> tuple[str, Path]:
    """(base model, adapter folder) of a run folder whose `final/` (or latest checkpoint) holds a peft adapter."""
    run_dir = Path(run_dir)
    info = read_run_info(run_dir)
    adapter = run_dir / FINAL_DIR
    if not (adapter / ADAPTER_CONFIG).is_file():
        adapter = latest_checkpoint(run_dir)
        if adapter is None or not (adapter / ADAPTER_CONFIG).is_file():
            raise Pr1Error(f"{run_dir}: no adapter yet (neither final/ nor a complete checkpoint holds one)")
    return run_base_model(run_dir, info, adapter), adapter


def export(
    run_dir: str | Path,
    out: str | Path,
    *,
    merge: bool = False,
    dtype: str = "auto",
    trust_remote_code: bool = False,
) -> Path:
    """Write the run's adapter (or, with `merge`, the merged model) into `out`, atomically: a temporary
    sibling folder renamed at the end, so `out` exists only once complete."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise Pr1Error(f"--out {out}: already exists and is not empty; choose another folder")
    base, adapter = adapter_source(run_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        if merge:
            _merge(base, adapter, tmp, dtype=dtype, trust_remote_code=trust_remote_code)
        else:
            for f in adapter.iterdir():  # the adapter and tokenizer; not the trainer's state or pickles
                if f.is_file() and f.suffix not in (".pt", ".pth", ".bin") and f.name not in TRAINER_FILES:
                    shutil.copy2(f, tmp / f.name)
        info = {
            "run": str(Path(run_dir).resolve()),
            "adapter": str(adapter),
            "base_model": base,
            "merged": merge,
        }
        (tmp / EXPORT_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _merge(base: str, adapter: Path, out: Path, *, dtype: str, trust_remote_code: bool) -> None:
    from pr1.models import load_model, save_model  # transformers and peft only for a merge

    model, tokenizer = load_model(
        base, dtype=dtype, device="cpu", trust_remote_code=trust_remote_code, adapter=adapter
    )
    save_model(model, tokenizer, out)
