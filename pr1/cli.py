"""The `pr1` command: the app and its commands, one module each in pr1/commands/ (a command's flags, checks
and printing live there). Importing this module loads no torch or transformers: `pr1 --help` stays fast.

`main` is the one place where a command's failures become what the user sees: an error the user can fix
(`pr1.errors.user_message`: a Pr1Error, an I/O or decoding error) is one line, `error: <message>`, on stderr
with exit status 2; its traceback is shown only with `pr1 --debug ...` (and a job with a run folder writes it
to the folder's errors.log). Ctrl-C and SIGTERM end a command as "interrupted" (130 and 143), through
KeyboardInterrupt, so that `finally` blocks and `with` blocks (temporary folders, run folders) clean up. A
command never exits 0 after a traceback: a traceback printed by another thread makes the exit status 1."""

from __future__ import annotations

import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from typing import Annotated

import typer
import typer.main

from pr1.commands import bench, chat, data, demo, eval, export, rl, score, sft, watch
from pr1.errors import user_message
from pr1.logs import quiet
from pr1.processes import follow_parent
from pr1.threads import choose_threads

app = typer.Typer(
    name="pr1",
    help="Teach language models parallel thinking with reinforcement learning (Parallel-R1).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class _State:
    debug = False  # `pr1 --debug`
    thread_failed = False  # a thread ended with an exception (and printed its traceback)
    terminated = False  # SIGTERM arrived


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
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the full traceback of an error.", metavar="")
    ] = False,
) -> None:
    """Teach language models parallel thinking with reinforcement learning (Parallel-R1)."""
    _State.debug = debug


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


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C so that everything unwinds (runs record `interrupted`)."""


def _terminate(signum: int, frame: object) -> None:
    _State.terminated = True
    raise Terminated


def run(args: Sequence[str] | None = None) -> int:
    """Run the `pr1` command line `args` (default: sys.argv[1:]) and return its exit status."""
    _State.debug = _State.thread_failed = _State.terminated = False
    in_main = threading.current_thread() is threading.main_thread()
    old_term = signal.signal(signal.SIGTERM, _terminate) if in_main else None
    old_hook = threading.excepthook

    def thread_hook(hook_args: threading.ExceptHookArgs) -> None:  # prints the traceback, as before
        _State.thread_failed = _State.thread_failed or hook_args.exc_type is not SystemExit
        old_hook(hook_args)

    threading.excepthook = thread_hook
    try:
        status = _invoke(list(sys.argv[1:] if args is None else args))
    finally:
        threading.excepthook = old_hook
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
    return 1 if status == 0 and _State.thread_failed else status


def _invoke(args: list[str]) -> int:
    try:
        # standalone: typer prints usage errors itself, and ends every command with SystemExit
        typer.main.get_command(app).main(args=args, prog_name="pr1", standalone_mode=True)
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
        if status == 130:  # typer's exit status for KeyboardInterrupt (Ctrl-C, or SIGTERM: Terminated)
            typer.echo("interrupted", err=True)
            return 143 if _State.terminated else 130
        return status
    except Exception as e:
        message = user_message(e)
        if message is None:
            raise  # a bug: its traceback, exit status 1
        if _State.debug:
            traceback.print_exception(e)
        typer.echo(f"error: {message}", err=True)
        return 2
    return 0


def main() -> None:
    quiet()  # library noise into the run folder's log (pr1.logs)
    choose_threads()  # before torch is imported: the cores the machine's load leaves free (pr1.threads)
    follow_parent()  # a child of `pr1 bench` (or of any parent that asks, pr1.processes) ends with it
    sys.exit(run())
