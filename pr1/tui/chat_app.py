"""`pr1 chat`: type a problem and watch the answer stream in; when the model opens `<Parallel>` the view
branches into paths that grow side by side, then fold into the block's summary.

Generation runs in a thread worker (the UI never waits on the model); the engine's token events go
into a `LiveTrace` that a timer shows about 20 times a second. Escape or ctrl+c stops a generation."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.widgets import Footer, Input, Static

from pr1.errors import Pr1Error
from pr1.tui.app import Pr1App
from pr1.tui.chat_session import ChatSettings, Generation, Generator, SessionFile, Turn, split_answer
from pr1.tui.live_trace import LiveTrace
from pr1.tui.widgets.settings_panel import SettingsPanel
from pr1.tui.widgets.trace_tree import TraceView
from pr1.tui.widgets.turn_view import TurnView

HELP = """\
# pr1 chat

Type a math problem and press enter. To have the answer graded, end the line with `|| <gold answer>`,
e.g. `What is 6 × 7? || 42`.

The answer streams in as a tree: main text, then each `<Parallel>` block with its paths side by side
(`ctrl+l`: stacked), which fold into the block's summary once it closes. Click a block's or a path's
title (or `enter` on it) to fold or unfold it; every turn stays in the scroll above.

The side panel holds the settings of the next generation (temperature, top-p, max tokens, paths per
block, mode, seed). `ctrl+s` appends the finished turns to the session file: one JSON object per turn
with `problem`, `answer` (the gold answer, `""` when none was given), `completion` and the settings,
so `pr1 score SESSION.jsonl` grades it."""


class ChatApp(Pr1App):
    CSS_PATH = ["common.tcss", "trace.tcss", "chat_app.tcss"]
    TITLE = "pr1 chat"
    HELP_MARKDOWN = HELP
    BINDINGS = [
        Binding("escape,ctrl+c", "stop", "Stop", priority=True, key_display="esc"),
        Binding("ctrl+r", "regenerate", "Regenerate"),
        Binding("ctrl+s", "save", "Save"),
        Binding("ctrl+y", "copy", "Copy"),
        Binding("ctrl+b", "toggle_blocks", "Fold blocks"),
        Binding("ctrl+l", "toggle_layout", "Layout"),
        Binding("f2", "toggle_settings", "Settings"),
        Binding("f1", "help", "Help"),
        Binding("ctrl+q", "quit_app", "Quit"),
    ]

    def __init__(
        self,
        generator: Generator,
        *,
        settings: ChatSettings | None = None,
        save_path: str | Path | None = None,
        refresh_interval: float = 0.05,
    ):
        super().__init__()
        self.generator = generator
        self.initial_settings = settings or ChatSettings()
        self.session = SessionFile(save_path or time.strftime("pr1-chat-%Y%m%d-%H%M%S.jsonl"), generator.name)
        self.refresh_interval = refresh_interval
        self.turns: list[Turn] = []
        self.views: list[TurnView] = []
        self.live: LiveTrace | None = None
        self.stop_event = threading.Event()
        self._started = 0.0
        self._stacked = False

    def compose(self) -> ComposeResult:
        yield Static(id="chat-header")
        with Horizontal(id="chat-body"):
            yield VerticalScroll(Static("Type a problem below and press enter.", id="empty"), id="turns")
            yield SettingsPanel(self.initial_settings, id="settings")
        yield Input(placeholder="A math problem (optionally: … || gold answer), then enter", id="prompt")
        yield Footer()

    def on_mount(self) -> None:
        self._ticker = self.set_interval(self.refresh_interval, self._refresh_live)
        self._show_status("ready")
        self.query_one("#prompt", Input).focus()

    def on_unmount(self) -> None:
        self._ticker.stop()
        self.stop_event.set()  # however the app ends, a running generation stops

    @property
    def generating(self) -> bool:
        return self.live is not None

    def _show_status(self, status: str) -> None:
        self.query_one("#chat-header", Static).update(
            Content.assemble(("pr1 chat ", "bold $accent"), (self.generator.name, "bold"), "  ·  ", status)
        )

    # --------------------------------------------------------------------------------------- generation

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "prompt":
            return
        problem, answer = split_answer(event.value)
        if not problem:
            return
        if self.start(problem, answer):
            event.input.value = ""

    def start(self, problem: str, answer: str = "") -> bool:
        """Start generating for `problem`; False (with a notice) when busy or a setting is invalid."""
        if self.generating:
            self.notify("Still generating: esc stops it.", severity="warning")
            return False
        try:
            settings = self.query_one(SettingsPanel).settings()
        except Pr1Error as e:
            self.notify(str(e), title="settings", severity="error")
            return False
        turn = Turn(problem, answer, settings)
        view = TurnView(len(self.turns) + 1, turn)
        view.trace.stacked = self._stacked
        self.turns.append(turn)
        self.views.append(view)
        self.query_one("#empty").display = False
        turns = self.query_one("#turns", VerticalScroll)
        turns.mount(view)
        turns.scroll_end(animate=False)
        self.live = LiveTrace()
        self.stop_event = threading.Event()
        self._started = time.monotonic()
        self._generate(turn, self.live, self.stop_event)
        return True

    @work(thread=True, exclusive=True, group="generate")
    def _generate(self, turn: Turn, live: LiveTrace, stop: threading.Event) -> None:
        result: Generation | None = None
        error: str | None = None
        try:
            result = self.generator.generate(turn.problem, turn.settings, live.add, stop)
        except Exception as e:  # noqa: BLE001 - shown in the turn, the app goes on
            error = f"{type(e).__name__}: {e}"
        turn.result, turn.error, turn.stopped = result, error, stop.is_set()
        turn.score()
        self.call_from_thread(self._finish, turn)

    def _refresh_live(self) -> None:
        live = self.live
        if live is None:
            return
        view = self.views[-1]
        trace = live.trace()
        if trace.render() != view.trace.text:
            view.trace.show(trace)
            self.query_one("#turns", VerticalScroll).scroll_end(animate=False)
        secs = time.monotonic() - self._started
        rate = f" · {live.generated / secs:.1f} tok/s" if secs > 0.5 else ""
        self._show_status(f"generating · {live.generated} tokens{rate} · esc stops")

    def _finish(self, turn: Turn) -> None:
        self.live = None
        view = self.views[self.turns.index(turn)]
        turn.text = turn.result.text if turn.result else view.trace.text
        view.show_result()
        if turn.error:
            self.notify(turn.error, title="generation failed", severity="error", timeout=15)
        self._show_status("stopped" if turn.stopped else "ready")

    # ----------------------------------------------------------------------------------------- actions

    def action_stop(self) -> None:
        if self.generating:
            self.stop_event.set()
            self._show_status("stopping …")

    def action_regenerate(self) -> None:
        if self.turns:
            last = self.turns[-1]
            self.start(last.problem, last.answer)

    def action_save(self) -> None:
        n = self.session.save(self.turns)
        total = self.session.saved
        self.notify(f"{n} new turn(s) saved, {total} in {self.session.path}", title="session")

    def _current_view(self) -> TurnView | None:
        node = self.focused
        while node is not None and not isinstance(node, TurnView):
            node = node.parent
        return node if isinstance(node, TurnView) else (self.views[-1] if self.views else None)

    def action_copy(self) -> None:
        view = self._current_view()
        if view is not None:
            self.copy_to_clipboard(view.turn.text or view.trace.text)
            self.notify("Trace copied (tags written literally).")

    def action_toggle_blocks(self) -> None:
        """Fold every block if any is unfolded, else unfold them all."""
        traces = list(self.query(TraceView))
        fold = any(not b.fold.collapsed for t in traces for b in t.blocks)
        for trace in traces:
            trace.set_blocks_collapsed(fold)

    def action_toggle_layout(self) -> None:
        self._stacked = not self._stacked
        for trace in self.query(TraceView):
            trace.stacked = self._stacked

    def action_toggle_settings(self) -> None:
        panel = self.query_one(SettingsPanel)
        panel.display = not panel.display

    def quit_warning(self) -> str | None:
        if self.generating:
            return "a generation is running: ctrl+q again quits."
        unsaved = sum(t.finished for t in self.turns[self.session.saved :])
        return f"{unsaved} turn(s) are not saved (ctrl+s): ctrl+q again quits." if unsaved else None


def run_chat(
    generator: Generator, *, settings: ChatSettings | None = None, save_path: str | Path | None = None
) -> None:
    ChatApp(generator, settings=settings, save_path=save_path).run()
