"""`pr1 eval`: benchmarks sampled with the rollout engine, scored and summarised (docs/EVAL.md)."""

from __future__ import annotations

from typing import Any

from pr1.commands.flags import with_settings
from pr1.commands.live import Tui, run_job
from pr1.eval.run import MAY_CHANGE_ON_RESUME, EvalConfig
from pr1.runs import saved_settings
from pr1.settings import resolve

FLAGS = (
    "benches",
    "model",
    "adapter",
    "samples",
    "mode",
    "temperature",
    "top_p",
    "top_k",
    "max_tokens",
    "num_paths",
    "max_blocks",
    "limit",
    "rollout_batch",
    "prompt_file",
    "seed",
    "engine",
    "out",
    "dtype",
)


@with_settings(EvalConfig, FLAGS)
def eval_(
    tui: Tui = False,
    *,
    settings: dict[str, Any],
) -> None:
    """Evaluate on math benchmarks: mean@k, pass@k, maj@k and parallel-thinking behaviour (docs/EVAL.md).
    Rerunning the same command resumes it."""
    cfg = resolve(EvalConfig, settings, flags=FLAGS)
    saved = saved_settings(cfg.run_dir(), "eval", resume=None)
    if saved is not None:  # settings not given come from the folder's run
        cfg = resolve(EvalConfig, settings, saved=saved, may_change=MAY_CHANGE_ON_RESUME, flags=FLAGS)
    from pr1.eval.run import run_eval

    run_job(cfg.run_dir(), lambda: run_eval(cfg, flags=FLAGS), tui=tui)
