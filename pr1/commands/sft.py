"""`pr1 sft`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from pr1.errors import Pr1Error
from pr1.runs import RUN_FILE, read_run_info
from pr1.sft.config import resolve_config


def run_sft(
    out: Path,
    overrides: dict[str, Any],
    resume: bool,
    *,
    config_files: Sequence[Path] = (),
    tui: bool = False,
) -> None:
    """`overrides`: the flags given; `config_files`: the `--config` files, layered left to right."""
    stored = None
    if resume:
        if not (out / RUN_FILE).is_file():
            raise Pr1Error(f"--resume: {out} holds no run to resume (no {RUN_FILE})")
        info = read_run_info(out)
        if info.get("kind") != "sft":
            raise Pr1Error(f"--resume: {out} holds a '{info.get('kind')}' run, not an sft run")
        stored = info.get("config") or {}
    config = resolve_config(overrides, stored, config_files)

    from pr1.commands.live import run_job
    from pr1.sft.train import train

    console = Console(stderr=True)
    summary = run_job(out, lambda: train(config, out, resume=resume, console=console), tui=tui)
    checks = {
        name: summary[key]
        for name, key in (("base", "base_check"), ("sft", "format_check"))
        if key in summary
    }
    if checks:
        table = Table(title=f"format check ({config.format_check} problems of {config.format_check_data})")
        for col in (
            "model",
            "format valid",
            "parallel",
            "parallel & valid",
            "accuracy",
            "finished",
            "tokens",
        ):
            table.add_column(col, justify="right")
        for name, c in checks.items():
            table.add_row(
                name,
                *(f"{c[k]:.0%}" for k in ("format_valid_rate", "parallel_ratio", "parallel_valid_rate")),
                f"{c['accuracy']:.0%}",
                f"{c['finished_rate']:.0%}",
                f"{c['tokens_mean']:.0f}",
            )
        Console().print(table)
    print(f"{summary['steps']} steps, train loss {summary['train_loss']:.4f}; adapter in {summary['final']}")
