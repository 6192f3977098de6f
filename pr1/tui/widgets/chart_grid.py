"""A group of charts (the curves, the GRPO health signals): those without data are hidden, and the grid
uses as many columns as fit the rest."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Grid

from pr1.tui.charts import Chart, ChartView
from pr1.tui.run_state import RunState
from pr1.tui.widgets.metric_chart import MetricChart

MIN_CHART_WIDTH = 40
MIN_ROW_HEIGHT = 14  # below this a row of charts is too short to read: the tab scrolls instead


class ChartGrid(Grid):
    def __init__(self, charts: Sequence[Chart], *, id: str | None = None):
        super().__init__(id=id, classes="chart-grid")
        self.charts = [MetricChart(c, id=f"{id}-{c.id}" if id else None) for c in charts]

    def compose(self) -> ComposeResult:
        yield from self.charts

    def show(self, runs: Sequence[RunState], view: ChartView, first: int, last: int) -> None:
        has_data = {c: c.show(runs, view, first, last) for c in self.charts}
        main = sum(ok for c, ok in has_data.items() if not c.chart.spare)
        for c, ok in has_data.items():
            c.display = ok and (not c.chart.spare or main < 4)
        n = len(self.shown)
        fit = max(1, (self.size.width or self.app.size.width) // MIN_CHART_WIDTH)
        cols = max(1, min(n, fit, 2 if n == 4 else 3))
        rows = max(1, -(-n // cols))
        self.styles.grid_size_columns = cols
        self.styles.grid_size_rows = rows
        self.styles.min_height = rows * MIN_ROW_HEIGHT

    @property
    def shown(self) -> list[str]:
        return [c.chart.id for c in self.charts if c.display]

    @property
    def visible_charts(self) -> list[MetricChart]:
        return [c for c in self.charts if c.display]
