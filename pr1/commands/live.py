"""What the long commands share: `--tui` (the job in the background while the dashboard shows its run
folder) and the help of `--config`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

T = TypeVar("T")

# the options every job command shares, declared once
ConfigFiles = Annotated[
    list[Path] | None,
    typer.Option(
        "--config",
        help="TOML settings file (examples/*.toml); repeat to layer several, later ones win; flags win over all.",
    ),
]
Resume = Annotated[
    bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint.", metavar="")
]
Tui = Annotated[bool, typer.Option("--tui", help="Show the job live in the dashboard.", metavar="")]


def run_job(run_dir: Path, job: Callable[[], T], *, tui: bool) -> T:
    """`job()`, or with `tui` the same job in a thread under `pr1 watch run_dir` (which stays open on the
    final state; quitting early interrupts the job, which marks its run interrupted)."""
    if not tui:
        return job()
    from pr1.tui.watch_app import run_watch

    run_dir.mkdir(parents=True, exist_ok=True)
    return run_watch(run_dir, job=job)
