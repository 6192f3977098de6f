"""Eval folders' summary.json as a table: one column per benchmark (and run), one row per figure, labelled
and formatted as the console's table is (pr1.formatting)."""

from __future__ import annotations

from collections.abc import Sequence

from textual.widgets import DataTable

from pr1.formatting import figure, flatten, label, number


def benchmark_table(summary: dict) -> tuple[dict[str, dict], dict[str, object]]:
    """(benchmark -> figures, other top-level values) of `pr1 eval`'s summary.json
    ({"model": …, "benchmarks": {name: figures}}), or of a flat dict of figures."""
    tables = summary.get("benchmarks") if isinstance(summary.get("benchmarks"), dict) else None
    if tables is None:
        tables = {k: v for k, v in summary.items() if isinstance(v, dict)}
    rest = {k: v for k, v in summary.items() if k != "benchmarks" and not isinstance(v, dict)}
    return {name: flatten(f) for name, f in tables.items() if isinstance(f, dict)}, rest


def _label(key: str) -> str:
    return key if "@" in key else label(key)


class SummaryTable(DataTable):
    def __init__(self, *, id: str | None = None):
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)

    def show_summaries(self, summaries: Sequence[tuple[str, dict]]) -> None:
        """Figures as rows and benchmarks as columns (a dozen figures, a few benchmarks); with several
        runs ((name, summary) pairs) a column per run and benchmark."""
        self.clear(columns=True)
        columns: dict[str, dict] = {}
        titles = []
        for run, summary in summaries:
            tables, rest = benchmark_table(summary)
            titles.append(" · ".join(f"{k} {number(v)}" for k, v in rest.items() if v not in (None, "")))
            for bench, figures in (tables or {"value": rest}).items():
                columns[f"{run} · {bench}" if len(summaries) > 1 else bench] = figures
        self.border_title = titles[0] if len(summaries) == 1 else ""
        figures: dict[str, None] = {}
        for f in columns.values():
            figures.update(dict.fromkeys(f))
        self.add_columns("", *columns)
        for fig in figures:
            self.add_row(
                _label(fig), *(figure(fig, f.get(fig)) if fig in f else "" for f in columns.values())
            )
