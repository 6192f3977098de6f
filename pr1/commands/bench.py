"""`pr1 bench`: the project's benchmarks, as tables in a folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from pr1.bench.config import BACKENDS, RESULTS_FILE, TABLES_FILE, BenchConfig
from pr1.commands.flags import with_settings
from pr1.errors import Pr1Error

FLAGS = ("names", "model", "quick", "force")


@with_settings(BenchConfig, FLAGS)
def bench(
    out: Annotated[Path, typer.Option(help="Folder for bench.jsonl and BENCH.md (reruns reuse it).")] = Path(
        "runs/bench"
    ),
    backends: Annotated[
        str, typer.Option(help="Training backends for sft and grpo, comma-separated.")
    ] = ",".join(BACKENDS),
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="KEY=VALUE: change a benchmark setting (e.g. mode=free, paths=4, max_tokens=512); repeatable.",
            show_default=False,
        ),
    ] = None,
    *,
    settings: dict[str, Any],
) -> None:
    """Rollout throughput, structured-decoding speedup, and SFT and GRPO step time and memory per backend,
    as tables (BENCH.md) and figures (bench.jsonl)."""
    config = BenchConfig(
        **settings,
        backends=[b.strip() for b in backends.split(",") if b.strip()],
        overrides=dict(_key_value(item) for item in set_ or []),
    )
    from pr1.bench.suite import run_bench

    console = Console(log_path=False)
    with console.status("benchmarking") as status:

        def log(line: str) -> None:
            console.log(line)
            status.update(line)

        reports = run_bench(config, out, log=log)
    for report in reports:
        console.print(report.table())
    console.print(f"tables: {out / TABLES_FILE}   figures: {out / RESULTS_FILE}")


def _key_value(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise Pr1Error(f"--set {item!r}: expected KEY=VALUE")
    return key.strip(), value.strip()
