"""A demo folder's stages (base model, after SFT, after RL) as a table and as bars, one row per stage
(and run), instead of a line over "steps" 1–3."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.content import Content
from textual.widgets import DataTable, Static

from pr1.formatting import canonical_figures, figure, is_number, label
from pr1.tui.charts import run_colour
from pr1.tui.run_state import RunState

FIGURES = (
    "accuracy",
    "parallel_ratio",
    "format_valid_rate",
    "blocks_mean",
    "response_tokens_mean",
    "no_answer_rate",
)
BARS = ("accuracy", "parallel_ratio", "format_valid_rate", "blocks_mean", "response_tokens_mean")
BAR_WIDTH = 16
EIGHTHS = " ▏▎▍▌▋▊▉"


def stage_rows(metrics: Sequence[dict]) -> list[dict]:
    """The latest metrics row of each stage (rows with a `stage` key), in the order the stages first
    appear, with today's key names."""
    latest: dict[str, dict] = {}
    for row in metrics:
        if isinstance(row.get("stage"), str):
            latest[row["stage"]] = canonical_figures(row)
    return list(latest.values())


def text_bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """A bar of `width` cells filled to `fraction` (eighths of a cell)."""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + (EIGHTHS[part] if part else "")).ljust(width)


def stages_csv(runs: Sequence[RunState]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(("run", "stage", *FIGURES))
    for run in runs:
        for row in stage_rows(run.metrics):
            w.writerow(
                (run.name, row["stage"], *("" if row.get(f) is None else repr(row[f]) for f in FIGURES))
            )
    return out.getvalue()


class StageView(Vertical):
    def compose(self) -> ComposeResult:
        yield DataTable(id="stage-table", cursor_type="row", zebra_stripes=True)
        with Grid(id="stage-bars"):
            for key in BARS:
                yield Static(id=f"bars-{key}", classes="stage-bar")

    def show(self, runs: Sequence[RunState], indices: Sequence[int]) -> None:
        """The stages of `runs` (their indices among the dashboard's runs give their colours)."""
        several = len(runs) > 1
        table = self.query_one("#stage-table", DataTable)
        table.clear(columns=True)
        table.add_columns(*(("run",) if several else ()), "stage", *(label(f) for f in FIGURES))
        rows = [
            (i, run, row) for i, run in zip(indices, runs, strict=True) for row in stage_rows(run.metrics)
        ]
        for _, run, row in rows:
            cells = (row["stage"], *(figure(f, row.get(f)) for f in FIGURES))
            table.add_row(*((run.name, *cells) if several else cells))
        for key in BARS:
            values = [row.get(key) for _, _, row in rows]
            top = max((v for v in values if is_number(v)), default=0.0)
            scale = 1.0 if key.endswith(("_rate", "_ratio")) or key == "accuracy" else top or 1.0
            lines = []
            for i, run, row in rows:
                v = row.get(key)
                name = f"{row['stage']:<4} {run.name[:10]:<10}" if several else f"{row['stage']:<4}"
                colour = run_colour(i if several else 0)
                fill = text_bar(v / scale) if is_number(v) else " " * BAR_WIDTH
                lines.append(Content.assemble(f"{name} ", (fill, colour), f" {figure(key, v)}"))
            box = self.query_one(f"#bars-{key}", Static)
            box.border_title = label(key)
            box.update(Content("\n").join(lines))
