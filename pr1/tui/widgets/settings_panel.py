"""`pr1 chat`'s side panel: the sampling settings of the next generation."""

from __future__ import annotations

from dataclasses import replace

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Input, Label, Select, Static

from pr1.errors import Pr1Error
from pr1.rollout.config import MODES
from pr1.tui.chat_session import ChatSettings


class SettingsPanel(VerticalScroll):
    def __init__(self, settings: ChatSettings, *, id: str | None = None):
        super().__init__(id=id)
        self.initial = settings

    def compose(self) -> ComposeResult:
        s = self.initial
        yield Label("temperature")
        yield Input(str(s.temperature), type="number", id="temperature")
        yield Label("top-p")
        yield Input(str(s.top_p), type="number", id="top_p")
        yield Label("max tokens")
        yield Input(str(s.max_tokens), type="integer", id="max_tokens")
        yield Label("paths per block")
        yield Input(str(s.num_paths), type="integer", id="num_paths")
        yield Label("mode")
        yield Select([(m, m) for m in MODES], value=s.mode, allow_blank=False, id="mode")
        yield Label("seed (empty: random)")
        yield Input("" if s.seed is None else str(s.seed), type="integer", id="seed")
        yield Static(id="seed-used")

    def show_seed_used(self, seed: int | None) -> None:
        """The seed of the turn being generated: typed into the seed field, it repeats the turn."""
        self.query_one("#seed-used", Static).update(f"last turn: {seed}")

    def settings(self) -> ChatSettings:
        """The settings as typed; a Pr1Error names a field that is empty or out of range."""

        def value(field: str, cast: type) -> float | int:
            text = self.query_one(f"#{field}", Input).value.strip()
            try:
                return cast(text)
            except ValueError:
                raise Pr1Error(f"{field.replace('_', ' ')}: {text!r} is not a number") from None

        seed = self.query_one("#seed", Input).value.strip()
        return replace(
            self.initial,
            temperature=float(value("temperature", float)),
            top_p=float(value("top_p", float)),
            max_tokens=int(value("max_tokens", int)),
            num_paths=int(value("num_paths", int)),
            mode=str(self.query_one("#mode", Select).value),
            seed=int(seed) if seed else None,
        )
