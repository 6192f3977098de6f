"""`pr1 rl`: GRPO training into a run folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from pr1.errors import Pr1Error
from pr1.runs import RUN_FILE, read_run_info


def run_rl(
    options: dict[str, Any],
    out: Path | None,
    config_files: Sequence[Path],
    resume: bool,
    *,
    tui: bool = False,
) -> None:
    """`options`: the command-line settings (None where a flag was not given); `config_files`: the `--config`
    files, layered left to right."""
    from pr1.rl.backends import resolve_backend
    from pr1.rl.config import resolve

    if out is None:
        raise Pr1Error("--out RUN_DIR is required (the run folder to write)")
    saved = None
    if (out / RUN_FILE).is_file():
        info = read_run_info(out)
        if info.get("kind") != "rl":
            raise Pr1Error(f"{out}: holds a '{info.get('kind')}' run, not 'rl'; choose another --out")
        if not resume:
            raise Pr1Error(
                f"{out}: a run already exists here; pass --resume to continue it or choose another --out"
            )
        saved = info.get("config")
    cfg = resolve(options, presets=config_files, saved=saved)
    if resolve_backend(cfg.backend, cfg.variant) == "unsloth":
        import unsloth  # noqa: F401  (before transformers / trl / peft, so that its patches apply to them)
    from pr1.commands.live import run_job
    from pr1.rl.trainer import train

    summary = run_job(out, lambda: train(cfg, out, resume=resume), tui=tui)
    keys = ("steps", "reward_mean", "accuracy", "parallel_ratio", "format_valid_rate", "response_tokens_mean")
    table = Table(title=f"pr1 rl — {out} (last step)")
    for key in keys:
        table.add_column(key.replace("_", " "), justify="right")
    table.add_row(*(_fmt(summary.get(k)) for k in keys))
    Console().print(table)
    Console().print(f"adapter: {out / 'final'}   metrics: {out / 'metrics.jsonl'}   watch: pr1 watch {out}")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)
