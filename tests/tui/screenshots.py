"""Writes docs/screenshots/*.svg from the test fixtures: `python tests/tui/screenshots.py` (repo root)."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from tui_fixtures import (  # noqa: E402
    CHAT_EVENTS,
    CHAT_PROBLEM,
    ReplayGenerator,
    write_demo_run,
    write_eval_run,
    write_rl_run,
    write_sft_run,
)

from pr1.tui.chat_app import ChatApp  # noqa: E402
from pr1.tui.chat_session import ChatSettings  # noqa: E402
from pr1.tui.watch_app import WatchApp  # noqa: E402
from pr1.tui.widgets.rollout_list import RolloutList  # noqa: E402

OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SIZE = (120, 40)


async def shoot(app, name: str, steps=None) -> None:  # noqa: ANN001
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        if steps:
            await steps(pilot)
        await pilot.pause(0.2)
        app.save_screenshot(filename=f"{name}.svg", path=str(OUT))
    print(OUT / f"{name}.svg")


async def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp())

    async def rollout_tree(pilot) -> None:  # noqa: ANN001
        await pilot.press("4")
        pilot.app.query_one(RolloutList).table.move_cursor(row=5)
        await pilot.pause(0.5)

    async def ask(pilot, wait_paused: ReplayGenerator | None = None) -> None:  # noqa: ANN001
        while not pilot.app.ready:
            await pilot.pause(0.05)
        pilot.app.query_one("#prompt").value = CHAT_PROBLEM + " || 5"
        await pilot.press("enter")
        if wait_paused is not None:
            wait_paused.paused.wait(5)
            await pilot.pause(0.3)
            return
        while pilot.app.generating:
            await pilot.pause(0.05)
        await pilot.pause(0.1)

    await shoot(WatchApp(write_rl_run(tmp / "rl-demo")), "watch-curves")
    await shoot(WatchApp(write_rl_run(tmp / "rl-demo2")), "watch-rollouts", rollout_tree)
    await shoot(WatchApp(write_rl_run(tmp / "rl-demo3")), "watch-health", lambda p: p.press("2"))
    compare = [write_rl_run(tmp / "rl-acc", reward="accuracy"), write_rl_run(tmp / "rl-alt", 30, seed=1)]
    await shoot(WatchApp(compare), "watch-compare")
    await shoot(WatchApp(write_demo_run(tmp / "demo")), "watch-demo")
    await shoot(WatchApp(write_sft_run(tmp / "sft-demo")), "watch-sft")
    await shoot(WatchApp(write_eval_run(tmp / "eval-demo")), "watch-eval")
    live = ReplayGenerator(CHAT_EVENTS, pause_at=28)
    await shoot(
        ChatApp(live, settings=ChatSettings(seed=7), save_path=tmp / "s.jsonl"),
        "chat-live",
        lambda p: ask(p, live),
    )
    live.resume.set()

    async def ask_then_unfold_first(pilot) -> None:  # noqa: ANN001
        await ask(pilot)
        first = pilot.app.views[0].trace.blocks[0]
        first.set_collapsed(False)

    await shoot(
        ChatApp(ReplayGenerator(CHAT_EVENTS), settings=ChatSettings(seed=7), save_path=tmp / "s2.jsonl"),
        "chat-folded",
        ask_then_unfold_first,
    )


if __name__ == "__main__":
    asyncio.run(main())
