"""The run's events (start, checkpoint, eval, notice, end) with their time since the run started."""

from __future__ import annotations

from textual.widgets import DataTable

from pr1.tui.widgets.header import format_duration


def _details(row: dict) -> str:
    skip = {"event", "time"}
    parts = []
    for k, v in row.items():
        if k in skip:
            continue
        parts.append(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}")
    return "  ".join(parts)


class EventsTable(DataTable):
    def __init__(self, *, id: str | None = None):
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.start_time: float | None = None

    def on_mount(self) -> None:
        self.add_columns("at", "event", "details")

    def add_events(self, rows: list[dict]) -> None:
        for row in rows:
            t = row.get("time")
            if self.start_time is None and isinstance(t, (int, float)):
                self.start_time = float(t)
            at = "+" + format_duration(t - self.start_time) if isinstance(t, (int, float)) else ""
            self.add_row(at, str(row.get("event", "?")), _details(row))
