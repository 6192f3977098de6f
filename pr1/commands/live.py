"""`--tui` for long commands: run the job in the background while the dashboard shows its run folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def run_job(run_dir: Path, job: Callable[[], T], *, tui: bool) -> T:
    """`job()`, or with `tui` the same job in a thread under `pr1 watch run_dir` (which stays open on the
    final state; quitting early interrupts the job, which marks its run interrupted)."""
    if not tui:
        return job()
    from pr1.tui.watch_app import run_watch

    run_dir.mkdir(parents=True, exist_ok=True)
    return run_watch(run_dir, job=job)
