"""`pr1 data generate | stats | build`: cold-start parallel-thinking data (the paper's Algorithm 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pr1.coldstart.build import build
from pr1.coldstart.generate import GenerateConfig, generate
from pr1.coldstart.stats import summarise
from pr1.commands.flags import with_settings
from pr1.jsonl import dumps
from pr1.prompts import load_template
from pr1.settings import resolve

app = typer.Typer(
    help="Cold-start parallel-thinking data: generate traces with a teacher, inspect them, build SFT/RL sets.",
    no_args_is_help=True,
)

# the key of the trace text, for stats and build alike
TraceKey = Annotated[
    str | None,
    typer.Option(help="Key of the trace text.", show_default="trace, or solution (the Parallel-R1 sample)"),
]

GENERATE_FLAGS = (
    "teacher",
    "out",
    "source",
    "limit",
    "samples",
    "concurrency",
    "prompt_file",
    "max_tokens",
    "max_length",
    "temperature",
    "teacher_model",
    "api_key_env",
    "tokenizer",
    "seed",
    "engine",
)


@app.command("generate")
@with_settings(GenerateConfig, GENERATE_FLAGS)
def data_generate(settings: dict[str, Any]) -> None:
    """Prompt a teacher on each problem and keep the format-valid, correct traces that fit (Algorithm 1).
    Resumable: a rerun with the same --out skips what is done."""
    generate(resolve(GenerateConfig, settings, flags=GENERATE_FLAGS))


@app.command("stats")
def data_stats(
    file: Annotated[Path, typer.Argument(help="A file written by `pr1 data generate` (or any trace file).")],
    trace_key: TraceKey = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.", metavar="")] = False,
) -> None:
    """Acceptance rate, rejection reasons, blocks per trace, paths per block and lengths."""
    s = summarise(file, trace_key=trace_key)
    if json_out:
        print(dumps(s))
        return
    console = Console()
    rate = "n/a" if s["acceptance_rate"] is None else f"{s['acceptance_rate']:.1%}"
    console.print(
        f"[bold]{file}[/]: kept {s['kept']} of {s['attempted']} ({rate}), rejected {s['rejected']}; "
        f"teachers: {', '.join(f'{k} ({v})' for k, v in s['teachers'].items()) or 'none'}",
        soft_wrap=True,
    )
    if s["reasons"]:
        table = Table(title="rejection reasons")
        table.add_column("reason")
        table.add_column("rejected rows", justify="right")
        for kind, n in s["reasons"].items():
            table.add_row(kind, str(n))
        console.print(table)
        by = ", ".join(f"{k} {v}" for k, v in s["rejected_rows_by_category"].items())
        console.print(f"rejected rows by category: {by}", soft_wrap=True)
    if not s["kept"]:
        return
    for title, dist, unit in (
        ("blocks per kept trace", s["blocks_per_trace"], "traces"),
        ("paths per block", s["paths_per_block"], "blocks"),
    ):
        table = Table(title=title)
        table.add_column(title.split(" per ")[0], justify="right")
        table.add_column(unit, justify="right")
        table.add_column("share", justify="right")
        total = sum(dist.values()) or 1
        for k, n in dist.items():
            table.add_row(k, str(n), f"{n / total:.1%}")
        console.print(table)
    table = Table(title="kept trace lengths")
    for col in ("", "min", "median", "mean", "p95", "max"):
        table.add_column(col, justify="right")
    for name in ("trace_tokens", "trace_chars"):
        if s[name] is not None:
            table.add_row(
                name.replace("_", " "), *(str(s[name][k]) for k in ("min", "median", "mean", "p95", "max"))
            )
    console.print(table)


@app.command("build")
def data_build(
    file: Annotated[Path, typer.Argument(help="Kept traces: rows with id, problem, answer and a trace.")],
    out: Annotated[Path | None, typer.Option(help="Folder for sft.jsonl and rl.jsonl.")] = None,
    sft_out: Annotated[Path | None, typer.Option(help="SFT file (prompt-completion chat rows).")] = None,
    rl_out: Annotated[Path | None, typer.Option(help="RL file (prompt + answer rows).")] = None,
    trace_key: TraceKey = None,
    prompt_file: Annotated[
        str | None, typer.Option(help="Instruction template with {problem} (default: pr1's parallel prompt).")
    ] = None,
    check: Annotated[
        bool, typer.Option(help="Leave out rows whose trace is malformed or has a wrong answer.", metavar="")
    ] = True,
) -> None:
    """Write the SFT-ready and RL-ready forms of a trace file (atomically)."""
    if out is not None:
        sft_out = sft_out or out / "sft.jsonl"
        rl_out = rl_out or out / "rl.jsonl"
    result = build(
        file,
        sft_out=sft_out,
        rl_out=rl_out,
        template=load_template(prompt_file),
        trace_key=trace_key,
        check=check,
    )
    console = Console()
    if result.left_out:
        reasons = ", ".join(f"{k} ({n})" for k, n in result.reasons.most_common())
        console.print(f"left out {result.left_out} rows that fail the check: {reasons}", soft_wrap=True)
    if sft_out is not None:
        console.print(f"SFT: {result.sft_rows} rows -> {sft_out}", soft_wrap=True)
    if rl_out is not None:
        console.print(f"RL: {result.rl_rows} problems -> {rl_out}", soft_wrap=True)
