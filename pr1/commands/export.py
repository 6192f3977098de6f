"""`pr1 export`: a run's adapter, or the merged model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console


def export(
    run_dir: Annotated[Path, typer.Argument(help="A `pr1 sft` or `pr1 rl` run folder.")],
    out: Annotated[Path, typer.Option(help="Folder to write (must not exist, or be empty).")],
    merge: Annotated[
        bool,
        typer.Option(
            "--merge",
            help="Merge the adapter into the base model: a full model folder without peft.",
            metavar="",
        ),
    ] = False,
    dtype: Annotated[str, typer.Option(help="Merged weights: auto | float32 | bfloat16 | float16.")] = "auto",
    trust_remote_code: Annotated[
        bool, typer.Option("--trust-remote-code", help="Run code shipped with the base model.", metavar="")
    ] = False,
) -> None:
    """Export a run's adapter, or with --merge a merged model (safetensors + tokenizer with the tags)."""
    from pr1.export import adapter_source
    from pr1.export import export as write_export

    base, adapter = adapter_source(run_dir)
    console = Console(stderr=True)
    what = f"merging {adapter} into {base}" if merge else f"copying the adapter {adapter} (base: {base})"
    with console.status(what):
        written = write_export(run_dir, out, merge=merge, dtype=dtype, trust_remote_code=trust_remote_code)
    print(f"{'merged model' if merge else 'adapter'} written to {written}")
