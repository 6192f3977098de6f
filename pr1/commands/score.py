"""`pr1 score` and `pr1 datasets`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pr1.datasets import REGISTRY, data_dir
from pr1.errors import Pr1Error
from pr1.format import FORMAT_RULES
from pr1.jsonl import dumps
from pr1.rewards import REWARD_NAMES, Schedule
from pr1.runs import ROLLOUTS_FILE, RUN_FILE
from pr1.score import score_file, summarise


def score(
    file: Annotated[
        Path, typer.Argument(help="JSON Lines file with a completion and a gold answer per row.")
    ],
    reward: Annotated[str, typer.Option(help=" | ".join(REWARD_NAMES))] = "accuracy",
    step: Annotated[int, typer.Option(help="Training step (first = 1) for scheduled rewards.")] = 1,
    format_rules: Annotated[
        str,
        typer.Option(
            help="pr1 (METHOD.md §1's rules) | reference (the reference code's more lenient checker)."
        ),
    ] = "pr1",
    completion_key: Annotated[str, typer.Option(help="Key of the completion text.")] = "completion",
    answer_key: Annotated[str, typer.Option(help="Key of the gold answer.")] = "answer",
    json_out: Annotated[
        bool, typer.Option("--json", help="One JSON object per input row on stdout.", metavar="")
    ] = False,
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Skip malformed rows instead of stopping.", metavar="")
    ] = False,
) -> None:
    """Grade completions: accuracy, format validity, blocks and reward, per row or as a summary table."""
    if (file / RUN_FILE).is_file():  # a run folder: the completions it logged
        file = file / ROLLOUTS_FILE
    if reward not in REWARD_NAMES:
        raise Pr1Error(f"--reward {reward!r}: expected one of {', '.join(REWARD_NAMES)}")
    if step < 1:
        raise Pr1Error(f"--step {step}: steps count from 1")
    if format_rules not in FORMAT_RULES:
        raise Pr1Error(f"--format-rules {format_rules!r}: expected one of {', '.join(FORMAT_RULES)}")
    records = score_file(
        file,
        schedule=Schedule(reward, format_rules=format_rules),
        step=step,
        completion_key=completion_key,
        answer_key=answer_key,
        skip_bad=skip_bad,
    )
    if json_out:
        for _, rec in records:
            print(dumps(rec), flush=True)
        return
    summary = summarise(rec for _, rec in records)
    table = Table(title=f"{file} — reward {reward} at step {step}")
    for col in ("rows", "accuracy", "parallel ratio", "format valid", "mean blocks", "mean reward"):
        table.add_column(col, justify="right")
    table.add_row(
        str(summary["rows"]),
        *(f"{summary[k] or 0:.1%}" for k in ("accuracy", "parallel_ratio", "format_valid_rate")),
        f"{summary['blocks_mean'] or 0:.2f}",
        f"{summary['reward_mean'] or 0:+.3f}",
    )
    Console().print(table)


def datasets() -> None:
    """List the named datasets and where each one would load from."""
    table = Table(title="pr1 datasets")
    for col in ("name", "description", "samples in eval", "source"):
        table.add_column(col)
    d = data_dir()
    for spec in REGISTRY.values():
        local = next((d / f for f in spec.files if d and (d / f).is_file()), None)
        source = str(local) if local else (f"hub:{spec.hub_id}" if spec.hub_id else "PR1_DATA_DIR only")
        table.add_row(spec.name, spec.description, str(spec.eval_samples), source)
    Console().print(table)
