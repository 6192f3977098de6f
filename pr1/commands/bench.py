"""`pr1 bench`: the project's benchmarks, as tables in a folder."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from pr1.bench.suite import TABLES_FILE, BenchConfig, run_bench


def run_bench_command(config: BenchConfig, out: Path) -> None:
    console = Console(log_path=False)
    with console.status("benchmarking") as status:

        def log(line: str) -> None:
            console.log(line)
            status.update(line)

        reports = run_bench(config, out, log=log)
    for report in reports:
        console.print(report.table())
    console.print(f"tables: {out / TABLES_FILE}   figures: {out / 'bench.jsonl'}")
