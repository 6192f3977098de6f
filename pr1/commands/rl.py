"""`pr1 rl`: GRPO training into a run folder (docs/RL.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pr1.commands.flags import with_settings
from pr1.commands.live import ConfigFiles, Resume, Tui, run_job
from pr1.errors import Pr1Error
from pr1.rl.config import MAY_CHANGE_ON_RESUME, RLConfig
from pr1.runs import saved_settings
from pr1.settings import resolve

FLAGS = (
    "model",
    "data",
    "reward",
    "variant",
    "mode",
    "samples",
    "batch",
    "steps",
    "lr",
    "clip_low",
    "clip_high",
    "max_tokens",
    "switch_step",
    "eval_every",
    "eval",
    "save_every",
    "backend",
    "rollout_batch",
    "prompt_file",
    "lora_r",
    "limit",
    "mask_inserted",
    "report_to",
    "seed",
    "engine",
)


@with_settings(RLConfig, FLAGS)
def rl(
    out: Annotated[Path | None, typer.Option(help="Run folder to write (required).")] = None,
    resume: Resume = False,
    config: ConfigFiles = None,
    tui: Tui = False,
    *,
    settings: dict[str, Any],
) -> None:
    """Train with GRPO: pr1's fork/join rollouts, the paper's rewards and stages (see docs/RL.md)."""
    if out is None:
        raise Pr1Error("--out RUN_DIR is required (the run folder to write)")
    saved = saved_settings(out, "rl", resume=resume)
    cfg = resolve(RLConfig, settings, config or [], saved=saved, may_change=MAY_CHANGE_ON_RESUME, flags=FLAGS)
    from pr1.backends import import_unsloth_first, pick_backend

    if pick_backend(cfg.backend, cfg.variant)[0] == "unsloth":
        import_unsloth_first()
    from pr1.rl.trainer import train

    summary = run_job(out, lambda: train(cfg, out, resume=resume), tui=tui)
    keys = ("steps", "reward_mean", "accuracy", "parallel_ratio", "format_valid_rate", "response_tokens_mean")
    table = Table(title=f"pr1 rl — {out} (last step)")
    for key in keys:
        table.add_column(key.replace("_", " "), justify="right")
    table.add_row(*(_fmt(summary.get(k)) for k in keys))
    Console().print(table)
    from pr1.metrics_health import no_update_summary
    from pr1.runs import read_metrics

    if (line := no_update_summary(read_metrics(out))) is not None:
        Console().print(f"[yellow]{line}")
    Console().print(f"adapter: {out / 'final'}   metrics: {out / 'metrics.jsonl'}   watch: pr1 watch {out}")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)
