"""`pr1 demo`: the whole curriculum at toy scale, offline, into one run folder."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from pr1.commands.flags import with_settings
from pr1.commands.live import run_job
from pr1.demo import FAST, DemoConfig, run_demo

FLAGS = ("model", "seed")


@with_settings(DemoConfig, FLAGS)
def demo(
    out: Annotated[Path, typer.Option(help="Run folder of the demo (resumes when it exists).")] = Path(
        "runs/demo"
    ),
    fast: Annotated[bool, typer.Option("--fast", help="A 2-minute smoke version.", metavar="")] = False,
    tui: Annotated[
        bool, typer.Option("--tui", help="Show the demo live in the dashboard.", metavar="")
    ] = False,
    *,
    settings: dict[str, Any],
) -> None:
    """The whole curriculum at toy scale, offline: synthetic cold-start data, SFT, GRPO with the alternating
    reward, and evaluation before and after, into one run folder."""
    config = replace(FAST if fast else DemoConfig(), **settings)
    run_job(out, lambda: run_demo(out, config), tui=tui)
