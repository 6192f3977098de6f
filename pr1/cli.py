"""The `pr1` command: the app and its commands, one module each in pr1/commands/ (a command's flags, checks
and printing live there). Importing this module loads no torch or transformers: `pr1 --help` stays fast."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from pr1.commands import bench, chat, data, demo, eval, export, rl, score, sft, watch
from pr1.errors import Pr1Error
from pr1.logs import quiet

app = typer.Typer(
    name="pr1",
    help="Teach language models parallel thinking with reinforcement learning (Parallel-R1).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"pr1 {version('pr1')}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print pr1's version and exit.", callback=_version, is_eager=True, metavar=""
        ),
    ] = False,
) -> None:
    """Teach language models parallel thinking with reinforcement learning (Parallel-R1)."""


app.command()(score.score)
app.command()(score.datasets)
app.add_typer(data.app, name="data")
app.command()(rl.rl)
app.command()(sft.sft)
app.command()(export.export)
app.command()(watch.watch)
app.command()(chat.chat)
app.command(name="eval")(eval.eval_)
app.command()(demo.demo)
app.command()(bench.bench)


def main() -> None:
    quiet()
    try:
        app()
    except Pr1Error as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
