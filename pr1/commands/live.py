"""What the long commands share: `--tui` (the job in the background while the dashboard shows its run
folder) and the help of `--config`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

CONFIG_HELP = (
    "TOML settings file (examples/*.toml); repeat to layer several, later ones win; flags win over all."
)


def run_job(run_dir: Path, job: Callable[[], T], *, tui: bool) -> T:
    """`job()`, or with `tui` the same job in a thread under `pr1 watch run_dir` (which stays open on the
    final state; quitting early interrupts the job, which marks its run interrupted)."""
    if not tui:
        return job()
    from pr1.tui.watch_app import run_watch

    run_dir.mkdir(parents=True, exist_ok=True)
    return run_watch(run_dir, job=job)
