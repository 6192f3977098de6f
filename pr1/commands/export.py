"""`pr1 export`."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console


def run_export(run_dir: Path, out: Path, merge: bool, dtype: str, trust_remote_code: bool) -> None:
    from pr1.export import adapter_source, export

    base, adapter = adapter_source(run_dir)
    console = Console(stderr=True)
    what = f"merging {adapter} into {base}" if merge else f"copying the adapter {adapter} (base: {base})"
    with console.status(what):
        written = export(run_dir, out, merge=merge, dtype=dtype, trust_remote_code=trust_remote_code)
    print(f"{'merged model' if merge else 'adapter'} written to {written}")
