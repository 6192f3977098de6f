"""Every numeric key the runs log, so nothing logged is invisible: a table of keys with their latest
values (min and max for one run), and the chart of the key under the cursor."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import DataTable

from pr1.formatting import figure
from pr1.tui.charts import ChartView, metric_chart, points
from pr1.tui.run_state import RunState
from pr1.tui.widgets.metric_chart import MetricChart


def all_keys(runs: Sequence[RunState]) -> list[str]:
    keys: dict[str, None] = {}
    for run in runs:
        keys.update(dict.fromkeys(run.numeric_keys))
    return sorted(keys)


class AllMetrics(Horizontal):
    def __init__(self, *, id: str | None = None):
        super().__init__(id=id)
        self.keys: list[str] = []
        self.chart = MetricChart(metric_chart(""), id="metric-chart")
        self._args: tuple | None = None

    def compose(self) -> ComposeResult:
        yield DataTable(id="metric-table", cursor_type="row", zebra_stripes=True)
        yield self.chart

    @property
    def table(self) -> DataTable:
        return self.query_one("#metric-table", DataTable)

    @property
    def selected(self) -> str | None:
        row = self.table.cursor_row
        return self.keys[row] if 0 <= row < len(self.keys) else None

    def show(self, runs: Sequence[RunState], view: ChartView, first: int, last: int) -> None:
        self._args = (runs, view, first, last)
        shown = [(i, r) for i, r in enumerate(runs) if i not in view.hidden]
        table, keep = self.table, self.selected
        self.keys = all_keys([r for _, r in shown])
        table.clear(columns=True)
        one = len(shown) == 1
        table.add_columns(
            "metric", *(("last", "min", "max", "points") if one else (r.name for _, r in shown))
        )
        for key in self.keys:
            if one:
                _, ys = points(shown[0][1].metrics, key)
                cells = (ys[-1], min(ys), max(ys)) if ys else (None, None, None)
                table.add_row(key, *(figure(key, v) for v in cells), str(len(ys)), key=key)
            else:
                lasts = [points(r.metrics, key)[1][-1:] for _, r in shown]
                table.add_row(key, *(figure(key, v[0]) if v else "" for v in lasts), key=key)
        if keep in self.keys:
            table.move_cursor(row=self.keys.index(keep))
        self._draw()

    def _draw(self) -> None:
        key = self.selected
        self.chart.display = key is not None and self._args is not None
        if key is not None and self._args is not None:
            self.chart.chart = metric_chart(key)
            self.chart.show(*self._args)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._draw()
