"""The plot of one chart: its lines drawn with plotext, raw and smoothed, on the shared visible steps."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.text import Text
from textual.app import RenderResult
from textual_plotext import PlotextPlot

from pr1.tui.charts import PHASE_MARKERS, ChartView, Line, step_ticks, thin, uses_log

MAX_DRAWN = 1e12  # plotext overflows on values near 1e308 (a diverged loss): larger values are drawn clipped


def dim(colour: tuple[int, int, int], amount: float = 0.55) -> tuple[int, int, int]:
    """`colour` pulled towards mid grey (the raw line under its smoothed one), readable on dark and light."""
    return tuple(round(c + (128 - c) * amount) for c in colour)  # type: ignore[return-value]


def tiny_scale(lines: Sequence[Line]) -> float:
    """A power of ten to divide tiny values by (a learning rate of 1e-6 reads as 1.0 ×1e-06), else 1."""
    values = [abs(y) for ln in lines for y in ln.ys if y]
    return 10.0 ** math.floor(math.log10(max(values))) if values and max(values) < 1e-2 else 1.0


def y_limits(values: Sequence[float], log: bool) -> tuple[float, float] | None:
    """Limits around a constant series (plotext draws its axis upside down; values equal but for rounding
    noise count as constant), else None (plotext's own)."""
    if not values:
        return None
    lo, hi = min(values), max(values)
    if hi - lo > 1e-9 * max(abs(lo), abs(hi)):
        return None
    v = (lo + hi) / 2
    if log:
        return v / 2, v * 2
    pad = abs(v) * 0.1 or 1.0
    return v - pad, v + pad


def _clip(ys: Sequence[float], scale: float) -> list[float]:
    return [max(-MAX_DRAWN, min(MAX_DRAWN, y / scale)) for y in ys]


class CurvePlot(PlotextPlot):
    def draw(
        self,
        lines: Sequence[Line],
        view: ChartView,
        window: tuple[int, int],
        *,
        phases: dict[str, tuple[list, list]] | None = None,
    ) -> tuple[float, bool]:
        """Redraw from `lines` (raw dimmed under the smoothed line when smoothing is on); returns (the
        tiny-value scale, whether the y axis is logarithmic)."""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        log = uses_log(lines, view)
        scale = 1.0 if log else tiny_scale(lines)
        drawn: list[float] = []
        for ln in lines:
            xs, ys = thin(ln.xs, _clip(ln.ys, scale))
            if view.smoothing:
                plt.plot(xs, ys, marker="braille", color=dim(ln.colour))
                xs, ys = thin(ln.xs, _clip(ln.smooth, scale))
            plt.plot(xs, ys, marker=ln.marker, color=ln.colour)
            drawn += ys
        for phase, (xs, ys) in (phases or {}).items():
            plt.scatter(xs, _clip(ys, scale), marker=PHASE_MARKERS[phase])
        lo, hi = window
        if view.cursor is not None and lo <= view.cursor <= hi:
            plt.vertical_line(view.cursor)
        plt.xlim(lo - 0.5, hi + 0.5) if lo == hi else plt.xlim(lo, hi)
        plt.xticks(step_ticks(lo, hi))
        if log:
            plt.yscale("log")
        if (limits := y_limits(drawn, log)) is not None:
            plt.ylim(*limits)
        self.refresh()
        return scale, log

    def render(self) -> RenderResult:
        try:
            return super().render()
        except (ArithmeticError, ValueError) as e:  # plotext on values it cannot lay out
            return Text(f"cannot draw these values ({type(e).__name__})", style="italic")
