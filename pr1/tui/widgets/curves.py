"""The dashboard's curves: one plot per group of metrics, shown only when the run logs those metrics."""

from __future__ import annotations

import math
from dataclasses import dataclass

from textual.containers import Grid
from textual_plotext import PlotextPlot

PHASE_MARKERS = {"tiered": "◆", "parallel-accuracy": "▲"}
MAX_POINTS = 300


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    series: tuple[tuple[str, str], ...]  # (metrics key, label)
    prefix: str | None = None  # also plot every key "prefix<name>/mean", labelled "<name> reward"
    spare: bool = False  # shown only beside few other charts (tokens/s is in the header anyway)


CHARTS = (
    Chart("reward", "reward (mean)", (("reward_mean", "active"),), prefix="rewards/"),
    Chart(
        "rates",
        "accuracy · parallel · format",
        (("accuracy", "accuracy"), ("parallel_ratio", "parallel"), ("format_valid_rate", "format ok")),
    ),
    Chart(
        "lengths",
        "length (tokens)",
        (("response_tokens_mean", "response"), ("critical_path_tokens_mean", "critical path")),
    ),
    Chart("position", "mean relative <Parallel> position", (("parallel_position_mean", "position"),)),
    Chart("loss", "loss", (("loss", "loss"),)),
    Chart("lr", "learning rate", (("lr", "lr"),)),
    Chart("throughput", "tokens / s", (("tokens_per_s", "tok/s"),), spare=True),
)


def series_keys(chart: Chart, metrics: list[dict]) -> list[tuple[str, str]]:
    """The (key, label) pairs of `chart` that occur in `metrics`."""
    seen: dict[str, None] = {}
    for row in metrics:
        seen.update(dict.fromkeys(row))
    keys = [(k, label) for k, label in chart.series if k in seen]
    if chart.prefix:
        keys += [
            (k, k[len(chart.prefix) : -len("/mean")] + " reward")
            for k in seen
            if k.startswith(chart.prefix) and k.endswith("/mean")
        ]
    return keys


def step_ticks(first: int, last: int, n: int = 5) -> list[int]:
    """About `n` round integer ticks from `first` to `last`."""
    span = max(last - first, 1)
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    unit = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    start = -(-first // unit) * unit
    return list(range(int(start), last + 1, int(unit))) or [first]


def points(metrics: list[dict], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for row in metrics:
        v = row.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v:  # drop NaN
            xs.append(float(row["step"]))
            ys.append(float(v))
    return xs, ys


def thin(xs: list[float], ys: list[float], max_points: int = MAX_POINTS) -> tuple[list[float], list[float]]:
    """Bucket means, so that a long run draws as fast as a short one (a chart is at most a few hundred
    braille dots wide anyway)."""
    if len(xs) <= max_points:
        return xs, ys
    k = -(-len(xs) // max_points)
    buckets = range(0, len(xs), k)
    return [sum(xs[i : i + k]) / len(xs[i : i + k]) for i in buckets], [
        sum(ys[i : i + k]) / len(ys[i : i + k]) for i in buckets
    ]


class CurvePlot(PlotextPlot):
    """One chart; `plot(metrics)` redraws it from all rows so far."""

    def __init__(self, chart: Chart):
        super().__init__(id=f"curve-{chart.id}", classes="curve")
        self.chart = chart
        self.border_title = chart.title

    def plot(self, metrics: list[dict]) -> bool:
        """Redraw; returns whether the chart has anything to show."""
        keys = series_keys(self.chart, metrics)
        data = {key: points(metrics, key) for key, _ in keys}
        values = [abs(y) for _, ys in data.values() for y in ys if y]
        scale = 10.0 ** math.floor(math.log10(max(values))) if values and max(values) < 1e-2 else 1.0
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        for key, label in keys:
            xs, ys = thin(*data[key])
            if xs:
                plt.plot(xs, [y / scale for y in ys], label=label, marker="braille")
        if self.chart.id == "reward" and keys:
            self._mark_phases(metrics, keys[0][0])
        steps = [x for xs, _ in data.values() for x in xs]
        if steps:
            plt.xticks(step_ticks(int(min(steps)), int(max(steps))))
        plt.xlabel("step")
        self.border_title = self.chart.title + (f" (×{scale:.0e})" if scale != 1.0 else "")
        self.refresh()
        return bool(steps)

    def _mark_phases(self, metrics: list[dict], key: str) -> None:
        """Mark the steps whose active reward was not plain accuracy (the alternating schedule)."""
        for phase, marker in PHASE_MARKERS.items():
            rows = [r for r in metrics if r.get("phase") == phase and isinstance(r.get(key), (int, float))]
            rows = rows[:: -(-len(rows) // MAX_POINTS)] if rows else rows
            if rows:
                self.plt.scatter(
                    [r["step"] for r in rows],
                    [float(r[key]) for r in rows],
                    marker=marker,
                    label=f"{phase} step",
                )


class CurvesPanel(Grid):
    """All charts; those without data are hidden, and the grid uses as many columns as fit them."""

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id)
        self.plots = [CurvePlot(chart) for chart in CHARTS]

    def compose(self):
        yield from self.plots

    def plot(self, metrics: list[dict]) -> None:
        has_data = {p: p.plot(metrics) for p in self.plots}
        main = sum(ok for p, ok in has_data.items() if not p.chart.spare)
        for p, ok in has_data.items():
            p.display = ok and (not p.chart.spare or main < 4)
        shown = sum(p.display for p in self.plots)
        cols = shown if shown <= 3 else 2 if shown == 4 else 3
        self.styles.grid_size_columns = max(cols, 1)
        self.styles.grid_size_rows = max(1, -(-shown // max(cols, 1)))

    @property
    def shown(self) -> list[str]:
        return [p.chart.id for p in self.plots if p.display]
