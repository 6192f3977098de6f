"""`pr1 chat`: type a problem and watch the answer stream in; when the model opens `<Parallel>` the view
branches into paths that grow side by side, then fold into the block's summary.

The model loads in a thread while the app is already open: the user may type a problem meanwhile, which
waits for it. Generation runs in a thread worker (the UI never waits on the model); the engine's token events
go into a `LiveTrace` that a timer shows about 20 times a second. Escape or ctrl+c stops a generation. A
finished turn shows (and saves) the tree it drew: its text, its counters, its format check."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Footer, Input, Static

from pr1.errors import Pr1Error
from pr1.tui.app import Pr1App
from pr1.tui.chat_session import ChatSettings, Generation, Generator, SessionFile, Turn, split_answer
from pr1.tui.live_trace import LiveTrace
from pr1.tui.widgets.settings_panel import SettingsPanel
from pr1.tui.widgets.trace_tree import TraceView
from pr1.tui.widgets.turn_list import TurnList
from pr1.tui.widgets.turn_view import TurnView

HELP = """\
# pr1 chat

Type a math problem and press enter (also while the model loads: the problem waits for it). To have the
answer graded, end the line with `|| <gold answer>`, e.g. `What is 6 × 7? || 42`.

The answer streams in as a tree: main text, then each `<Parallel>` block with its paths side by side
(`ctrl+l`: stacked), which fold into the block's summary once it closes. Click a block's or a path's
title (or `enter` on it) to fold or unfold it; every turn stays in the scroll above. Under each answer:
whether the trace keeps the format rules (or the first reason it does not), its tokens and critical path,
and the seed it was sampled with.

The side panel holds the settings of the next generation (temperature, top-p, max tokens, paths per
block, mode, seed; an empty seed draws a new one per turn, and the panel shows the last one used).
`ctrl+s` appends the finished turns to the session file: one JSON object per turn with `problem`,
`answer` (the gold answer, `""` when none was given), `completion` (exactly the trace on screen) and
the settings, so `pr1 score SESSION.jsonl` grades it."""


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
        self.ready = False  # the generator has loaded
        self.notice: str | None = None  # what its load said (e.g. that the model cannot branch)
        self.load_error: BaseException | None = None  # a failed load ends the app; `run_chat` raises it
        self.waiting: Turn | None = None  # a problem asked while the model loads
        self._load_outcome: tuple[str | None, BaseException | None] | None = None  # (notice, error)
        self._started = 0.0
        self._stacked = False
        self._status = ""

    def compose(self) -> ComposeResult:
        yield Static(id="chat-header")
        yield Static(id="notice")
        with Horizontal(id="chat-body"):
            yield TurnList(Static("Type a problem below and press enter.", id="empty"), id="turns")
            yield SettingsPanel(self.initial_settings, id="settings")
        yield Input(placeholder="A math problem (optionally: … || gold answer), then enter", id="prompt")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#notice").display = False
        self._ticker = self.set_interval(self.refresh_interval, self._refresh_live)
        self._started = time.monotonic()
        self._show_status("loading the model · type a problem meanwhile")
        self.query_one("#prompt", Input).focus()
        # a daemon thread, not a worker: quitting while a big model loads must not wait for it
        threading.Thread(target=self._load, name="pr1-chat-load", daemon=True).start()

    def on_unmount(self) -> None:
        self._ticker.stop()
        self.stop_event.set()  # however the app ends, a running generation stops

    @property
    def generating(self) -> bool:
        return self.live is not None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # `esc` is bound with priority (an Input would take it), so it would never reach the help screen or
        # the command palette: over them it is theirs, and closes them
        return not (action == "stop" and len(self.screen_stack) > 1)

    # -------------------------------------------------------------------------------------------- loading

    def _load(self) -> None:
        # runs in its own thread; the ticker (`_refresh_live`) picks the outcome up on the app's side, so
        # that nothing calls into an app that may have closed meanwhile
        try:
            self._load_outcome = (self.generator.load(), None)
        except BaseException as e:  # noqa: BLE001 - nothing to chat with: the app ends and run_chat raises it
            self._load_outcome = (None, e)

    def _check_loaded(self) -> bool:
        """Whether the generator has loaded; acts on the outcome of `_load` the first time it is there."""
        if self.ready:
            return True
        if self._load_outcome is None:
            return False
        (notice, error), self._load_outcome = self._load_outcome, None
        if error is not None:
            self.load_error = error
            self.exit(return_code=1)
            return False
        self.ready, self.notice = True, notice
        if notice:
            line = self.query_one("#notice", Static)
            line.update(Content.assemble(("⚠ ", "bold"), notice))
            line.display = True
        self._show_status("ready")
        turn, self.waiting = self.waiting, None
        if turn is not None:
            self._launch(turn)
        return True

    def _show_status(self, status: str) -> None:
        if status == self._status:
            return  # the ticker calls this 20 times a second: redraw only what changed
        self._status = status
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
        """Start generating for `problem` (once the model has loaded: until then it waits); False (with a
        notice) when busy or a setting is invalid."""
        if self.generating or self.waiting is not None:
            what = "Still generating: esc stops it." if self.generating else "A problem already waits."
            self.notify(what, severity="warning")
            return False
        try:
            settings = self.query_one(SettingsPanel).settings().with_seed()
        except Pr1Error as e:
            self.notify(str(e), title="settings", severity="error")
            return False
        turn = Turn(problem, answer, settings)
        view = TurnView(len(self.turns) + 1, turn)
        view.trace.stacked = self._stacked
        self.turns.append(turn)
        self.views.append(view)
        self.query_one("#empty").display = False
        turns = self.query_one(TurnList)
        turns.mount(view)
        turns.show_end()
        if self.ready:
            self._launch(turn)
        else:
            self.waiting = turn
            view.answer.update("waits for the model to load … (esc cancels)")
        return True

    def _launch(self, turn: Turn) -> None:
        self.query_one(SettingsPanel).show_seed_used(turn.settings.seed)
        self.views[self.turns.index(turn)].answer.update("generating … (esc stops)")
        self.live = LiveTrace()
        self.stop_event = threading.Event()
        self._started = time.monotonic()
        self._generate(turn, self.live, self.stop_event)

    @work(thread=True, exclusive=True, group="generate")
    def _generate(self, turn: Turn, live: LiveTrace, stop: threading.Event) -> None:
        result: Generation | None = None
        error: str | None = None
        try:
            result = self.generator.generate(turn.problem, turn.settings, live.add, stop)
        except Exception as e:  # noqa: BLE001 - shown in the turn, the app goes on
            error = f"{type(e).__name__}: {e}"
        turn.finish(live, result, error)
        self.call_from_thread(self._finish, turn)

    def _refresh_live(self) -> None:
        if not self.is_running:  # the ticker may fire once more while the app shuts down
            return
        secs = time.monotonic() - self._started
        if not self._check_loaded():
            waits = " · your problem waits for it" if self.waiting else " · type a problem meanwhile"
            self._show_status(f"loading the model · {secs:.0f} s{waits}")
            return
        live = self.live
        if live is None:
            return
        view = self.views[-1]
        trace = live.trace()
        if trace.render() == view.trace.text:
            return  # nothing new (the rate too is redrawn per new token, so a paused stream costs nothing)
        view.trace.show(trace)
        rate = f" · {live.tokens / secs:.1f} tok/s" if secs > 0.5 else ""
        self._show_status(f"generating · {live.tokens} tokens{rate} · esc stops")

    def _finish(self, turn: Turn) -> None:
        self.live = None
        self.views[self.turns.index(turn)].show_result()
        if turn.error:
            self.notify(turn.error, title="generation failed", severity="error", timeout=15)
        self._show_status("stopped" if turn.stopped else "ready")

    # ----------------------------------------------------------------------------------------- actions

    def action_stop(self) -> None:
        if self.generating:
            self.stop_event.set()
            self._show_status("stopping …")
        elif self.waiting is not None:  # cancel the problem that waits for the model
            turn, self.waiting = self.waiting, None
            self.views.pop().remove()
            self.turns.remove(turn)
            self.query_one("#empty").display = not self.turns
            self.notify("The waiting problem was cancelled.")

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
            self.copy_to_clipboard(view.trace.text)
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
        if self.waiting is not None:
            return "a problem waits for the model: ctrl+q again quits."
        unsaved = sum(t.finished for t in self.turns[self.session.saved :])
        return f"{unsaved} turn(s) are not saved (ctrl+s): ctrl+q again quits." if unsaved else None


def run_chat(
    generator: Generator, *, settings: ChatSettings | None = None, save_path: str | Path | None = None
) -> str | None:
    """Run the chat; returns the notice the generator's load gave (None: none), and raises what the load
    raised (after the app has closed, so that a `Pr1Error` is the CLI's one-line error)."""
    app = ChatApp(generator, settings=settings, save_path=save_path)
    app.run()
    if app.load_error is not None:
        raise app.load_error
    return app.notice
