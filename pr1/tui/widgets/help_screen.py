"""`?`: what the screen shows and every key binding of the app."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown


def keys_table(bindings: list[Binding]) -> str:
    rows = ["| key | action |", "|---|---|"]
    for b in bindings:
        if b.description:
            keys = ", ".join(b.key_display or k for k in b.key.split(","))
            rows.append(f"| `{keys}` | {b.description} |")
    return "\n".join(rows)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close help")]

    def __init__(self, intro: str, bindings: list[Binding]):
        super().__init__(id="help")
        self.text = f"{intro}\n\n## Keys\n\n{keys_table(bindings)}\n\n`ctrl+p` opens the command palette."

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Markdown(self.text)
