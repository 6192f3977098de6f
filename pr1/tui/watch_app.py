"""`pr1 watch RUN [RUN …]`: a live dashboard of run folders (curves, GRPO health, every metric, rollouts
as trees, events), several runs overlaid with a colour each.

It only reads the folders (so it works over SSH and on finished runs) and polls them about once a second.
With `job=` it also runs the job that writes the (one) folder in a background thread (`run_watch`)."""

from __future__ import annotations

import csv
import ctypes
import io
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Static, TabbedContent, TabPane

from pr1.formatting import number, percent
from pr1.jsonl import write_text_atomic
from pr1.metrics_health import no_update_message, no_update_steps
from pr1.score import summarise
from pr1.tui.app import Pr1App
from pr1.tui.charts import CURVES, HEALTH, Chart, ChartView, chart_lines, lines_csv, step_range
from pr1.tui.run_state import STAGED, RunState, short_names
from pr1.tui.widgets.all_metrics import AllMetrics, all_keys
from pr1.tui.widgets.answer_line import AnswerLine
from pr1.tui.widgets.chart_grid import ChartGrid
from pr1.tui.widgets.events_table import EventsTable
from pr1.tui.widgets.header import RunHeader
from pr1.tui.widgets.no_update_notice import NoUpdateNotice
from pr1.tui.widgets.rollout_list import RolloutList
from pr1.tui.widgets.run_picker import RunPicker
from pr1.tui.widgets.stage_view import StageView, stages_csv
from pr1.tui.widgets.summary_table import SummaryTable, benchmark_table
from pr1.tui.widgets.trace_tree import TraceView

SUMMARY_KEYS = ("correct", "parallel", "format_valid", "n_blocks", "reward")
NOT_CURVES = ("eval", *STAGED)  # kinds shown as a table (summary, stages), not as curves over steps
CHART_TABS = ("overview", "health", "metrics")
TABS = ("overview", "health", "metrics", "rollouts", "events")

HELP = """\
# pr1 watch

A live view of run folders: it re-reads `metrics.jsonl`, `rollouts.jsonl`, `events.jsonl` and
`run.json` every second, so it follows a running job (also over SSH) or shows a finished one.
Several folders are overlaid, a colour per run (in the order given); `h` hides some.

- **Curves**: every metric group the runs log; on the reward curve ◆ marks the steps where the
  alternating schedule used the tiered reward. Below each chart: the last value (or the value at the
  cursor step), the smoothed value, min and max over the visible steps. An eval folder shows its
  summary table here, a demo folder its stages (base / SFT / RL) as a table and bars.
- **Health**: GRPO's signal: groups with equal rewards (no advantage), reward std, entropy, grad norm,
  clipped tokens, truncation, the sampling/training log-prob gap, seconds per step. A step without
  update (every group has equal rewards, or loss and grad norm 0) is announced and counted.
- **All metrics**: every numeric key logged, with the chart of the one under the cursor.
- **Rollouts**: the sampled traces; pick one to see it as a tree. Each `<Parallel>` block folds
  (its summary stays visible), each path folds on its own (`enter` on its title).
- **Events**: start, checkpoints, evals, notices and the end of each run.

Charts: `s` smoothing weight (raw and smoothed both drawn), `z`/`x` zoom in/out on the latest steps,
`t` follow the latest step or pin the range, `y` log scale (charts whose values are all positive),
`,`/`.` move the cursor, `c` clears it. `e` writes the visible charts as CSV and the screen as SVG.

Malformed lines in the streams are skipped and reported as notices."""


class WatchApp(Pr1App):
    CSS_PATH = ["common.tcss", "trace.tcss", "watch_app.tcss"]
    TITLE = "pr1 watch"
    HELP_MARKDOWN = HELP
    BINDINGS = [
        Binding("1", "tab('overview')", "Curves/summary/stages"),
        Binding("2", "tab('health')", "GRPO health"),
        Binding("3", "tab('metrics')", "All metrics"),
        Binding("4", "tab('rollouts')", "Rollouts"),
        Binding("5", "tab('events')", "Events"),
        Binding("s", "smoothing", "Smoothing"),
        Binding("z", "zoom(0.5)", "Zoom in"),
        Binding("x", "zoom(2)", "Zoom out", show=False),
        Binding("t", "follow", "Follow latest/pin", show=False),
        Binding("y", "log_scale", "Log scale", show=False),
        Binding("comma", "cursor(-1)", "Cursor left", key_display=",", show=False),
        Binding("full_stop", "cursor(1)", "Cursor right", key_display=".", show=False),
        Binding("c", "clear_cursor", "Clear cursor", show=False),
        Binding("h", "pick_runs", "Show/hide runs", show=False),
        Binding("e", "export", "Export CSV+SVG"),
        Binding("f", "cycle_correctness", "Filter answers"),
        Binding("p", "cycle_parallel", "Filter parallel"),
        Binding("r", "cycle_run", "Filter rollouts by run", show=False),
        Binding("l", "toggle_layout", "Side by side/stacked", show=False),
        Binding("plus,equals_sign", "expand_all", "Expand blocks", key_display="+", show=False),
        Binding("minus", "collapse_all", "Fold blocks", key_display="-", show=False),
        Binding("right_square_bracket", "step(1)", "Next step", key_display="]", show=False),
        Binding("left_square_bracket", "step(-1)", "Previous step", key_display="[", show=False),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q,ctrl+q", "quit_app", "Quit", key_display="q"),
    ]

    def __init__(
        self,
        run_dirs: str | Path | Sequence[str | Path],
        *,
        job: Callable[[], Any] | None = None,
        poll_interval: float = 1.0,
        export_dir: str | Path | None = None,
    ):
        """`run_dirs`: one folder or several (overlaid in this order); `job`: see `run_watch` (one folder
        only); `export_dir`: where `e` writes (default: a new pr1-watch-<time> folder in the current one)."""
        super().__init__()
        paths = [Path(run_dirs)] if isinstance(run_dirs, (str, Path)) else [Path(p) for p in run_dirs]
        if not paths:
            raise ValueError("WatchApp needs at least one run folder")
        if job is not None and len(paths) != 1:
            raise ValueError("a job writes one run folder: give exactly one with job=")
        self.states = [RunState(p, name) for p, name in zip(paths, short_names(paths), strict=True)]
        self.view = ChartView()
        self.poll_interval = poll_interval
        self.export_dir = Path(export_dir) if export_dir is not None else None
        self.job = job
        self.job_thread: threading.Thread | None = None
        self.job_result: Any = None
        self.job_error: BaseException | None = None
        self._job_reported = False
        self._polled = False
        self._main_screen: Screen | None = None

    @property
    def state(self) -> RunState:
        """The first (with `job=`: the only) run."""
        return self.states[0]

    def compose(self) -> ComposeResult:
        yield RunHeader(id="header")
        yield Static(id="view-line")
        with TabbedContent(id="tabs"):
            with TabPane("Curves", id="overview"), VerticalScroll():
                yield ChartGrid(CURVES, id="curves")
                yield StageView(id="stages")
                yield Static(id="eval-live")
                yield SummaryTable(id="summary")
                yield Static("No metrics yet.", id="no-curves", classes="empty")
            with TabPane("Health", id="health"), VerticalScroll():
                yield NoUpdateNotice(id="no-update")
                yield ChartGrid(HEALTH, id="health-charts")
                yield Static(
                    "No GRPO health metrics in these runs (pr1 rl logs them each step).",
                    id="no-health",
                    classes="empty",
                )
            with TabPane("All metrics", id="metrics"):
                yield AllMetrics(id="all-metrics")
            with TabPane("Rollouts", id="rollouts"), Horizontal():
                yield RolloutList([s.name for s in self.states], id="rollout-list")
                with Vertical(id="detail"):
                    yield Static(id="problem")
                    yield TraceView(id="trace")
                    yield AnswerLine(id="answer")
            with TabPane("Events", id="events"):
                yield EventsTable(id="events-table")
        yield Footer()

    @property
    def main(self) -> Screen:
        """The dashboard's screen (queries go there also while help or the run picker is on top)."""
        return self._main_screen or self.screen

    def on_mount(self) -> None:
        self._main_screen = self.screen
        self.sub_title = " · ".join(str(s.path) for s in self.states)
        self.main.query_one(EventsTable).set_columns(with_run=len(self.states) > 1)
        for wid in ("#summary", "#eval-live", "#stages", "#no-update"):
            self.main.query_one(wid).display = False
        self.poll()
        self.set_interval(self.poll_interval, self.poll)
        if self.job is not None:
            self.job_thread = threading.Thread(target=self._run_job, name="pr1-job", daemon=True)
            self.job_thread.start()

    # ------------------------------------------------------------------------------------------ polling

    def poll(self) -> None:
        if not self.main.query(RunHeader):
            return  # the app is closing: its widgets are gone
        first, self._polled = not self._polled, True
        several = len(self.states) > 1
        metrics = kinds = summaries = rollouts = False
        for i, state in enumerate(self.states):
            up = state.poll()
            for problem in up.problems:
                title = f"{state.name}: run folder" if several else "run folder"
                self.notify(problem, title=title, severity="warning", timeout=8)
            kinds |= up.info_changed
            summaries |= up.summary_changed and state.summary is not None
            metrics |= bool(up.metrics)
            rollouts |= bool(up.rollouts)
            if up.rollouts:
                self.main.query_one(RolloutList).add_rows(i, up.rollouts)
            if up.events:
                self.main.query_one(EventsTable).add_events(up.events, run=state.name if several else "")
            if not first:
                self._announce(state, up.metrics, up.events)
        if kinds or summaries:
            self._show_kinds()
        if summaries:
            eval_runs = [s for s in self.states if s.kind == "eval" and s.summary is not None]
            self.main.query_one(SummaryTable).show_summaries([(s.name, s.summary) for s in eval_runs])
        if rollouts or kinds:
            self._show_eval_figures()
        if metrics or kinds:
            self.redraw()
        self.main.query_one(RunHeader).show_runs(self.states, self.view.hidden)  # status and work change live
        self._check_job()

    def _announce(self, state: RunState, rows: list[dict], events: list[dict]) -> None:
        """Toasts for what arrives while watching: steps without update, notices, the end of a run."""
        who = f"{state.name}: " if len(self.states) > 1 else ""
        for row in rows:
            if (message := no_update_message(row)) is not None:
                count = len(no_update_steps(state.metrics))
                self.notify(f"{who}{message} ({count} so far)", title="GRPO", severity="warning", timeout=8)
        for e in events:
            if e.get("event") == "notice":
                self.notify(str(e.get("message", "")), title=f"{who}notice", timeout=8)
            elif e.get("event") == "end":
                self.notify(f"run ended: {e.get('status', '?')}", title=state.name)

    def _curve_view(self) -> ChartView:
        """The view with the runs shown as tables (eval, demo) left out of the curves."""
        tables = {i for i, s in enumerate(self.states) if s.kind in NOT_CURVES}
        return replace(self.view, hidden=self.view.hidden | tables)

    def _shown(self, view: ChartView) -> list[RunState]:
        return [s for i, s in enumerate(self.states) if i not in view.hidden]

    def redraw(self) -> None:
        """Redraw every chart from the metrics read so far and the current view."""
        view = self._curve_view()
        first, last = step_range(self._shown(view))
        self.main.query_one("#curves", ChartGrid).show(self.states, view, first, last)
        self.main.query_one("#health-charts", ChartGrid).show(self.states, view, first, last)
        self.main.query_one(NoUpdateNotice).show(self._shown(view))
        self.main.query_one("#no-health").display = not self.main.query_one("#health-charts", ChartGrid).shown
        self.main.query_one("#no-curves").display = not self._has_overview()
        all_first, all_last = step_range(self._shown(self.view))
        self.main.query_one(AllMetrics).show(self.states, self.view, all_first, all_last)
        demos = [(i, s) for i, s in enumerate(self.states) if s.kind in STAGED and i not in self.view.hidden]
        self.main.query_one(StageView).show([s for _, s in demos], [i for i, _ in demos])
        self.main.query_one("#view-line", Static).update(
            Content.styled(self.view.describe(first, last), "dim")
        )
        self._show_view_line()

    def _show_view_line(self) -> None:
        """The chart settings line shows above charts only."""
        tab = self.main.query_one(TabbedContent).active
        charts = self.main.query_one("#curves", ChartGrid).shown if tab == "overview" else tab in CHART_TABS
        self.main.query_one("#view-line").display = bool(charts)

    def _has_overview(self) -> bool:
        curves = bool(self.main.query_one("#curves", ChartGrid).shown)
        return curves or any(s.kind in STAGED and s.metrics or s.kind == "eval" for s in self.states)

    def _show_kinds(self) -> None:
        kinds = {s.kind for s in self.states}
        has_summary = any(s.kind == "eval" and s.summary is not None for s in self.states)
        self.main.query_one("#curves").display = bool(kinds - set(NOT_CURVES))
        self.main.query_one("#eval-live").display = "eval" in kinds
        self.main.query_one(SummaryTable).display = has_summary
        self.main.query_one(StageView).display = bool(kinds & set(STAGED))
        empty = self.main.query_one("#no-curves", Static)
        empty.update("No summary yet." if kinds == {"eval"} else "No metrics yet.")
        empty.display = not self._has_overview() or (kinds == {"eval"} and not has_summary)
        label = (
            {"eval": "Summary", **dict.fromkeys(STAGED, "Stages")}.get(kinds.pop(), "Curves")
            if len(kinds) == 1
            else "Curves"
        )
        self.main.query_one(TabbedContent).get_tab("overview").label = Content(label)

    def _show_eval_figures(self) -> None:
        """Eval folders' figures over the completions so far (their summary.json comes at the end)."""
        lines = []
        for state in self.states:
            if state.kind != "eval":
                continue
            scored = [r for r in state.rollouts if all(k in r for k in SUMMARY_KEYS)]
            s = summarise(scored)
            who = f"{state.name}: " if len(self.states) > 1 else ""
            lines.append(
                f"{who}{len(state.rollouts)} completions · accuracy {percent(s['accuracy'])} · parallel "
                f"{percent(s['parallel_ratio'])} · format-valid {percent(s['format_valid_rate'])} · blocks "
                f"{number(s['blocks_mean'], 2)} · reward {'-' if s['reward_mean'] is None else format(s['reward_mean'], '+.3f')}"
            )
        self.main.query_one("#eval-live", Static).update("\n".join(lines))

    # ---------------------------------------------------------------------------------------- rollouts

    def on_rollout_list_selected(self, message: RolloutList.Selected) -> None:
        rollouts = self.main.query_one(RolloutList)
        row = rollouts.rows[message.index]
        where = [self.states[rollouts.run_of[message.index]].name] if len(self.states) > 1 else []
        where.append(f"stage {row['stage']}" if "stage" in row else f"step {row.get('step', '?')}")
        problem = self.main.query_one("#problem", Static)
        problem.border_title = " · ".join(
            [*where, str(row.get("id", "?")), f"sample {row.get('sample', '?')}"]
        )
        problem.update(Content(str(row.get("problem", "")).strip()))
        self.main.query_one(TraceView).show(str(row.get("completion", "")), reset=True)
        notes = []
        if row.get("format_valid") is False:
            errors = row.get("format_errors") or []
            notes.append("format: " + ("; ".join(map(str, errors[:2])) if errors else "invalid"))
        if row.get("truncated"):
            notes.append("truncated")
        if row.get("phase"):
            notes.append(f"phase {row['phase']}")
        reward = row.get("reward")
        self.main.query_one(AnswerLine).set_verdict(
            None if row.get("pred") is None else str(row["pred"]),
            correct=row.get("correct") if isinstance(row.get("correct"), bool) else None,
            reward=float(reward) if isinstance(reward, (int, float)) else None,
            gold=None if row.get("answer") is None else str(row["answer"]),
            note=" · ".join(notes),
        )

    # ----------------------------------------------------------------------------------------- actions

    def action_tab(self, tab: str) -> None:
        self.main.query_one(TabbedContent).active = tab

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        """The tab's table takes the keys (arrows move its cursor at once); the chart settings line shows
        only above charts."""
        tab = event.pane.id
        self._show_view_line()
        focus = {"rollouts": "#rollout-table", "metrics": "#metric-table", "events": "#events-table"}.get(
            tab or ""
        )
        if focus:
            self.main.query_one(focus).focus()

    def _changed_view(self) -> None:
        self.redraw()

    def _range(self) -> tuple[int, int]:
        return step_range(self._shown(self._curve_view()))

    def action_smoothing(self) -> None:
        self.view.next_smoothing()
        self._changed_view()

    def action_zoom(self, factor: float) -> None:
        self.view.zoom(factor, *self._range())
        self._changed_view()

    def action_follow(self) -> None:
        self.view.toggle_follow(*self._range())
        self._changed_view()

    def action_log_scale(self) -> None:
        self.view.log = not self.view.log
        self._changed_view()

    def action_cursor(self, delta: int) -> None:
        self.view.move_cursor(delta, *self._range())
        self._changed_view()

    def action_clear_cursor(self) -> None:
        self.view.cursor = None
        self._changed_view()

    def action_pick_runs(self) -> None:
        def picked(hidden: set[int] | None) -> None:
            if hidden is not None:
                self.view.hidden = hidden
                self.main.query_one(RunHeader).show_runs(self.states, self.view.hidden)
                self._changed_view()

        self.push_screen(RunPicker([s.name for s in self.states], self.view.hidden), picked)

    def action_cycle_run(self) -> None:
        self.action_tab("rollouts")
        self.main.query_one(RolloutList).cycle_run()

    def action_export(self) -> None:
        out = self.export_dir or Path.cwd() / time.strftime("pr1-watch-%Y%m%d-%H%M%S")
        files = self.export_tab(out)
        self.notify(f"{len(files)} files in {out}", title="exported")

    # ------------------------------------------------------------------------------------------ export

    def export_tabs(self) -> list[str]:
        """The chart tabs that have something to show (what `export_runs` writes)."""
        tabs = ["overview"] if self._has_overview() else []
        if self.main.query_one("#health-charts", ChartGrid).shown:
            tabs.append("health")
        if all_keys(self._shown(self.view)):
            tabs.append("metrics")
        return tabs

    def tab_csvs(self, tab: str) -> dict[str, str]:
        """The data of what tab `tab` shows, as CSV files (name -> text): each visible chart's lines (the
        visible steps and runs, raw and smoothed), the stages of demo folders, eval summaries, or every
        numeric key (All metrics)."""
        out: dict[str, str] = {}
        if tab in ("overview", "health"):
            grid = self.main.query_one("#curves" if tab == "overview" else "#health-charts", ChartGrid)
            if grid.display:
                for chart in grid.visible_charts:
                    out[f"{tab}-{chart.chart.id}.csv"] = lines_csv(chart.lines)
        if tab == "overview" and self.main.query_one(StageView).display:
            out["stages.csv"] = stages_csv(
                [s for i, s in enumerate(self.states) if s.kind in STAGED and i not in self.view.hidden]
            )
        if tab == "overview" and self.main.query_one(SummaryTable).display:
            out["summary.csv"] = summary_csv(self.states)
        if tab == "metrics":
            keys = all_keys(self._shown(self.view))
            first, last = step_range(self._shown(self.view))
            every = Chart("all", "all metrics", tuple((k, k) for k in keys))
            out["metrics.csv"] = lines_csv(chart_lines(every, self.states, self.view, first, last))
        return out

    def export_tab(self, out_dir: str | Path, tab: str | None = None) -> list[Path]:
        """Write the CSVs of tab `tab` (default: the active one) and an SVG of the screen into `out_dir`;
        returns the files written. The tab must be the active one for the SVG to show it."""
        out_dir = Path(out_dir)
        tab = tab or str(self.main.query_one(TabbedContent).active)
        files = []
        for name, text in self.tab_csvs(tab).items():
            write_text_atomic(out_dir / name, text)
            files.append(out_dir / name)
        write_text_atomic(out_dir / f"{tab}.svg", self.export_screenshot(title=f"pr1 watch · {tab}"))
        return [*files, out_dir / f"{tab}.svg"]

    def action_cycle_correctness(self) -> None:
        self.action_tab("rollouts")
        self.main.query_one(RolloutList).cycle_correctness()

    def action_cycle_parallel(self) -> None:
        self.action_tab("rollouts")
        self.main.query_one(RolloutList).cycle_parallel()

    def action_toggle_layout(self) -> None:
        trace = self.main.query_one(TraceView)
        trace.stacked = not trace.stacked

    def action_expand_all(self) -> None:
        self.main.query_one(TraceView).set_blocks_collapsed(False)

    def action_collapse_all(self) -> None:
        self.main.query_one(TraceView).set_blocks_collapsed(True)

    def action_step(self, direction: int) -> None:
        self.action_tab("rollouts")
        self.main.query_one(RolloutList).jump_step(direction)

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


def summary_csv(states: Sequence[RunState]) -> str:
    """Eval folders' summaries as CSV: run, benchmark, figure, value."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(("run", "bench", "figure", "value"))
    for s in states:
        if s.kind == "eval" and s.summary is not None:
            for bench, figures in benchmark_table(s.summary)[0].items():
                w.writerows((s.name, bench, k, v) for k, v in figures.items())
    return out.getvalue()


def run_watch(
    run_dirs: str | Path | Sequence[str | Path],
    *,
    job: Callable[[], Any] | None = None,
    poll_interval: float = 1.0,
    stop_timeout: float = 60.0,
) -> Any:
    """Show the dashboard of `run_dirs` (one folder or several, overlaid) until the user quits.

    `job` (with exactly one folder): a callable that writes it (e.g. the training loop of `pr1 rl`); it
    runs in a background thread while the app shows the folder, and the app stays open when it ends.
    Returns what the job returned; re-raises what it raised. Quitting while it runs interrupts it
    (KeyboardInterrupt inside the job, waiting up to `stop_timeout` s for it to clean up) and raises
    KeyboardInterrupt. An app that stopped on an error (textual has printed its traceback) raises SystemExit
    with its exit status, never returns as if all went well."""
    app = WatchApp(run_dirs, job=job, poll_interval=poll_interval)
    app.run()
    thread = app.job_thread
    crashed = app.return_code not in (None, 0)
    if thread is not None and thread.is_alive():
        interrupt_thread(thread)
        thread.join(stop_timeout)
        if not crashed:
            raise KeyboardInterrupt
    if crashed:
        raise SystemExit(app.return_code)
    if app.job_error is not None:
        raise app.job_error
    return app.job_result
