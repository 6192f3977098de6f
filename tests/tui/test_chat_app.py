"""`pr1 chat`: live branching view from streamed events, stop, regenerate, save, settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.widgets import Input
from tui_fixtures import CHAT_EVENTS, CHAT_PROBLEM, CHAT_TEXT, Event, ReplayGenerator, record

from pr1.errors import Pr1Error
from pr1.format import parse
from pr1.score import score_file
from pr1.tui.chat_app import ChatApp
from pr1.tui.chat_session import ChatSettings, split_answer
from pr1.tui.live_trace import LiveTrace
from pr1.tui.widgets.trace_tree import TraceView
from pr1.tui.widgets.turn_view import TurnView

pytestmark = pytest.mark.anyio
SIZE = (120, 40)


async def wait_idle(app: ChatApp, pilot, timeout: float = 10.0) -> None:
    """Wait until the generation ended and every trace tree shows its final text."""
    for _ in range(int(timeout / 0.05)):
        if not app.generating and all(t.settled for t in app.query(TraceView)):
            await pilot.pause()
            return
        await pilot.pause(0.05)
    raise AssertionError("generation did not finish")


async def ask(app: ChatApp, pilot, line: str) -> None:
    prompt = app.query_one("#prompt", Input)
    prompt.value = line
    await pilot.press("enter")


# ----------------------------------------------------------------------------------------- pure parts


def test_live_trace_keeps_interleaved_paths_apart() -> None:
    live = LiveTrace()
    events = iter(CHAT_EVENTS)
    while live.generated < 14:  # into block 0, both paths unfinished
        live.add(next(events))
    (block,) = live.trace().blocks
    assert [p.text for p in block.paths] == ["Parents give $15 ", "The gifts "]
    assert not any(p.closed for p in block.paths) and not block.closed
    for ev in events:
        live.add(ev)
    trace = live.trace()
    assert [[p.text for p in b.paths] for b in trace.blocks] == [
        ["Parents give $15 and grandparents give 2 × 15 = $30.", "The gifts are 15 + 2 · 15 = $45 in total."],
        ["She needs 100 − 95 = 5 more.", "Check: 95 + 5 = 100, so 5 is right."],
    ]
    assert [b.summary.text for b in trace.blocks] == ["The gifts add up to $45.", "She needs $5 more."]
    assert trace.main_text.endswith("Final Answer: 5")
    assert live.text == CHAT_TEXT  # in layout order: paths one after the other, not interleaved
    assert trace.render() == CHAT_TEXT and parse(CHAT_TEXT) == trace
    assert live.done and live.generated == sum(not e.inserted and not e.done for e in CHAT_EVENTS)


def test_split_answer_and_settings_checks() -> None:
    assert split_answer("What is 6*7? || 42") == ("What is 6*7?", "42")
    assert split_answer("  What is 6*7?  ") == ("What is 6*7?", "")
    ChatSettings()
    for bad in (
        dict(top_p=0),
        dict(num_paths=1),
        dict(mode="nope"),
        dict(max_tokens=0),
        dict(temperature=-1),
    ):
        with pytest.raises(Pr1Error):
            ChatSettings(**bad)


# ------------------------------------------------------------------------------------------------- app


async def test_streaming_branches_then_folds_into_summaries(tmp_path: Path) -> None:
    backend = ReplayGenerator(CHAT_EVENTS, pause_at=25)  # in the middle of block 0's paths
    app = ChatApp(backend, save_path=tmp_path / "s.jsonl", refresh_interval=0.02)
    async with app.run_test(size=SIZE) as pilot:
        await ask(app, pilot, CHAT_PROBLEM + " || 5")
        assert backend.paused.wait(5)
        await pilot.pause(0.15)
        view = app.query_one(TurnView)
        (block,) = view.trace.blocks  # branched: two live paths side by side, still open
        assert len(block.path_views) == 2 and not block.fold.collapsed and "writing" in block.fold.title
        assert all(p.title.endswith("…") for p in block.path_views)
        assert "generating" in str(app.query_one("#chat-header").render())
        backend.resume.set()
        await wait_idle(app, pilot)
        blocks = view.trace.blocks
        assert len(blocks) == 2 and all(b.fold.collapsed for b in blocks)  # folded into their summaries
        assert [str(b.summary.render()) for b in blocks] == ["The gifts add up to $45.", "She needs $5 more."]
        answer = str(view.answer.render())
        assert "Final answer: 5" in answer and "✓ correct" in answer and "(gold 5)" in answer
        assert app.turns[0].correct is True and not app.turns[0].stopped
        await pilot.press("ctrl+b")  # unfold every block
        assert not any(b.fold.collapsed for b in blocks)


async def test_escape_stops_generation_and_ui_stays_responsive(tmp_path: Path) -> None:
    backend = ReplayGenerator(CHAT_EVENTS, pause_at=20)
    app = ChatApp(backend, save_path=tmp_path / "s.jsonl", refresh_interval=0.02)
    async with app.run_test(size=SIZE) as pilot:
        await ask(app, pilot, CHAT_PROBLEM)
        assert backend.paused.wait(5)
        await ask(app, pilot, "another problem")  # busy: refused with a notice, the input keeps its text
        assert len(app.turns) == 1 and app.query_one("#prompt", Input).value == "another problem"
        await pilot.press("escape")
        await wait_idle(app, pilot)
        turn = app.turns[0]
        assert turn.stopped and turn.result is not None and turn.result.truncated
        assert len(turn.result.text) < len("".join(e.text for e in CHAT_EVENTS))
        assert "stopped" in str(app.query_one("#chat-header").render())
        assert "stopped" in str(app.query_one(TurnView).answer.render())


async def test_regenerate_save_and_score(tmp_path: Path) -> None:
    session = tmp_path / "session.jsonl"
    app = ChatApp(ReplayGenerator(CHAT_EVENTS), save_path=session, refresh_interval=0.02)
    async with app.run_test(size=SIZE) as pilot:
        await ask(app, pilot, CHAT_PROBLEM + " || 5")
        await wait_idle(app, pilot)
        app.query_one("#temperature", Input).value = "0.3"
        await pilot.press("ctrl+r")
        await wait_idle(app, pilot)
        await ask(app, pilot, "What is 2 + 2?")  # no gold answer
        await wait_idle(app, pilot)
        assert len(app.query(TurnView)) == 3
        await pilot.press("ctrl+s")
        await pilot.press("ctrl+s")  # nothing new: rows are written once
    rows = [json.loads(line) for line in session.read_text().splitlines()]
    assert [r["answer"] for r in rows] == ["5", "5", ""]
    assert [r["temperature"] for r in rows] == [0.7, 0.3, 0.3]
    assert all(r["completion"].endswith("Final Answer: 5") for r in rows)
    records = [rec for _, rec in score_file(session)]
    assert [r["correct"] for r in records] == [True, True, False] and records[0]["n_blocks"] == 2


async def test_bad_setting_is_refused_with_a_notice(tmp_path: Path) -> None:
    app = ChatApp(ReplayGenerator(CHAT_EVENTS), save_path=tmp_path / "s.jsonl")
    async with app.run_test(size=SIZE) as pilot:
        app.query_one("#num_paths", Input).value = "1"
        await ask(app, pilot, "What is 2 + 2?")
        assert not app.turns and any("at least 2 paths" in n.message for n in app._notifications)


async def test_quit_asks_once_when_turns_are_unsaved(tmp_path: Path) -> None:
    app = ChatApp(ReplayGenerator(record(["Final Answer: 4"], [])), save_path=tmp_path / "s.jsonl")
    async with app.run_test(size=SIZE) as pilot:
        await ask(app, pilot, "What is 2 + 2?")
        await wait_idle(app, pilot)
        await pilot.press("ctrl+q")
        assert app.is_running and any("not saved" in n.message for n in app._notifications)
        await pilot.press("ctrl+q")
    assert not app.is_running


async def test_backend_error_is_shown_in_the_turn(tmp_path: Path) -> None:
    class Broken(ReplayGenerator):
        def generate(self, *args):  # noqa: ANN002
            raise RuntimeError("CUDA out of memory")

    app = ChatApp(Broken([Event("main", None, None, "x")]), save_path=tmp_path / "s.jsonl")
    async with app.run_test(size=SIZE) as pilot:
        await ask(app, pilot, "What is 2 + 2?")
        await wait_idle(app, pilot)
        assert "CUDA out of memory" in str(app.query_one(TurnView).answer.render())
        assert app.turns[0].error and app.is_running


# -------------------------------------------------------------------------------------------- snapshot


def test_snapshot_chat_branched_trace(snap_compare, tmp_path: Path) -> None:
    async def ask_and_unfold(pilot) -> None:
        await ask(pilot.app, pilot, CHAT_PROBLEM + " || 5")
        await wait_idle(pilot.app, pilot)
        await pilot.press("ctrl+b")
        await pilot.pause()

    app = ChatApp(ReplayGenerator(CHAT_EVENTS), save_path=tmp_path / "s.jsonl")
    assert snap_compare(app, terminal_size=SIZE, run_before=ask_and_unfold)


# ------------------------------------------------------------------------- with the real rollout engine


@pytest.fixture(scope="module")
def tiny_backend():
    pytest.importorskip("pr1.rollout", reason="the rollout engine is not in this checkout yet")
    from pr1.models import tiny_model
    from pr1.tui.chat_session import EngineGenerator

    model, tokenizer = tiny_model("llama", seed=0)
    return EngineGenerator(model, tokenizer, "tiny-llama")


@pytest.mark.slow
async def test_tiny_model_streams_stops_and_saves(tiny_backend, tmp_path: Path) -> None:
    session = tmp_path / "session.jsonl"
    settings = ChatSettings(max_tokens=12, seed=0)
    app = ChatApp(tiny_backend, settings=settings, save_path=session, refresh_interval=0.02)
    async with app.run_test(size=SIZE) as pilot:
        await ask(app, pilot, "What is 2 + 2? || 4")
        await wait_idle(app, pilot, timeout=60)
        turn = app.turns[0]
        assert turn.result is not None and turn.result.tokens == 12 and turn.result.truncated
        assert app.query_one(TurnView).trace.text == turn.result.text != ""  # the stream reached the view
        app.query_one("#max_tokens", Input).value = "3000"
        await pilot.press("ctrl+r")
        for _ in range(400):  # wait for the first tokens, then stop
            await pilot.pause(0.05)
            if app.live is not None and app.live.generated >= 2:
                break
        await pilot.press("escape")
        await wait_idle(app, pilot, timeout=60)
        stopped = app.turns[1]
        assert stopped.stopped and stopped.result is not None and stopped.result.tokens < 3000
        await pilot.press("ctrl+s")
    rows = [json.loads(line) for line in session.read_text().splitlines()]
    assert [r["stopped"] for r in rows] == [False, True] and rows[0]["completion"] == turn.result.text
    assert [rec["correct"] for _, rec in score_file(session)] == [False, False]
