"""`pr1 demo`: the whole curriculum at toy scale, offline, into one run folder."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from pr1.commands.flags import with_settings
from pr1.commands.live import Tui, run_job
from pr1.demo import FAST, DemoConfig, run_demo

FLAGS = ("model", "seed")


@with_settings(DemoConfig, FLAGS)
def demo(
    out: Annotated[Path, typer.Option(help="Run folder of the demo (resumes when it exists).")] = Path(
        "runs/demo"
    ),
    fast: Annotated[bool, typer.Option("--fast", help="A 2-minute smoke version.", metavar="")] = False,
    ablation: Annotated[
        bool,
        typer.Option(
            "--ablation",
            help="The reward ablation instead: RL with each reward x 2 seeds from the demo's SFT (pr1.ablation).",
            metavar="",
        ),
    ] = False,
    tui: Tui = False,
    *,
    settings: dict[str, Any],
) -> None:
    """The whole curriculum at toy scale, offline: synthetic cold-start data, SFT, GRPO with the alternating
    reward, and evaluation before and after, into one run folder."""
    config = replace(FAST if fast else DemoConfig(), **settings)
    if ablation:
        from pr1.ablation import run_ablation

        run_job(out / "ablation", lambda: run_ablation(out, config), tui=tui)
    else:
        run_job(out, lambda: run_demo(out, config), tui=tui)
