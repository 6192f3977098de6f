"""`pr1 score` and `pr1 datasets`."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from pr1.datasets import REGISTRY, data_dir
from pr1.errors import Pr1Error
from pr1.jsonl import dumps
from pr1.rewards import REWARD_NAMES, Schedule
from pr1.score import score_file, summarise


def run_score(
    file: Path, reward: str, step: int, completion_key: str, answer_key: str, json_out: bool, skip_bad: bool
) -> None:
    if reward not in REWARD_NAMES:
        raise Pr1Error(f"--reward {reward!r}: expected one of {', '.join(REWARD_NAMES)}")
    if step < 1:
        raise Pr1Error(f"--step {step}: steps count from 1")
    records = score_file(
        file,
        schedule=Schedule(reward),
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
        f"{summary['accuracy']:.1%}",
        f"{summary['parallel_ratio']:.1%}",
        f"{summary['format_valid_rate']:.1%}",
        f"{summary['mean_blocks']:.2f}",
        f"{summary['mean_reward']:+.3f}",
    )
    Console().print(table)


def list_datasets() -> None:
    table = Table(title="pr1 datasets")
    for col in ("name", "description", "samples in eval", "source"):
        table.add_column(col)
    d = data_dir()
    for spec in REGISTRY.values():
        local = next((d / f for f in spec.files if d and (d / f).is_file()), None)
        source = str(local) if local else (f"hub:{spec.hub_id}" if spec.hub_id else "PR1_DATA_DIR only")
        table.add_row(spec.name, spec.description, str(spec.eval_samples), source)
    Console().print(table)
