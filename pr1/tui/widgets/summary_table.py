"""An eval folder's summary.json as a table: one column per benchmark, one row per figure."""

from __future__ import annotations

from textual.widgets import DataTable


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def flatten(figures: dict) -> dict[str, object]:
    """{"pass_at_k": {"1": .5, "4": .7}, "mean_at_k": .4} -> {"pass@1": .5, "pass@4": .7, "mean@k": .4};
    other nested dicts -> "a.b"."""
    out: dict[str, object] = {}
    for k, v in figures.items():
        if isinstance(v, dict):
            for kk, vv in v.items():
                out[f"{k.removesuffix('_at_k')}@{kk}" if k.endswith("_at_k") else f"{k}.{kk}"] = vv
        else:
            out[f"{k.removesuffix('_at_k')}@k" if k.endswith("_at_k") else k] = v
    return out


def benchmark_table(summary: dict) -> tuple[dict[str, dict], dict[str, object]]:
    """(benchmark -> figures, other top-level values) of `pr1 eval`'s summary.json
    ({"model": …, "benchmarks": {name: figures}}), or of a flat dict of figures."""
    tables = summary.get("benchmarks") if isinstance(summary.get("benchmarks"), dict) else None
    if tables is None:
        tables = {k: v for k, v in summary.items() if isinstance(v, dict)}
    rest = {k: v for k, v in summary.items() if k != "benchmarks" and not isinstance(v, dict)}
    return {name: flatten(f) for name, f in tables.items() if isinstance(f, dict)}, rest


class SummaryTable(DataTable):
    def __init__(self, *, id: str | None = None):
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)

    def show_summary(self, summary: dict) -> None:
        """Figures as rows and benchmarks as columns (a dozen figures, a few benchmarks)."""
        self.clear(columns=True)
        tables, rest = benchmark_table(summary)
        self.border_title = " · ".join(f"{k} {_fmt(v)}" for k, v in rest.items() if v not in (None, ""))
        if not tables:
            tables = {"value": rest}
        figures: dict[str, None] = {}
        for f in tables.values():
            figures.update(dict.fromkeys(f))
        self.add_columns("", *tables)
        for fig in figures:
            self.add_row(fig, *(_fmt(f.get(fig)) for f in tables.values()))
