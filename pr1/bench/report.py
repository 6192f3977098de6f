"""A benchmark's result as a table (what `pr1 bench` prints and writes to BENCH.md), plus its raw figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.table import Table


@dataclass
class Report:
    name: str  # rollout | structured | sft | grpo
    title: str
    columns: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)  # the ratios the targets are about, skipped backends
    settings: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)  # raw numbers, for other tools
    failed: bool = False  # a part of it failed (a rerun measures it again)

    def markdown(self, measured: str = "") -> str:
        """The table under a `###` title; `measured` (when, where, the command) goes between the two."""
        lines = [f"### {self.title}", ""] + ([measured, ""] if measured else [])
        if self.settings:
            lines += ["Settings: " + ", ".join(f"{k}={_setting(v)}" for k, v in self.settings.items()), ""]
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("|" + "---|" * len(self.columns))
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        if self.notes:
            lines += [""] + [f"- {note}" for note in self.notes]
        return "\n".join(lines) + "\n"

    def table(self) -> Table:
        table = Table(title=self.title)
        for i, column in enumerate(self.columns):
            table.add_column(column, justify="left" if i == 0 else "right")
        for row in self.rows:
            table.add_row(*row)
        if self.notes:
            table.caption = "\n".join(self.notes)
        return table


def target(what: str, ratio: float, at_least: float) -> str:
    """A ratio against its target, marked: "fork vs generate: 1.06x (target: at least 0.9x): met"."""
    verdict = "met" if ratio >= at_least else "MISSED"
    return f"{what}: {ratio:.2f}x (target: at least {at_least:g}x): {verdict}"


def num(value: float | None, digits: int = 1, unit: str = "") -> str:
    """A figure for a table cell: thousands separated, `digits` decimals; "-" when missing."""
    if value is None:
        return "-"
    return f"{value:,.{digits}f}{unit}"


def _setting(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
