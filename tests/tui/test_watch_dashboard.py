"""`pr1 watch` as a GRPO dashboard: health signals and steps without update, numbers beside the curves,
smoothing / zoom / cursor, several runs overlaid, a demo folder's stages, export, liveness, formatting."""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from textual.widgets import TabbedContent
from tui_fixtures import NO_UPDATE_STEPS, T0, rl_metrics, write_demo_run, write_rl_run

from pr1.formatting import canonical_figures, figure, label, number, pairs, percent
from pr1.metrics_health import no_update_message, no_update_steps, no_update_summary
from pr1.run_status import live_status, writer_gone
from pr1.tui.charts import PALETTE, ChartView, Line, ema
from pr1.tui.export import export_runs
from pr1.tui.watch_app import WatchApp
from pr1.tui.widgets.all_metrics import AllMetrics
from pr1.tui.widgets.chart_grid import ChartGrid
from pr1.tui.widgets.curve_plot import CurvePlot
from pr1.tui.widgets.events_table import EventsTable, details
from pr1.tui.widgets.header import RunHeader, memory_label
from pr1.tui.widgets.no_update_notice import NoUpdateNotice
from pr1.tui.widgets.rollout_list import RolloutList
from pr1.tui.widgets.run_picker import RunPicker
from pr1.tui.widgets.stage_view import StageView

pytestmark = pytest.mark.anyio
SIZE = (120, 40)


def header_text(app: WatchApp) -> str:
    return str(app.query_one(RunHeader).render())


def notices(app: WatchApp) -> list[str]:
    return [n.message for n in app._notifications]


def chart(app: WatchApp, grid: str, chart_id: str):  # noqa: ANN201
    return next(c for c in app.query_one(f"#{grid}", ChartGrid).charts if c.chart.id == chart_id)


@pytest.fixture
def two_runs(tmp_path: Path) -> list[Path]:
    return [
        write_rl_run(tmp_path / "rl-acc", reward="accuracy"),
        write_rl_run(tmp_path / "rl-alt", 30, seed=1),
    ]


# ------------------------------------------------------------------------------------- light modules


def test_no_update_rule_and_messages() -> None:
    flat = {"step": 3, "frac_reward_zero_std": 1.0, "loss": 0.0, "grad_norm": 0.0}
    assert no_update_message(flat) == "step 3: every group has equal rewards — no update"
    zero = {"step": 4, "frac_reward_zero_std": 0.5, "loss": 0.0, "grad_norm": 0.0}
    assert no_update_message(zero) == "step 4: loss and gradient are 0 — no update"
    assert no_update_message({"step": 5, "frac_reward_zero_std": 0.75, "loss": 0.0, "grad_norm": 0.1}) is None
    assert no_update_message({"step": 6, "loss": 0.0}) is None  # a row that cannot tell
    rows = [rl_metrics(s) for s in range(1, 21)] + [{"step": 20, "eval/gsm8k/accuracy": 0.5}]
    assert no_update_steps(rows) == list(NO_UPDATE_STEPS)
    assert no_update_summary(rows) == "2 of 20 steps made no update (steps 3, 17)"
    assert no_update_summary(rows[:2]) is None


def test_one_formatter_for_console_and_dashboard() -> None:
    assert percent(0.9375) == "93.8%" and figure("parallel_ratio", 1) == "100.0%"
    assert figure("pass@4", 0.5) == "50.0%" and figure("eval/gsm8k/accuracy", 0.25) == "25.0%"
    assert figure("response_tokens_mean", 512.25) == "512.2" and figure("tokens_per_s", 1234.5) == "1,234"
    assert number(1e-6) == "1e-06" and number(None) == "-" and number(3) == "3"
    assert label("parallel_ratio") == "parallel ratio" and label("pass_at_k") == "pass@k"
    # the eval summary's old spellings read as the new ones
    assert canonical_figures({"truncation_rate": 0.1, "mean_blocks": 1.5}) == {
        "truncated_rate": 0.1,
        "blocks_mean": 1.5,
    }
    assert label("truncation_rate") == "truncated"
    assert pairs({"bench": "gsm8k", "accuracy": 0.512, "pass_at_k": {"4": 0.7}}) == (
        "bench gsm8k · accuracy 51.2% · pass@4 70.0%"
    )


def test_events_are_formatted_not_python_dicts() -> None:
    row = {"event": "end", "time": T0, "status": "finished", "base": {"accuracy": 0.25, "blocks_mean": 0.0}}
    assert details(row) == "status finished · base.accuracy 25.0% · base.blocks_mean 0"
    assert details({"event": "notice", "time": T0, "message": "grad norm spike"}) == "grad norm spike"


def test_liveness_of_the_writer(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    here = {"status": "running", "host": platform.node(), "created": time.time()}
    assert live_status(here | {"pid": child.pid}) == "stopped"  # killed: its pid is gone
    assert live_status(here | {"pid": os.getpid(), "created": time.time() + 60}) == "running"
    assert not writer_gone(here | {"pid": child.pid, "host": "another-machine"})  # cannot know
    # a resumed run records the process that resumed it: its pid is the writer's
    assert live_status(here | {"pid": child.pid, "resumed_at": [time.time()]}) == "stopped"
    assert live_status(here | {"pid": os.getpid(), "created": T0, "resumed_at": [time.time()]}) == "running"
    assert live_status(here | {"pid": child.pid, "status": "finished"}) == "finished"
    # a pid reused by a process started after the run was created is not the writer
    assert live_status(here | {"pid": os.getpid(), "created": T0}) == "stopped"


def test_smoothing_is_debiased_ema() -> None:
    assert ema([1.0, 1.0, 1.0], 0.9) == pytest.approx([1.0, 1.0, 1.0])  # not pulled towards 0
    assert ema([0.0, 1.0], 0.5) == pytest.approx([0.0, 2 / 3])
    assert ema([3.0, 5.0], 0.0) == [3.0, 5.0]
    view = ChartView(smoothing=0.99)
    view.next_smoothing()
    assert view.smoothing == 0.0  # the weights cycle back to off


def test_constant_series_axis_reads_upwards() -> None:
    """plotext draws a constant negative series' axis upside down (−1.50 on top); the chart does not."""
    plot = CurvePlot()
    xs = [1.0, 2.0, 3.0, 4.0]
    line = Line(0, "run", "reward_mean", "active", xs, [-1.0] * 4, [-1.0] * 4, PALETTE[0], "braille")
    plot.draw([line], ChartView(smoothing=0.0), (1, 4))
    plot.plt.plotsize(40, 12)
    ticks = []
    for row in re.sub(r"\x1b\[[0-9;]*m", "", plot.plt.build()).splitlines():
        head = row.split("┤")[0].strip() if "┤" in row else ""
        if head:
            ticks.append(float(head))
    assert ticks == sorted(ticks, reverse=True) and ticks[0] > -1.0 > ticks[-1]


# -------------------------------------------------------------------------------------------- health


async def test_health_group_and_no_update_notice(rl_run: Path) -> None:
    app = WatchApp(rl_run, poll_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        assert app.query_one(TabbedContent).active == "health"
        health = app.query_one("#health-charts", ChartGrid)
        assert health.shown == [
            "zero-std",
            "reward-std",
            "entropy",
            "grad-norm",
            "clip",
            "truncated",
            "logprob-gap",
            "time",
        ]
        assert [ln.key for ln in chart(app, "health-charts", "time").lines] == [
            "time_rollout",
            "time_scoring",
            "time_update",
        ]
        notice = str(app.query_one(NoUpdateNotice).render())
        assert "2 of 40 steps without update so far" in notice
        assert "step 17: every group has equal rewards — no update" in notice
        assert "2 no-update steps" in header_text(app)
        flat = rl_metrics(41) | {"frac_reward_zero_std": 1.0, "loss": 0.0, "grad_norm": 0.0}
        with (rl_run / "metrics.jsonl").open("a") as f:
            f.write(json.dumps(flat) + "\n")
        await pilot.pause(0.3)
        assert "step 41: every group has equal rewards — no update (3 so far)" in notices(app)
        assert "3 of 41 steps" in str(app.query_one(NoUpdateNotice).render())


async def test_numbers_smoothing_zoom_and_cursor(rl_run: Path) -> None:
    app = WatchApp(rl_run)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        loss = chart(app, "curves", "loss")
        (line,) = loss.lines
        raw = [rl_metrics(s)["loss"] for s in range(1, 41)]
        assert line.ys == raw and line.smooth == pytest.approx(ema(raw, 0.6))
        legend = str(loss.legend.render())
        assert "last" in legend and "smooth" in legend and "min" in legend and "max" in legend
        assert f"{raw[-1]:.3g}" in legend and f"{max(raw):.3g}" in legend
        await pilot.press("s")
        assert app.view.smoothing == 0.8 and loss.lines[0].smooth == pytest.approx(ema(raw, 0.8))
        await pilot.press("z")  # zoom in: the latest 20 steps stay in view
        assert loss.lines[0].xs[0] == 21 and loss.lines[0].xs[-1] == 40
        assert "steps 21–40 · following latest" in str(app.query_one("#view-line").render())
        with (rl_run / "metrics.jsonl").open("a") as f:
            f.write(json.dumps(rl_metrics(41)) + "\n")
        app.poll()
        await pilot.pause()
        assert loss.lines[0].xs[0] == 22 and loss.lines[0].xs[-1] == 41  # follows the new step
        await pilot.press("t", "x", "x")  # pin, zoom out to all
        assert loss.lines[0].xs[0] == 1 and app.view.end == 41
        await pilot.press("comma", "comma")  # the cursor appears at the last step (41), then moves left
        assert app.view.cursor == 40
        assert "@40" in str(loss.legend.render()) and f"{raw[39]:.3g}" in str(loss.legend.render())
        await pilot.press("y")
        assert "(log)" in chart(app, "curves", "lengths").border_title
        assert "log" not in loss.border_title  # the loss is 0 at the steps without update: stays linear


async def test_all_metrics_view_reaches_every_key(rl_run: Path) -> None:
    with (rl_run / "metrics.jsonl").open("a") as f:
        f.write(
            json.dumps({"step": 40, "time": T0 + 1300, "eval/gsm8k/accuracy": 0.52, "custom/x": 3}) + "\n"
        )
    app = WatchApp(rl_run)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        view = app.query_one(AllMetrics)
        logged = {k for s in range(1, 41) for k in rl_metrics(s)} - {"step", "time", "phase"}
        assert set(view.keys) == logged | {"eval/gsm8k/accuracy", "custom/x"}
        assert app.focused is view.table
        await pilot.press("down")
        assert view.chart.chart.title == view.keys[1] and view.chart.lines


def test_snapshot_health_tab(snap_compare, rl_run: Path) -> None:
    assert snap_compare(WatchApp(rl_run), terminal_size=SIZE, press=["2"])


# ----------------------------------------------------------------------------------------- comparison


async def test_two_runs_overlaid_with_stable_colours(two_runs: list[Path]) -> None:
    app = WatchApp(two_runs)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        rates = chart(app, "curves", "rates")
        assert {(ln.run_name, ln.colour) for ln in rates.lines} == {
            ("rl-acc", PALETTE[0]),
            ("rl-alt", PALETTE[1]),
        }
        assert (
            len({ln.marker for ln in rates.lines}) == len(rates.lines) == 6
        )  # markers differ without colour
        assert "1 ■ rl-acc" in header_text(app) and "2 ■ rl-alt" in header_text(app)
        legend = str(rates.legend.render())
        assert "1 accura" in legend and "2 accura" in legend  # the header numbers the runs
        await pilot.press("h")
        assert isinstance(app.screen, RunPicker)
        await pilot.press("space", "escape")  # hide the first run
        assert app.view.hidden == {0}
        assert {ln.run_name for ln in chart(app, "curves", "rates").lines} == {"rl-alt"}
        assert "1 □ rl-acc" in header_text(app)
        # rollouts: every run, then one run at a time
        await pilot.press("4")
        rollouts = app.query_one(RolloutList)
        assert app.focused is rollouts.table  # the table takes the keys when its tab opens
        assert str(rollouts.table.ordered_columns[0].label) == "run" and rollouts.table.row_count == 28 + 21
        await pilot.press("r")
        assert {rollouts.run_of[i] for i in rollouts.shown} == {0} and len(rollouts.shown) == 28
        await pilot.press("r")
        assert {rollouts.run_of[i] for i in rollouts.shown} == {1} and "run: rl-alt" in str(
            rollouts.query_one("#filters").render()
        )
        events = app.query_one(EventsTable)
        assert str(events.ordered_columns[0].label) == "run" and events.row_count == 8


def test_snapshot_two_runs(snap_compare, two_runs: list[Path]) -> None:
    assert snap_compare(WatchApp(two_runs), terminal_size=SIZE)


# ----------------------------------------------------------------------------------------------- demo


async def test_demo_folder_shows_stages_not_a_line(tmp_path: Path) -> None:
    app = WatchApp(write_demo_run(tmp_path / "demo"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert not app.query_one("#curves", ChartGrid).display and app.query_one(StageView).display
        assert str(app.query_one(TabbedContent).get_tab("overview").label) == "Stages"
        table = app.query_one("#stage-table")
        assert [table.get_row_at(i)[:4] for i in range(3)] == [
            ["base", "25.0%", "0.0%", "6.2%"],
            ["sft", "31.2%", "93.8%", "87.5%"],
            ["rl", "43.8%", "100.0%", "93.8%"],
        ]
        bars = str(app.query_one("#bars-parallel_ratio").render()).splitlines()
        assert bars[0].startswith("base") and "█" not in bars[0] and bars[2].count("█") == 16
        await pilot.press("4")
        rollouts = app.query_one(RolloutList)
        assert str(rollouts.table.ordered_columns[0].label) == "stage"
        assert [rollouts.table.get_row_at(i)[0] for i in (0, 3, 6)] == ["base", "sft", "rl"]


def test_snapshot_demo_stages(snap_compare, tmp_path: Path) -> None:
    assert snap_compare(WatchApp(write_demo_run(tmp_path / "demo")), terminal_size=SIZE)


# --------------------------------------------------------------------------------------------- export


def test_export_runs_headless_writes_csv_and_svg(two_runs: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "export"
    files = export_runs(two_runs, out)
    names = {f.name for f in files}
    assert {
        "overview.svg",
        "health.svg",
        "metrics.svg",
        "overview-reward.csv",
        "health-zero-std.csv",
    } <= names
    assert all(f.exists() for f in files)
    assert (out / "health.svg").read_text().lstrip().startswith("<svg")
    assert "groups with equal rewards" in (out / "health.svg").read_text().replace("&#160;", " ")
    rows = list(csv.DictReader(io.StringIO((out / "overview-loss.csv").read_text())))
    assert [r["run"] for r in rows] == ["rl-acc"] * 40 + ["rl-alt"] * 30
    first = rows[0]
    assert first["key"] == "loss" and first["step"] == "1"
    assert float(first["value"]) == rl_metrics(1)["loss"] == float(first["smoothed"])
    alt = [r for r in rows if r["run"] == "rl-alt"]
    assert [float(r["value"]) for r in alt] == [rl_metrics(s, 1)["loss"] for s in range(1, 31)]
    assert float(alt[1]["smoothed"]) == pytest.approx(ema([rl_metrics(s, 1)["loss"] for s in (1, 2)], 0.6)[1])
    every = list(csv.DictReader(io.StringIO((out / "metrics.csv").read_text())))
    assert {r["key"] for r in every} >= {"frac_reward_zero_std", "memory_gb", "time_update"}


async def test_export_key_writes_the_visible_charts(rl_run: Path, tmp_path: Path) -> None:
    app = WatchApp(rl_run, export_dir=tmp_path / "shots")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2", "z", "e")
        await pilot.pause()
    written = sorted(p.name for p in (tmp_path / "shots").iterdir())
    assert "health.svg" in written and "health-grad-norm.csv" in written and "overview.svg" not in written
    rows = list(csv.DictReader(io.StringIO((tmp_path / "shots" / "health-grad-norm.csv").read_text())))
    assert [int(r["step"]) for r in rows] == list(range(21, 41))  # the zoomed range, as seen


# ------------------------------------------------------------------------------------------- header


async def test_header_of_a_live_run_before_its_first_step(tmp_path: Path) -> None:
    run = tmp_path / "fresh"
    run.mkdir()
    info = {"kind": "rl", "name": "fresh", "status": "running", "total_steps": 10, "created": time.time()}
    info |= {"config": {"reward": "alternating", "window": 2, "accuracy_steps": 1}, "device": "cuda:0"}
    info |= {"host": platform.node(), "pid": os.getpid()}
    (run / "run.json").write_text(json.dumps(info))
    (run / "events.jsonl").write_text(json.dumps({"event": "start", "time": time.time()}) + "\n")
    app = WatchApp(run, poll_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "step 0/10" in header_text(app) and "now step 1 (accuracy)" in header_text(app)
        with (run / "metrics.jsonl").open("a") as f:
            f.write(json.dumps({"step": 1, "time": time.time(), "memory_gb": 7.25}) + "\n")
        await pilot.pause(0.3)
        assert "now step 2 (tiered)" in header_text(app) and "peak CUDA 7.2 GB" in header_text(app)
        child = subprocess.Popen([sys.executable, "-c", "pass"])
        child.wait()
        (run / "run.json").write_text(json.dumps(info | {"pid": child.pid}))  # the writer was killed
        await pilot.pause(0.3)
        assert "● stopped" in header_text(app) and "now step" not in header_text(app)
    assert memory_label({"config": {"device": "cpu"}}) == "peak RSS" and memory_label({}) == "peak memory"
