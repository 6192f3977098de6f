"""`pr1 chat`: live branching view from streamed events, stop, regenerate, save, settings."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from textual.widgets import Input, Static
from tui_fixtures import CHAT_EVENTS, CHAT_PROBLEM, CHAT_TEXT, Event, ReplayGenerator, record

from pr1.errors import Pr1Error
from pr1.format import parse
from pr1.score import score_file
from pr1.tui.chat_app import ChatApp
from pr1.tui.chat_session import NO_PARALLEL_TRAINING, ChatSettings, split_answer
from pr1.tui.live_trace import LiveTrace
from pr1.tui.widgets.help_screen import HelpScreen
from pr1.tui.widgets.trace_tree import TraceView
from pr1.tui.widgets.turn_view import TurnView

pytestmark = pytest.mark.anyio
SIZE = (120, 40)


@pytest.fixture(scope="module")
def tiny():
    """A random-weight model with SmolLM2's tokenizer and the tags (built once for this module)."""
    from pr1.models import tiny_model

    return tiny_model("llama", seed=0)


async def wait_idle(app: ChatApp, pilot, timeout: float = 10.0) -> None:
    """Wait until the generation ended and every trace tree shows its final text."""
    for _ in range(int(timeout / 0.05)):
        idle = app.ready and not app.generating and app.waiting is None
        if idle and all(t.settled for t in app.query(TraceView)):
            await pilot.pause()
            return
        await pilot.pause(0.05)
    raise AssertionError("generation did not finish")


async def ask(app: ChatApp, pilot, line: str, *, loaded: bool = True) -> None:
    """Type `line` and press enter; `loaded`: once the model has loaded (a test that then blocks on its
    replay must not leave the question waiting for the app's next tick)."""
    for _ in range(200 if loaded else 0):
        if app.ready:
            break
        await pilot.pause(0.05)
    prompt = app.query_one("#prompt", Input)
    prompt.value = line
    await pilot.press("enter")


# ----------------------------------------------------------------------------------------- pure parts


def test_live_trace_keeps_interleaved_paths_apart() -> None:
    live = LiveTrace()
    events = iter(CHAT_EVENTS)
    while live.tokens < 16:  # into block 0, both paths unfinished
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
    assert live.done and live.tokens == sum(not e.done for e in CHAT_EVENTS)  # inserted tags included


def test_live_trace_counts_the_drawn_tree() -> None:
    # main "a " (1), <Parallel> (1), two inserted <Path> (1 + 1), path 1 "x ", "y", </Path> (3), path 2 "z",
    # </Path> (2), </Parallel> \n <Summary> (3), "s" (1), </Summary> (1), main " ", "b" (2): 16 tokens; the
    # critical path leaves out path 2 (3 tokens), the shorter one
    events = record(["a ", " b"], [(["x y", "z"], "s")])
    live = LiveTrace()
    for ev in events:
        live.add(ev)
    assert (live.tokens, live.critical_path_tokens) == (16, 13)
    cut = LiveTrace()
    for ev in events[:6]:  # a, <Parallel>, <Path>, <Path>, "x ", "z"
        cut.add(ev)
    assert (cut.tokens, cut.critical_path_tokens) == (6, 4)


def test_final_text_parses_back_to_the_tree_drawn_whenever_it_stops() -> None:
    for n in range(len(CHAT_EVENTS) + 1):
        live = LiveTrace()
        for ev in CHAT_EVENTS[:n]:
            live.add(ev)
        drawn = [[p.text for p in b.paths] for b in live.trace().blocks]
        final = parse(live.final_text())
        assert [[p.text for p in b.paths] for b in final.blocks] == drawn, n  # no path lost or merged
        assert final.render() == live.final_text()
        assert live.critical_path_tokens <= live.tokens
    assert live.final_text() == CHAT_TEXT


def test_free_mode_text_between_paths_stays_in_its_block() -> None:
    """In free mode the model writes every tag; the engine labels each token as `_Labels` reads the stream
    (text between a block's paths is "main" with the block's number)."""
    from pr1.format import TAGS, split_tags
    from pr1.rollout.engine import _Labels

    text = "a <Parallel>\n<Path>x</Path>\n<Path>y</Path>\n</Parallel>\n<Summary>s</Summary>\nFinal Answer: 1"
    ids = {tag: i for i, tag in enumerate(TAGS)} | {"\n": 10}
    labels = _Labels({t: ids[t] for t in TAGS}, [10])
    live = LiveTrace()
    for piece in split_tags(text.replace("\n", "\0\n\0")):
        for part in filter(None, piece.split("\0")):
            segment, block, path = labels(ids.get(part, 99))
            live.add(Event(segment, block, path, part))
    assert live.final_text() == text
    (block,) = live.trace().blocks
    assert [p.text for p in block.paths] == ["x", "y"] and block.summary.text == "s"


def test_no_replacement_character_from_a_cut_multibyte_character(tiny) -> None:
    """😀 is three byte tokens in SmolLM2's vocabulary: a path cut after two of them (its budget inserts
    </Path>), or a stream that ends there, decodes them to U+FFFD, which the chat drops."""
    from pr1.rollout.engine import _Detok

    _, tokenizer = tiny
    emoji = tokenizer.encode("ok 😀", add_special_tokens=False)
    close = tokenizer.convert_tokens_to_ids("</Path>")
    live = LiveTrace()
    path = _Detok(tokenizer)
    texts = [path.add(t) for t in [tokenizer.convert_tokens_to_ids("<Path>"), *emoji[:-1], close]]
    main = _Detok(tokenizer)
    texts_main = [main.add(t) for t in emoji[:-1]] + [main.flush()]
    assert "\ufffd" in "".join(texts + texts_main)  # what the engine's events carry
    live.add(Event("main", None, None, "<Parallel>"))
    for text in texts:
        live.add(Event("path", 0, 0, text))
    for text in texts_main:
        live.add(Event("main", None, None, text, token_id=-1))
    assert "\ufffd" not in live.final_text()
    assert live.final_text() == "<Parallel><Path>ok </Path>ok "


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
        assert turn.stopped and not turn.truncated
        assert len(turn.text) < len("".join(e.text for e in CHAT_EVENTS))
        assert "stopped" in str(app.query_one("#chat-header").render())
        assert "stopped" in str(app.query_one(TurnView).answer.render())


async def test_stop_mid_block_shows_and_saves_the_tree_it_drew(tmp_path: Path) -> None:
    backend = ReplayGenerator(CHAT_EVENTS, pause_at=25)  # block 0: both paths open
    session = tmp_path / "s.jsonl"
    app = ChatApp(backend, save_path=session, refresh_interval=0.02)
    async with app.run_test(size=SIZE) as pilot:
        await ask(app, pilot, CHAT_PROBLEM + " || 5")
        assert backend.paused.wait(5)
        await pilot.pause(0.1)
        await pilot.press("escape")
        await wait_idle(app, pilot)
        view, turn = app.query_one(TurnView), app.turns[0]
        (block,) = view.trace.blocks
        assert block.fold.title == "Parallel block 1 · 2 paths · stopped"
        drawn = [str(p.body.render()) for p in block.path_views]
        assert drawn == ["Parents give $15 and grandparents give 2", "The gifts are 15 + 2 ·"]
        assert turn.stopped and not turn.truncated and (turn.tokens, turn.critical_path_tokens) == (25, 17)
        answer, details = str(view.answer.render()), str(view.details.render())
        assert "stopped" in answer and "truncated" not in answer
        assert "25 tokens · critical path 17" in details  # 8 main, 1 <Parallel>, 8 + 8 in the paths
        assert "format ✗ unclosed at end: <Parallel>, <Path>" in details
        await pilot.press("ctrl+s")
    (row,) = [json.loads(line) for line in session.read_text().splitlines()]
    assert row["completion"] == view.trace.text == turn.text
    assert [p.text.strip() for p in parse(row["completion"]).blocks[0].paths] == drawn  # path 2 kept
    assert (row["stopped"], row["truncated"], row["tokens"], row["critical_path_tokens"]) == (
        True,
        False,
        25,
        17,
    )
    assert row["format_valid"] is False and row["format_errors"] == ["unclosed at end: <Parallel>, <Path>"]


async def test_truncated_is_not_stopped(tmp_path: Path) -> None:
    class OutOfBudget(ReplayGenerator):
        def generate(self, *args):  # noqa: ANN002
            from pr1.tui.chat_session import Generation

            super().generate(*args)
            return Generation(truncated=True)

    app = ChatApp(OutOfBudget(CHAT_EVENTS[:25]), save_path=tmp_path / "s.jsonl")
    async with app.run_test(size=SIZE) as pilot:
        await ask(app, pilot, CHAT_PROBLEM)
        await wait_idle(app, pilot)
        view, turn = app.query_one(TurnView), app.turns[0]
        assert turn.truncated and not turn.stopped
        assert "truncated (max tokens)" in str(view.answer.render())
        assert view.trace.blocks[0].fold.title.endswith("· truncated")
        assert "ready" in str(app.query_one("#chat-header").render())


async def test_format_validity_is_shown_with_its_reason(tmp_path: Path) -> None:
    stray = ReplayGenerator(record(["The sum is 4.</Summary>\nFinal Answer: 4"], []))
    session = tmp_path / "s.jsonl"
    app = ChatApp(stray, save_path=session)
    async with app.run_test(size=SIZE) as pilot:
        await ask(app, pilot, "What is 2 + 2? || 4")
        await wait_idle(app, pilot)
        view = app.query_one(TurnView)
        assert "✓ correct" in str(view.answer.render())  # the answer is right ...
        details = str(view.details.render())  # ... the format is not, and the line says why
        assert "format ✗ </Summary> without an open <Summary> (inside main text)" in details
        assert view.details.has_class("-invalid")
        await pilot.press("ctrl+s")
    (row,) = [json.loads(line) for line in session.read_text().splitlines()]
    assert row["format_valid"] is False and row["format_errors"][0].startswith("</Summary> without")
    ok = ChatApp(ReplayGenerator(CHAT_EVENTS), save_path=tmp_path / "t.jsonl")
    async with ok.run_test(size=SIZE) as pilot:
        await ask(ok, pilot, CHAT_PROBLEM)
        await wait_idle(ok, pilot)
        assert str(ok.query_one(TurnView).details.render()).startswith("format ✓ valid · 91 tokens")


async def test_a_seed_is_drawn_shown_and_saved(tmp_path: Path) -> None:
    session = tmp_path / "s.jsonl"
    app = ChatApp(ReplayGenerator(record(["Final Answer: 4"], [])), save_path=session)
    async with app.run_test(size=SIZE) as pilot:
        await ask(app, pilot, "What is 2 + 2?")
        await wait_idle(app, pilot)
        await pilot.press("ctrl+r")
        await wait_idle(app, pilot)
        app.query_one("#seed", Input).value = "123"
        await pilot.press("ctrl+r")
        await wait_idle(app, pilot)
        seeds = [t.settings.seed for t in app.turns]
        assert all(isinstance(s, int) for s in seeds) and seeds[0] != seeds[1] and seeds[2] == 123
        assert f"seed {seeds[0]}" in str(app.views[0].details.render())
        assert str(app.query_one("#seed-used", Static).render()) == "last turn: 123"
        await pilot.press("ctrl+s")
    assert [json.loads(line)["seed"] for line in session.read_text().splitlines()] == seeds


async def test_typing_while_the_model_loads_is_kept(tmp_path: Path) -> None:
    loaded = threading.Event()
    backend = ReplayGenerator(CHAT_EVENTS, loaded=loaded, notice=NO_PARALLEL_TRAINING)
    app = ChatApp(backend, save_path=tmp_path / "s.jsonl", refresh_interval=0.02)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"Betty", "space", *"needs", "space", "5", "enter")
        await pilot.pause(0.1)
        assert not app.ready and app.waiting is app.turns[0] and app.turns[0].problem == "Betty needs 5"
        assert "your problem waits" in str(app.query_one("#chat-header").render())
        assert "waits for the model" in str(app.query_one(TurnView).answer.render())
        assert not app.query_one("#notice").display
        loaded.set()
        await wait_idle(app, pilot)
        assert app.turns[0].finished and app.turns[0].text == CHAT_TEXT
        notice = app.query_one("#notice", Static)
        assert notice.display and "pr1 chat --adapter runs/demo/rl/final" in str(notice.render())


async def test_escape_cancels_a_waiting_problem_and_a_failed_load_ends_the_app(tmp_path: Path) -> None:
    loaded = threading.Event()
    app = ChatApp(ReplayGenerator(CHAT_EVENTS, loaded=loaded), save_path=tmp_path / "s.jsonl")
    async with app.run_test(size=SIZE) as pilot:
        await ask(app, pilot, "What is 2 + 2?", loaded=False)
        assert app.waiting is not None
        await pilot.press("escape")
        await pilot.pause()
        assert app.waiting is None and not app.turns and not app.query(TurnView)
        loaded.set()

    class Unloadable(ReplayGenerator):
        def load(self) -> str | None:
            raise Pr1Error("cannot load 'no-such-model'")

    app = ChatApp(Unloadable(CHAT_EVENTS), save_path=tmp_path / "s.jsonl")
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(100):
            if not app.is_running:
                break
            await pilot.pause(0.05)
    assert not app.is_running and str(app.load_error) == "cannot load 'no-such-model'"


async def test_escape_closes_the_help(tmp_path: Path) -> None:
    app = ChatApp(ReplayGenerator(CHAT_EVENTS), save_path=tmp_path / "s.jsonl")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_resizing_keeps_the_latest_turn_in_view(tmp_path: Path) -> None:
    backend = ReplayGenerator(CHAT_EVENTS, pause_at=70)  # block 2's paths are being written
    app = ChatApp(backend, save_path=tmp_path / "s.jsonl", refresh_interval=0.02)
    async with app.run_test(size=SIZE) as pilot:
        await ask(app, pilot, CHAT_PROBLEM)
        assert backend.paused.wait(5)
        await pilot.pause(0.2)
        turns = app.query_one("#turns")
        await pilot.resize_terminal(70, 24)  # narrower and lower: the turn no longer fits
        await pilot.pause(0.2)
        assert turns.max_scroll_y > 0 and turns.scroll_y == turns.max_scroll_y
        answer = app.views[-1].answer.region
        assert turns.region.y <= answer.y < turns.region.bottom  # the latest line is on screen
        turns.scroll_home(animate=False)  # a user who scrolls up to read stays there while the turn grows
        await pilot.pause(0.1)
        backend.resume.set()
        await wait_idle(app, pilot)
        assert turns.scroll_y == 0 < turns.max_scroll_y


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
        pilot.app.query_one(
            "#prompt", Input
        ).cursor_blink = False  # a blinking cursor is drawn or not by chance
        await ask(pilot.app, pilot, CHAT_PROBLEM + " || 5")
        await wait_idle(pilot.app, pilot)
        await pilot.press("ctrl+b")
        await pilot.pause()

    app = ChatApp(ReplayGenerator(CHAT_EVENTS), settings=ChatSettings(seed=7), save_path=tmp_path / "s.jsonl")
    assert snap_compare(app, terminal_size=SIZE, run_before=ask_and_unfold)


def test_snapshot_chat_stopped_mid_block(snap_compare, tmp_path: Path) -> None:
    """An untrained model's notice, and a turn stopped with both paths of its block open."""
    backend = ReplayGenerator(CHAT_EVENTS, pause_at=25, notice=NO_PARALLEL_TRAINING)

    async def ask_and_stop(pilot) -> None:
        pilot.app.query_one("#prompt", Input).cursor_blink = False
        await ask(pilot.app, pilot, CHAT_PROBLEM + " || 5")
        assert backend.paused.wait(5)
        await pilot.press("escape")
        await wait_idle(pilot.app, pilot)

    app = ChatApp(backend, settings=ChatSettings(seed=7), save_path=tmp_path / "s.jsonl")
    assert snap_compare(app, terminal_size=SIZE, run_before=ask_and_stop)


# ------------------------------------------------------------------------- with the real rollout engine


@pytest.fixture(scope="module")
def tiny_backend(tiny):
    from pr1.rollout import RolloutEngine
    from pr1.tui.chat_session import EngineGenerator, LoadedModel

    return EngineGenerator(lambda: LoadedModel(RolloutEngine(*tiny), parallel_trained=True), "tiny-llama")


@pytest.mark.slow
async def test_tiny_model_streams_stops_and_saves(tiny_backend, tmp_path: Path) -> None:
    session = tmp_path / "session.jsonl"
    settings = ChatSettings(max_tokens=12, seed=0)
    app = ChatApp(tiny_backend, settings=settings, save_path=session, refresh_interval=0.02)
    async with app.run_test(size=SIZE) as pilot:
        await ask(app, pilot, "What is 2 + 2? || 4")
        await wait_idle(app, pilot, timeout=60)
        turn = app.turns[0]
        assert turn.tokens == 12 and turn.truncated and not turn.stopped
        assert app.query_one(TurnView).trace.text == turn.text != ""  # the stream reached the view
        app.query_one("#max_tokens", Input).value = "3000"
        await pilot.press("ctrl+r")
        for _ in range(400):  # wait for the first tokens, then stop
            await pilot.pause(0.05)
            if app.live is not None and app.live.tokens >= 2:
                break
        await pilot.press("escape")
        await wait_idle(app, pilot, timeout=60)
        stopped = app.turns[1]
        assert stopped.stopped and not stopped.truncated and stopped.tokens < 3000
        await pilot.press("ctrl+s")
    rows = [json.loads(line) for line in session.read_text().splitlines()]
    assert [r["stopped"] for r in rows] == [False, True] and [r["truncated"] for r in rows] == [True, False]
    assert rows[0]["completion"] == turn.text and rows[0]["seed"] == 0
    assert [rec["correct"] for _, rec in score_file(session)] == [False, False]
