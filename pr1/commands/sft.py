"""`pr1 sft`: cold-start SFT into a run folder (docs/SFT.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pr1.commands.flags import with_settings
from pr1.commands.live import ConfigFiles, Resume, Tui, run_job
from pr1.runs import saved_settings
from pr1.settings import resolve
from pr1.sft.config import MAY_CHANGE_ON_RESUME, Pr1SFTConfig

FLAGS = (
    "model",
    "data",
    "variant",
    "prompt_file",
    "lora_r",
    "lora_alpha",
    "quant",
    "epochs",
    "lr",
    "tag_lr",
    "batch",
    "micro_batch",
    "max_length",
    "max_steps",
    "save_every",
    "keep_checkpoints",
    "backend",
    "format_check",
    "format_check_base",
    "format_check_data",
    "format_check_length",
    "gradient_checkpointing",
    "report_to",
    "seed",
    "trust_remote_code",
)


@with_settings(Pr1SFTConfig, FLAGS)
def sft(
    out: Annotated[Path, typer.Option(help="Run folder to write (see docs/RUN_FOLDER.md).")],
    resume: Resume = False,
    config: ConfigFiles = None,
    tui: Tui = False,
    *,
    settings: dict[str, Any],
) -> None:
    """Cold-start SFT: LoRA/QLoRA on parallel-thinking traces, prompt tokens masked (see docs/SFT.md)."""
    saved = saved_settings(out, "sft", resume=resume)
    cfg = resolve(
        Pr1SFTConfig, settings, config or [], saved=saved, may_change=MAY_CHANGE_ON_RESUME, flags=FLAGS
    )
    from pr1.sft.train import train

    console = Console(stderr=True)
    summary = run_job(out, lambda: train(cfg, out, resume=resume, console=console), tui=tui)
    checks = {
        name: summary[key]
        for name, key in (("base", "base_check"), ("sft", "format_check"))
        if key in summary
    }
    if checks:
        table = Table(title=f"format check ({cfg.format_check} problems of {cfg.format_check_data})")
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
