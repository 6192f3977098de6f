"""`pr1 watch RUN_DIR [RUN_DIR ...]`: the live dashboard of one run folder or several, overlaid."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from pr1.errors import Pr1Error
from pr1.runs import read_run_info


def watch(
    run_dirs: Annotated[
        list[Path],
        typer.Argument(help="Run folders (pr1 sft / rl / eval / data / demo); several are overlaid."),
    ],
    interval: Annotated[float, typer.Option(help="Seconds between reads of the folders.")] = 1.0,
    export: Annotated[
        Path | None,
        typer.Option(
            help="Write the charts as CSV and the screens as SVG into DIR, without a terminal, and exit."
        ),
    ] = None,
) -> None:
    """Live dashboard of run folders: curves, GRPO health, rollouts as trees, events. Only reads, so it works
    over SSH; several folders are overlaid (a colour per run)."""
    if not (interval > 0 and math.isfinite(interval)):
        raise Pr1Error(f"--interval {interval}: expected a finite number of seconds > 0")
    for run_dir in run_dirs:
        read_run_info(run_dir)  # a clear error for a folder that holds no run
    if export is not None:
        from pr1.tui.export import export_runs

        for path in export_runs(run_dirs, export):
            print(path)
        return
    from pr1.tui.watch_app import run_watch

    run_watch(run_dirs, poll_interval=interval)
