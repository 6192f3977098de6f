"""The `pr1` command. Each command only parses its options and calls into the module that does the work."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from pr1.errors import Pr1Error

app = typer.Typer(
    name="pr1",
    help="Teach language models parallel thinking with reinforcement learning (Parallel-R1).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def score(
    file: Annotated[
        Path, typer.Argument(help="JSON Lines file with a completion and a gold answer per row.")
    ],
    reward: Annotated[
        str, typer.Option(help="accuracy | tiered | parallel-accuracy | alternating | scaffold")
    ] = "accuracy",
    step: Annotated[int, typer.Option(help="Training step (first = 1) for scheduled rewards.")] = 1,
    completion_key: Annotated[str, typer.Option(help="Key of the completion text.")] = "completion",
    answer_key: Annotated[str, typer.Option(help="Key of the gold answer.")] = "answer",
    json_out: Annotated[
        bool, typer.Option("--json", help="One JSON object per input row on stdout.")
    ] = False,
    skip_bad: Annotated[bool, typer.Option(help="Skip malformed rows instead of stopping.")] = False,
) -> None:
    """Grade completions: accuracy, format validity, blocks and reward, per row or as a summary table."""
    from pr1.commands.score import run_score

    run_score(file, reward, step, completion_key, answer_key, json_out, skip_bad)


@app.command()
def datasets() -> None:
    """List the named datasets and where each one would load from."""
    from pr1.commands.score import list_datasets

    list_datasets()


def main() -> None:
    try:
        app()
    except Pr1Error as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
