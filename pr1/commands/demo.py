"""`pr1 demo`."""

from __future__ import annotations

from pathlib import Path

from pr1.commands.live import run_job
from pr1.demo import DemoConfig, fast_config, run_demo


def run_demo_command(out: Path, *, fast: bool, tui: bool, model: str, seed: int) -> None:
    config = DemoConfig(model=model, seed=seed)
    if fast:
        config = fast_config(config)
    run_job(out, lambda: run_demo(out, config), tui=tui)
