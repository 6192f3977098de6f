"""The runs' events (start, checkpoint, eval, notice, end) with their time since the run started."""

from __future__ import annotations

from textual.widgets import DataTable

from pr1.formatting import pairs
from pr1.tui.widgets.header import format_duration


def details(row: dict) -> str:
    """An event's fields as one readable line (figures formatted, nested dicts flattened); a notice is
    its message."""
    if row.get("event") == "notice" and set(row) <= {"event", "time", "message"}:
        return str(row.get("message", ""))
    return pairs({k: v for k, v in row.items() if k not in ("event", "time")})


class EventsTable(DataTable):
    def __init__(self, *, id: str | None = None):
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.start_times: dict[str, float] = {}
        self.with_run = False

    def set_columns(self, with_run: bool) -> None:
        """Call once before adding events; `with_run`: a column naming the run (several runs)."""
        self.with_run = with_run
        self.add_columns(*(("run",) if with_run else ()), "at", "event", "details")

    def add_events(self, rows: list[dict], run: str = "") -> None:
        for row in rows:
            t = row.get("time")
            if run not in self.start_times and isinstance(t, (int, float)):
                self.start_times[run] = float(t)
            start = self.start_times.get(run)
            at = "+" + format_duration(t - start) if isinstance(t, (int, float)) and start is not None else ""
            cells = (at, str(row.get("event", "?")), details(row))
            self.add_row(*((run, *cells) if self.with_run else cells))
