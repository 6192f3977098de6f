"""`pr1 watch`: run-folder polling, curves, rollout browsing and trees, live tailing, notices, jobs."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from textual.widgets import TabbedContent
from tui_fixtures import T0, rl_metrics, rollout_rows

import pr1.tui
from pr1.runs import Run
from pr1.tui.commands import BindingsProvider
from pr1.tui.run_state import RunState
from pr1.tui.watch_app import WatchApp, interrupt_thread
from pr1.tui.widgets.answer_line import AnswerLine
from pr1.tui.widgets.chart_grid import ChartGrid
from pr1.tui.widgets.events_table import EventsTable
from pr1.tui.widgets.header import RunHeader, format_duration, step_seconds
from pr1.tui.widgets.help_screen import HelpScreen
from pr1.tui.widgets.rollout_list import RolloutList
from pr1.tui.widgets.summary_table import SummaryTable
from pr1.tui.widgets.trace_tree import BlockView, SummaryView, TraceView

pytestmark = pytest.mark.anyio
SIZE = (120, 40)


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(text)


def header_text(app: WatchApp) -> str:
    return str(app.query_one(RunHeader).render())


async def settle(pilot) -> None:
    """Wait until the trace tree shows what was selected, and is painted."""
    trace = pilot.app.query_one(TraceView)
    await pilot.pause()
    while not trace.settled:
        await pilot.pause(0.02)
    await pilot.pause(0.1)


def notices(app: WatchApp) -> list[str]:
    return [n.message for n in app._notifications]


# ------------------------------------------------------------------------------------------- pure parts


def test_run_state_reads_incrementally_and_reports_bad_lines(tmp_path: Path) -> None:
    state = RunState(tmp_path)
    assert not state.poll() and state.info == {}
    (tmp_path / "run.json").write_text(json.dumps({"kind": "rl", "name": "x", "status": "running"}))
    append(tmp_path / "metrics.jsonl", json.dumps({"step": 1, "time": T0}) + "\n" + '{"step": 2, "ti')
    up = state.poll()
    assert up.info_changed and state.kind == "rl" and [r["step"] for r in up.metrics] == [1]
    assert not state.poll()  # nothing new; the partial line waits
    append(tmp_path / "metrics.jsonl", 'me": 2}\nnot json\n{"loss": 1.0}\n')
    up = state.poll()
    assert [r["step"] for r in up.metrics] == [2] and state.last_step == 2
    assert any("metrics.jsonl:3: malformed" in p for p in up.problems)
    assert any("without an integer 'step'" in p for p in up.problems)


def test_eta_and_durations() -> None:
    rows = [{"step": s, "time": T0 + 30 * s} for s in range(1, 11)]
    assert step_seconds(rows) == pytest.approx(30.0)
    assert step_seconds(rows[:1]) is None
    assert [format_duration(s) for s in (5, 125, 4000)] == ["5s", "2m 05s", "1h 06m"]


# ----------------------------------------------------------------------------------------- dashboard


async def test_rl_dashboard_plots_what_the_metrics_hold(rl_run: Path) -> None:
    app = WatchApp(rl_run)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        curves = app.query_one("#curves", ChartGrid)
        assert curves.shown == ["reward", "rates", "lengths", "position", "loss", "lr"]
        reward = curves.charts[0]
        assert "◆" in str(reward.plot.render()) and "◆ tiered step" in str(reward.legend.render())  # phases
        text = header_text(app)
        for part in ("rl-demo", "rl", "Qwen/Qwen3-4B-Base", "causal", "step 40/200", "20%", "running"):
            assert part in text
        assert "ETA 1h 20m" in text  # 160 steps left at 30 s a step
        assert "peak memory 11.2 GB" in text and "tok/s" in text  # the run does not record its device
        assert "now step 41 (accuracy)" in text and "2 no-update steps" in text


async def test_sft_run_shows_only_its_curves(sft_run: Path) -> None:
    app = WatchApp(sft_run)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.query_one("#curves", ChartGrid).shown == ["loss", "lr", "throughput"]
        assert "finished" in header_text(app) and "ETA" not in header_text(app)
        assert app.query_one(EventsTable).row_count == 2


async def test_eval_folder_shows_summary_and_completions(eval_run: Path) -> None:
    app = WatchApp(eval_run)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert not app.query_one("#curves", ChartGrid).display
        table = app.query_one(SummaryTable)
        assert table.display and [str(c.label) for c in table.columns.values()] == ["", "gsm8k"]
        rows = {table.get_row_at(i)[0]: table.get_row_at(i)[1] for i in range(table.row_count)}
        assert rows["pass@1"] == "71.4%" and rows["pass@2"] == "100.0%" and rows["problems"] == "3"
        assert rows["parallel ratio"] == "57.1%" and rows["blocks / response"] == "0.7143"  # console's labels
        assert table.border_title == "model runs/rl-s2/final"
        assert "7 completions" in header_text(app) and "step" not in header_text(app)
        assert str(app.query_one(TabbedContent).get_tab("overview").label) == "Summary"
        live = str(app.query_one("#eval-live").render())
        assert "7 completions" in live and "accuracy 71.4%" in live
        await pilot.press("4")
        rollouts = app.query_one(RolloutList)
        assert rollouts.table.row_count == 7 and str(rollouts.table.ordered_columns[0].label) == "bench"
        assert rollouts.table.get_row_at(0)[0] == "gsm8k"


# ------------------------------------------------------------------------------------------ rollouts


async def test_browse_filter_and_jump_between_steps(rl_run: Path) -> None:
    app = WatchApp(rl_run)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        assert app.query_one(TabbedContent).active == "rollouts"
        rollouts = app.query_one(RolloutList)
        assert rollouts.table.row_count == 28  # 4 steps x 7 samples
        rollouts.table.focus()
        await pilot.pause()
        trace = app.query_one(TraceView)
        assert len(trace.blocks) == 1 and "Natalia sold 48" in trace.text
        await pilot.press("down", "down")
        await pilot.pause()
        assert trace.text.endswith("Final Answer: 24") and not trace.blocks
        assert "✗ incorrect" in str(app.query_one(AnswerLine).render())
        await pilot.press("f")  # correct answers only
        assert all(rollouts.rows[i]["correct"] for i in rollouts.shown) and len(rollouts.shown) == 20
        await pilot.press("p")  # ... with parallel thinking
        assert all(rollouts.rows[i]["parallel"] for i in rollouts.shown) and len(rollouts.shown) == 12
        assert "answers: correct · parallel: with · 12/28" in str(rollouts.query_one("#filters").render())
        await pilot.press("f", "p")  # incorrect, without parallel
        assert [rollouts.rows[i]["correct"] or rollouts.rows[i]["parallel"] for i in rollouts.shown] == [
            False
        ] * 4
        await pilot.press("f", "p")  # back to all
        assert len(rollouts.shown) == 28
        rollouts.table.move_cursor(row=0)
        await pilot.press("right_square_bracket")
        assert rollouts.rows[rollouts.current]["step"] == 20
        await pilot.press("right_square_bracket", "right_square_bracket", "right_square_bracket")
        assert rollouts.rows[rollouts.current]["step"] == 40
        await pilot.press("left_square_bracket")
        assert rollouts.rows[rollouts.current]["step"] == 30 and rollouts.table.cursor_row == 14


async def test_trace_tree_folds_blocks_and_paths(rl_run: Path) -> None:
    app = WatchApp(rl_run)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        rollouts = app.query_one(RolloutList)
        rollouts.table.move_cursor(row=5)  # gsm8k-2 sample 0: two blocks
        await pilot.pause()
        trace = app.query_one(TraceView)
        blocks = trace.query(BlockView)
        assert len(blocks) == 2 and all(not b.fold.collapsed for b in blocks)
        assert [len(b.path_views) for b in blocks] == [2, 2]
        summaries = [str(s.render()) for s in trace.query(SummaryView)]
        assert summaries == ["She receives $45 in gifts.", "She needs $5 more."]
        answer = app.query_one(AnswerLine)
        assert (
            "5" in str(answer.render())
            and "✓ correct" in str(answer.render())
            and answer.has_class("-correct")
        )
        await pilot.press("minus")
        assert all(b.fold.collapsed for b in blocks)
        assert all(s.display for s in trace.query(SummaryView))  # a folded block still shows its summary
        await pilot.press("plus")
        assert not any(b.fold.collapsed for b in blocks)
        path = blocks[0].path_views[1]
        await pilot.click(path._title)  # one path folds on its own
        await pilot.pause()
        assert path.collapsed and not blocks[0].path_views[0].collapsed and not blocks[0].fold.collapsed
        assert not trace.has_class("-stacked")
        await pilot.press("l")
        assert trace.has_class("-stacked")
        assert blocks[0].paths_box.styles.layout.name == "vertical"
        await pilot.press("l")
        assert blocks[0].paths_box.styles.layout.name == "horizontal"


async def test_trace_view_updates_streaming_text_in_place() -> None:
    from textual.app import App

    class Host(App):
        CSS_PATH = Path(pr1.tui.__file__).parent / "trace.tcss"

        def compose(self):
            yield TraceView(live=True)

    text = "Let me see. <Parallel><Path>a b</Path><Path>c"
    app = Host()
    async with app.run_test() as pilot:
        trace = app.query_one(TraceView)
        trace.show("Let me see. <Paral")
        await pilot.pause()
        assert not trace.blocks
        trace.show(text)
        await pilot.pause()
        (block,) = trace.blocks
        first_path = block.path_views[0]
        assert [p.title for p in block.path_views] == ["Path 1 · 2 words", "Path 2 · 1 word …"]
        assert "writing" in block.fold.title and not block.summary.display
        trace.show(text + " d</Path></Parallel>\n<Summary>both")
        await pilot.pause()
        assert block is trace.blocks[0] and first_path is block.path_views[0]  # updated, not rebuilt
        assert block.fold.collapsed  # live: the paths fold into the summary when the block closes
        assert block.summary.display and block.summary.border_title == "Summary …"
        trace.show("other text", reset=True)
        await pilot.pause()
        assert not trace.blocks and trace.text == "other text"


# ---------------------------------------------------------------------------------------- live tailing


async def test_live_tailing_of_appended_rows(rl_run: Path) -> None:
    app = WatchApp(rl_run, poll_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "step 40/200" in header_text(app)
        rollouts = app.query_one(RolloutList)
        n_rollouts = rollouts.table.row_count
        with (rl_run / "metrics.jsonl").open("a") as f:
            for s in (41, 42):
                f.write(json.dumps(rl_metrics(s)) + "\n")
        append(rl_run / "rollouts.jsonl", "".join(json.dumps(r) + "\n" for r in rollout_rows(42)))
        append(
            rl_run / "events.jsonl",
            json.dumps({"event": "notice", "time": T0 + 1300, "message": "hello"}) + "\n",
        )
        await pilot.pause(0.3)
        assert "step 42/200" in header_text(app)
        assert app.state.metrics[-1]["step"] == 42
        assert rollouts.table.row_count == n_rollouts + 7
        assert "hello" in notices(app)  # a notice event is shown as it arrives
        info = json.loads((rl_run / "run.json").read_text())
        (rl_run / "run.json").write_text(json.dumps(info | {"status": "finished"}))
        await pilot.pause(0.3)
        assert "finished" in header_text(app)


async def test_malformed_and_partial_lines_become_notices(rl_run: Path) -> None:
    app = WatchApp(rl_run, poll_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        events = app.query_one(EventsTable)
        n = events.row_count
        append(rl_run / "events.jsonl", "this is not json\n[1, 2]\n" + '{"event": "checkpoint", "time": ')
        await pilot.pause(0.3)
        assert app.is_running
        assert any("events.jsonl:5: malformed line skipped" in m for m in notices(app))
        assert any("events.jsonl:6: not a JSON object" in m for m in notices(app))
        assert events.row_count == n  # the partial line waits for its end
        append(rl_run / "events.jsonl", f'{T0 + 900}, "step": 30, "path": "checkpoints/step-000030"}}\n')
        await pilot.pause(0.3)
        assert events.row_count == n + 1 and events.get_row_at(n)[1] == "checkpoint"
        assert events.get_row_at(n)[0] == "+15m 00s"


# ----------------------------------------------------------------------------- job in a background thread


async def test_job_thread_writes_the_folder_the_app_shows(tmp_path: Path) -> None:
    run_dir = tmp_path / "job-run"
    go = threading.Event()

    def job() -> str:
        run = Run.create(run_dir, "sft", {"model": "tiny"})
        run.update_info(total_steps=3)
        for s in (1, 2, 3):
            run.log_metrics(s, loss=1.0 / s, lr=1e-5)
        go.wait(5)
        run.finish()
        return "done"

    app = WatchApp(run_dir, job=job, poll_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.4)
        assert "step 3/3" in header_text(app) and "running" in header_text(app)
        await pilot.press("q")  # the job still runs: the first q only warns
        assert app.is_running and any("still running" in m for m in notices(app))
        go.set()
        app.job_thread.join(5)
        await pilot.pause(0.3)
        assert "finished" in header_text(app)
        assert any("job finished" in m for m in notices(app)) and app.job_result == "done"
        await pilot.press("q")
    assert app.return_code == 0


def test_interrupt_thread_raises_keyboard_interrupt_in_it() -> None:
    seen = []

    def loop() -> None:
        try:
            while True:
                time.sleep(0.01)
        except KeyboardInterrupt:
            seen.append("interrupted")

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    interrupt_thread(t)
    t.join(5)
    assert seen == ["interrupted"]


# ------------------------------------------------------------------------------------- help and palette


async def test_help_screen_and_palette_entries(rl_run: Path) -> None:
    app = WatchApp(rl_run)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen) and "Filter answers" in app.screen.text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        provider = BindingsProvider(app.screen)
        titles = [hit.text async for hit in provider.discover()]
        assert "Filter parallel" in titles and "Side by side/stacked" in titles
        hits = [hit async for hit in provider.search("side by")]
        assert len(hits) == 1
        await hits[0].command()
        assert app.query_one(TraceView).stacked


# ------------------------------------------------------------------------------------------- snapshots


def test_snapshot_dashboard_curves(snap_compare, rl_run: Path) -> None:
    assert snap_compare(WatchApp(rl_run), terminal_size=SIZE)


def test_snapshot_rollout_tree(snap_compare, rl_run: Path) -> None:
    async def pick(pilot) -> None:
        await pilot.press("4")
        pilot.app.query_one(RolloutList).table.move_cursor(row=5)
        await settle(pilot)

    assert snap_compare(WatchApp(rl_run), terminal_size=SIZE, run_before=pick)


def test_snapshot_eval_folder(snap_compare, eval_run: Path) -> None:
    assert snap_compare(WatchApp(eval_run), terminal_size=SIZE)


async def test_a_diverged_run_with_infinite_and_huge_metrics_is_shown(tmp_path: Path) -> None:
    # a loss of Infinity, NaN or ±1e308 (whose range overflows to inf) is no reason for the dashboard to stop
    (tmp_path / "run.json").write_text(
        json.dumps({"kind": "rl", "name": "x", "status": "finished", "created": T0})
    )
    keys = (
        "loss",
        "lr",
        "grad_norm",
        "reward_mean",
        "accuracy",
        "tokens_per_s",
        "memory_gb",
        "response_tokens_mean",
    )
    rows = [
        {"step": s, "time": T0 + s, "phase": "accuracy", **{k: (1e308 if s % 2 else -1e308) for k in keys}}
        for s in range(1, 5)
    ]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    (tmp_path / "metrics.jsonl").write_text(text + '{"step": 5, "time": 5, "loss": Infinity, "lr": NaN}\n')
    app = WatchApp(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        for key in ("2", "3", "l", "1"):  # the tabs, log scale
            await pilot.press(key)
            await pilot.pause(0.1)
    assert app.return_code in (None, 0) and app._exception is None
