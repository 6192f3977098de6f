"""`h`: which runs the charts show (the others stay in the header, marked hidden)."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import SelectionList

from pr1.tui.charts import run_colour


class RunPicker(ModalScreen[set[int]]):
    """Returns the indices of the runs to hide."""

    BINDINGS = [Binding("escape,enter,h,q", "done", "Close")]

    def __init__(self, names: Sequence[str], hidden: set[int]):
        super().__init__(id="run-picker")
        self.names = list(names)
        self.hidden = set(hidden)

    def compose(self) -> ComposeResult:
        options = []
        for i, name in enumerate(self.names):
            colour = run_colour(i)
            options.append((Content.assemble(("■ ", f"bold {colour}"), name), i, i not in self.hidden))
        picker = SelectionList[int](*options, id="run-list")
        picker.border_title = "shown runs (space toggles, esc closes)"
        yield picker

    def action_done(self) -> None:
        shown = set(self.query_one(SelectionList).selected)
        self.dismiss({i for i in range(len(self.names)) if i not in shown})
