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


@app.command()
def watch(
    run_dir: Annotated[Path, typer.Argument(help="A run folder (pr1 sft / rl / eval / data / demo).")],
    interval: Annotated[float, typer.Option(help="Seconds between reads of the folder.")] = 1.0,
) -> None:
    """Live dashboard of a run folder: curves, rollouts as trees, events. Only reads, so it works over SSH."""
    from pr1.commands.watch import run_watch_command

    run_watch_command(run_dir, interval)


@app.command()
def chat(
    model: Annotated[str, typer.Option(help="Model name, Hub id or folder.")] = "smollm2-135m",
    adapter: Annotated[Path | None, typer.Option(help="A peft (LoRA) adapter folder to apply.")] = None,
    mode: Annotated[str, typer.Option(help="fork | free | structured")] = "fork",
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 0.7,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling mass.")] = 1.0,
    max_tokens: Annotated[int, typer.Option(help="Response budget (all paths included).")] = 3000,
    paths: Annotated[int, typer.Option(help="Paths forked at each <Parallel> (fork mode).")] = 2,
    seed: Annotated[int | None, typer.Option(help="Sampling seed (default: random).")] = None,
    prompt_file: Annotated[
        str | None, typer.Option(help="parallel | sequential | a template file with {problem}.")
    ] = None,
    save: Annotated[
        Path | None, typer.Option(help="Session file (ctrl+s appends to it); default pr1-chat-<time>.jsonl.")
    ] = None,
    device: Annotated[str | None, typer.Option(help="cuda | cpu (default: cuda when available).")] = None,
    dtype: Annotated[str, typer.Option(help="auto | float32 | bfloat16 | float16.")] = "auto",
    trust_remote_code: Annotated[bool, typer.Option(help="Run code shipped with the model.")] = False,
) -> None:
    """Chat with a model and watch its parallel paths branch, grow side by side and fold into summaries."""
    from pr1.commands.chat import run_chat_command
    from pr1.tui.chat_backend import ChatSettings

    settings = ChatSettings(temperature, top_p, max_tokens, paths, mode, seed)
    run_chat_command(model, adapter, settings, prompt_file, save, device, dtype, trust_remote_code)


def main() -> None:
    try:
        app()
    except Pr1Error as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
