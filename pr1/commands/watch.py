"""`pr1 watch RUN_DIR`: the live dashboard of a run folder."""

from __future__ import annotations

from pathlib import Path

from pr1.errors import Pr1Error
from pr1.runs import read_run_info


def run_watch_command(run_dir: Path, interval: float) -> None:
    if interval <= 0:
        raise Pr1Error(f"--interval {interval}: must be > 0 seconds")
    read_run_info(run_dir)  # a clear error for a folder that holds no run
    from pr1.tui.watch_app import run_watch

    run_watch(run_dir, poll_interval=interval)
