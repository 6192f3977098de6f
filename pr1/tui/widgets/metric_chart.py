"""One chart of the dashboard: a bordered box with the plot and, below it, its legend with numbers."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Vertical

from pr1.tui.charts import Chart, ChartView, Line, chart_lines, phase_points
from pr1.tui.run_state import RunState
from pr1.tui.widgets.chart_legend import ChartLegend
from pr1.tui.widgets.curve_plot import CurvePlot


class MetricChart(Vertical):
    def __init__(self, chart: Chart, *, id: str | None = None):
        super().__init__(id=id or f"curve-{chart.id}", classes="curve")
        self.chart = chart
        self.lines: list[Line] = []
        self.border_title = chart.title
        self.plot = CurvePlot(classes="curve-plot")
        self.legend = ChartLegend(classes="curve-legend")

    def compose(self) -> ComposeResult:
        yield self.plot
        yield self.legend

    def show(self, runs: Sequence[RunState], view: ChartView, first: int, last: int) -> bool:
        """Redraw from the runs' metrics; returns whether the chart has anything to show."""
        self.lines = chart_lines(self.chart, runs, view, first, last)
        window = view.window(first, last)
        phases: dict[str, tuple[list, list]] = {}
        if self.chart.phases and self.lines:
            head = self.lines[0]
            phases = phase_points(runs[head.run].metrics, head.key, *window)
        scale, log = self.plot.draw(self.lines, view, window, phases=phases)
        self.legend.show(self.lines, view.cursor, bool(view.smoothing), list(phases))
        notes = [f"×{scale:.0e}"] if scale != 1.0 else []
        notes += ["log"] if log else []
        self.border_title = self.chart.title + (f" ({', '.join(notes)})" if notes else "")
        return bool(self.lines)
