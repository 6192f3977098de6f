"""`pr1 watch RUN_DIR`: the live dashboard of a run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pr1.errors import Pr1Error
from pr1.runs import read_run_info


def watch(
    run_dir: Annotated[Path, typer.Argument(help="A run folder (pr1 sft / rl / eval / data / demo).")],
    interval: Annotated[float, typer.Option(help="Seconds between reads of the folder.")] = 1.0,
) -> None:
    """Live dashboard of a run folder: curves, rollouts as trees, events. Only reads, so it works over SSH."""
    if not interval > 0:
        raise Pr1Error(f"--interval {interval}: must be > 0 seconds")
    read_run_info(run_dir)  # a clear error for a folder that holds no run
    from pr1.tui.watch_app import run_watch

    run_watch(run_dir, poll_interval=interval)
