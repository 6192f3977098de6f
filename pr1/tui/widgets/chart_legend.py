"""The numbers beside a chart, outside its data: one row per line (its marker, in its colour, and its
label), with the value at the cursor step (or the last), the smoothed value, the minimum and maximum over
the visible steps."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import RenderResult
from textual.content import Content
from textual.widget import Widget

from pr1.formatting import figure
from pr1.tui.charts import LEGEND_GLYPH, PHASE_MARKERS, Line

NUMBER_WIDTH = 7


def line_label(line: Line, several_runs: bool, several_series: bool) -> str:
    """The series' label; with several runs the run's name, or its number (as the header lists the runs)
    before the series' label where a chart has several series of several runs."""
    if several_runs and several_series:
        return f"{line.run + 1} {line.label}"
    return line.run_name if several_runs else line.label


class ChartLegend(Widget):
    DEFAULT_CSS = "ChartLegend { height: auto; text-wrap: nowrap; text-overflow: ellipsis; }"

    def __init__(self, *, classes: str | None = None):
        super().__init__(classes=classes)
        self.lines: list[Line] = []
        self.cursor: int | None = None
        self.smoothing = True
        self.phases: list[str] = []

    def show(self, lines: Sequence[Line], cursor: int | None, smoothing: bool, phases: Sequence[str]) -> None:
        self.lines, self.cursor, self.smoothing, self.phases = list(lines), cursor, smoothing, list(phases)
        self.refresh(layout=True)

    def get_content_height(self, container, viewport, width: int) -> int:  # noqa: ANN001
        return (1 + len(self.lines) + bool(self.phases)) if self.lines else 0

    def rows(self, width: int) -> list[Content]:
        """The legend as lines of text at `width` columns."""
        if not self.lines:
            return []
        runs = len({ln.run for ln in self.lines}) > 1
        series = len({ln.key for ln in self.lines}) > 1
        label_w = max(4, width - 2 - 4 * NUMBER_WIDTH)
        first = "last" if self.cursor is None else f"@{self.cursor}"
        heads = (first, "smooth" if self.smoothing else "", "min", "max")
        out = [Content.styled(" " * (2 + label_w) + "".join(f"{h:>{NUMBER_WIDTH}}" for h in heads), "dim")]
        for ln in self.lines:
            value, smoothed, lo, hi = ln.numbers(self.cursor)
            cells = [value, smoothed if self.smoothing else None, lo, hi]
            text = "".join(
                f"{'' if v is None and i == 1 else figure(ln.key, v, short=True):>{NUMBER_WIDTH}}"
                for i, v in enumerate(cells)
            )
            name = line_label(ln, runs, series)
            name = name if len(name) <= label_w else name[: label_w - 1] + "…"
            glyph = LEGEND_GLYPH.get(ln.marker, ln.marker)
            out.append(
                Content.assemble(
                    (glyph, "bold #{:02x}{:02x}{:02x}".format(*ln.colour)), " ", f"{name:<{label_w}}", text
                )
            )
        if self.phases:
            marks = "  ".join(f"{PHASE_MARKERS[p]} {p} step" for p in self.phases)
            out.append(Content.styled(marks, "dim"))
        return out

    def render(self) -> RenderResult:
        return Content("\n").join(self.rows(self.content_size.width or 38))
