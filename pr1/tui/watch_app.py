"""`pr1 watch RUN_DIR`: a live dashboard of a run folder (curves, rollouts as trees, events).

It only reads the folder (so it works over SSH and on finished runs) and polls it about once a second.
With `job=` it also runs the job that writes the folder in a background thread (`run_watch`)."""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Footer, Static, TabbedContent, TabPane

from pr1.score import summarise
from pr1.tui.app import Pr1App
from pr1.tui.run_state import RunState
from pr1.tui.widgets.answer_line import AnswerLine
from pr1.tui.widgets.curves import CurvesPanel
from pr1.tui.widgets.events_table import EventsTable
from pr1.tui.widgets.header import RunHeader
from pr1.tui.widgets.rollout_list import RolloutList
from pr1.tui.widgets.summary_table import SummaryTable
from pr1.tui.widgets.trace_tree import TraceView

SUMMARY_KEYS = ("correct", "parallel", "format_valid", "n_blocks", "reward")

HELP = """\
# pr1 watch

A live view of a run folder: it re-reads `metrics.jsonl`, `rollouts.jsonl`, `events.jsonl` and
`run.json` every second, so it follows a running job (also over SSH) or shows a finished one.

- **Curves**: every metric group the run logs; on the reward curve ◆ marks the steps where the
  alternating schedule used the tiered reward. An eval folder shows its summary table here instead.
- **Rollouts**: the sampled traces; pick one to see it as a tree. Each `<Parallel>` block folds
  (its summary stays visible), each path folds on its own (`enter` on its title).
- **Events**: start, checkpoints, evals, notices and the end of the run.

Malformed lines in the streams are skipped and reported as notices."""


class WatchApp(Pr1App):
    CSS_PATH = ["common.tcss", "trace.tcss", "watch_app.tcss"]
    TITLE = "pr1 watch"
    HELP_MARKDOWN = HELP
    BINDINGS = [
        Binding("1", "tab('overview')", "Curves/summary"),
        Binding("2", "tab('rollouts')", "Rollouts"),
        Binding("3", "tab('events')", "Events"),
        Binding("f", "cycle_correctness", "Filter answers"),
        Binding("p", "cycle_parallel", "Filter parallel"),
        Binding("l", "toggle_layout", "Side by side/stacked"),
        Binding("plus,equals_sign", "expand_all", "Expand blocks", key_display="+", show=False),
        Binding("minus", "collapse_all", "Fold blocks", key_display="-", show=False),
        Binding("right_square_bracket", "step(1)", "Next step", key_display="]", show=False),
        Binding("left_square_bracket", "step(-1)", "Previous step", key_display="[", show=False),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q,ctrl+q", "quit_app", "Quit", key_display="q"),
    ]

    def __init__(
        self, run_dir: str | Path, *, job: Callable[[], Any] | None = None, poll_interval: float = 1.0
    ):
        super().__init__()
        self.state = RunState(run_dir)
        self.poll_interval = poll_interval
        self.job = job
        self.job_thread: threading.Thread | None = None
        self.job_result: Any = None
        self.job_error: BaseException | None = None
        self._job_reported = False
        self._polled = False

    def compose(self) -> ComposeResult:
        yield RunHeader(id="header")
        with TabbedContent(id="tabs"):
            with TabPane("Curves", id="overview"):
                yield CurvesPanel(id="curves")
                yield Static(id="eval-live")
                yield SummaryTable(id="summary")
                yield Static("No metrics yet.", id="no-curves")
            with TabPane("Rollouts", id="rollouts"), Horizontal():
                yield RolloutList(self.state.rollouts, id="rollout-list")
                with Vertical(id="detail"):
                    yield Static(id="problem")
                    yield TraceView(id="trace")
                    yield AnswerLine(id="answer")
            with TabPane("Events", id="events"):
                yield EventsTable(id="events-table")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = str(self.state.path)
        self.query_one("#summary").display = False
        self.query_one("#eval-live").display = False
        self.poll()
        self.set_interval(self.poll_interval, self.poll)
        if self.job is not None:
            self.job_thread = threading.Thread(target=self._run_job, name="pr1-job", daemon=True)
            self.job_thread.start()

    # ------------------------------------------------------------------------------------------ polling

    def poll(self) -> None:
        state = self.state
        up = state.poll()
        first, self._polled = not self._polled, True
        for problem in up.problems:
            self.notify(problem, title="run folder", severity="warning", timeout=8)
        if up.info_changed:
            self._show_kind()
        if up.metrics:
            self.query_one(CurvesPanel).plot(state.metrics)
            self.query_one("#no-curves").display = False
        if up.info_changed or up.metrics:
            self.query_one(RunHeader).show_state(state)
        if up.rollouts:
            self.query_one(RolloutList).add_rows(len(state.rollouts) - len(up.rollouts))
        if up.rollouts or up.info_changed:
            self._show_eval_figures()
        if up.summary_changed and state.summary is not None:
            self.query_one(SummaryTable).show_summary(state.summary)
            self._show_kind()
        if up.events:
            self.query_one(EventsTable).add_events(up.events)
            if not first:
                for e in up.events:
                    if e.get("event") == "notice":
                        self.notify(str(e.get("message", "")), title="notice", timeout=8)
                    elif e.get("event") == "end":
                        self.notify(f"run ended: {e.get('status', '?')}", title=state.path.name)
        if first and not state.info:
            self.query_one(RunHeader).show_state(state)
        self._check_job()

    def _show_kind(self) -> None:
        is_eval = self.state.kind == "eval"
        has_summary = self.state.summary is not None
        self.query_one(CurvesPanel).display = not is_eval
        self.query_one("#eval-live").display = is_eval
        self.query_one(SummaryTable).display = is_eval and has_summary
        self.query_one("#no-curves").display = (is_eval and not has_summary) or (
            not is_eval and not self.state.metrics
        )
        self.query_one("#no-curves", Static).update("No summary yet." if is_eval else "No metrics yet.")
        self.query_one(TabbedContent).get_tab("overview").label = Content("Summary" if is_eval else "Curves")

    def _show_eval_figures(self) -> None:
        """An eval folder's figures over the completions so far (its summary.json comes at the end)."""
        if self.state.kind != "eval":
            return
        scored = [r for r in self.state.rollouts if all(k in r for k in SUMMARY_KEYS)]
        s = summarise(scored)
        self.query_one("#eval-live", Static).update(
            f"{len(self.state.rollouts)} completions · accuracy {s['accuracy'] or 0:.1%} · parallel "
            f"{s['parallel_ratio'] or 0:.1%} · format-valid {s['format_valid_rate'] or 0:.1%} · blocks "
            f"{s['blocks_mean'] or 0:.2f} · reward {s['reward_mean'] or 0:+.3f}"
        )

    # ---------------------------------------------------------------------------------------- rollouts

    def on_rollout_list_selected(self, message: RolloutList.Selected) -> None:
        row = self.state.rollouts[message.index]
        problem = self.query_one("#problem", Static)
        problem.border_title = (
            f"step {row.get('step', '?')} · {row.get('id', '?')} · sample {row.get('sample', '?')}"
        )
        problem.update(Content(str(row.get("problem", "")).strip()))
        self.query_one(TraceView).show(str(row.get("completion", "")), reset=True)
        notes = []
        if row.get("format_valid") is False:
            errors = row.get("format_errors") or []
            notes.append("format: " + ("; ".join(map(str, errors[:2])) if errors else "invalid"))
        if row.get("truncated"):
            notes.append("truncated")
        if row.get("phase"):
            notes.append(f"phase {row['phase']}")
        reward = row.get("reward")
        self.query_one(AnswerLine).set_verdict(
            None if row.get("pred") is None else str(row["pred"]),
            correct=row.get("correct") if isinstance(row.get("correct"), bool) else None,
            reward=float(reward) if isinstance(reward, (int, float)) else None,
            gold=None if row.get("answer") is None else str(row["answer"]),
            note=" · ".join(notes),
        )

    # ----------------------------------------------------------------------------------------- actions

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_cycle_correctness(self) -> None:
        self.action_tab("rollouts")
        self.query_one(RolloutList).cycle_correctness()

    def action_cycle_parallel(self) -> None:
        self.action_tab("rollouts")
        self.query_one(RolloutList).cycle_parallel()

    def action_toggle_layout(self) -> None:
        trace = self.query_one(TraceView)
        trace.stacked = not trace.stacked

    def action_expand_all(self) -> None:
        self.query_one(TraceView).set_blocks_collapsed(False)

    def action_collapse_all(self) -> None:
        self.query_one(TraceView).set_blocks_collapsed(True)

    def action_step(self, direction: int) -> None:
        self.action_tab("rollouts")
        self.query_one(RolloutList).jump_step(direction)

    def quit_warning(self) -> str | None:
        return "The job is still running: press q again to stop it and quit." if self.job_running else None

    # -------------------------------------------------------------------------------------------- job

    @property
    def job_running(self) -> bool:
        return self.job_thread is not None and self.job_thread.is_alive()

    def _run_job(self) -> None:
        assert self.job is not None
        try:
            self.job_result = self.job()
        except BaseException as e:  # noqa: BLE001 - reported in the UI, then re-raised by run_watch
            self.job_error = e

    def _check_job(self) -> None:
        if self.job_thread is None or self.job_running or self._job_reported:
            return
        self._job_reported = True
        if self.job_error is not None:
            self.notify(
                f"{type(self.job_error).__name__}: {self.job_error}",
                title="job failed",
                severity="error",
                timeout=30,
            )
        else:
            self.notify("The job finished; press q to leave.", title="job done", timeout=30)


def interrupt_thread(thread: threading.Thread) -> None:
    """Raise KeyboardInterrupt inside `thread` (at its next Python instruction), as Ctrl-C would in a
    job run without the TUI, so that it marks its run interrupted and closes its files."""
    if thread.ident is not None and thread.is_alive():
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(thread.ident), ctypes.py_object(KeyboardInterrupt)
        )


def run_watch(
    run_dir: str | Path,
    *,
    job: Callable[[], Any] | None = None,
    poll_interval: float = 1.0,
    stop_timeout: float = 60.0,
) -> Any:
    """Show the dashboard of `run_dir` until the user quits.

    `job`: a callable that writes `run_dir` (e.g. the training loop of `pr1 rl`); it runs in a background
    thread while the app shows the folder, and the app stays open when it ends. Returns what the job
    returned; re-raises what it raised. Quitting while it runs interrupts it (KeyboardInterrupt inside
    the job, waiting up to `stop_timeout` s for it to clean up) and raises KeyboardInterrupt."""
    app = WatchApp(run_dir, job=job, poll_interval=poll_interval)
    app.run()
    thread = app.job_thread
    if thread is not None and thread.is_alive():
        interrupt_thread(thread)
        thread.join(stop_timeout)
        raise KeyboardInterrupt
    if app.job_error is not None:
        raise app.job_error
    return app.job_result
