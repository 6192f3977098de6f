"""Times `pr1 watch` on a long run: `python tests/tui/bench_watch.py` (repo root). Prints one line per
figure of docs/TUI.md's "Measured" table."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from tui_fixtures import rl_metrics, rollout_rows, write_rl_run  # noqa: E402

from pr1.tui.watch_app import WatchApp  # noqa: E402

STEPS, ROLLOUT_STEPS = 2000, 714


def make_run() -> Path:
    run = write_rl_run(Path(tempfile.mkdtemp()) / "long", steps=2, total=STEPS)
    with (run / "metrics.jsonl").open("a") as f:
        f.writelines(json.dumps(rl_metrics(s)) + "\n" for s in range(3, STEPS))
    with (run / "rollouts.jsonl").open("a") as f:
        f.writelines(json.dumps(r) + "\n" for s in range(1, ROLLOUT_STEPS + 1) for r in rollout_rows(s))
    return run


async def main() -> None:
    run = make_run()
    n = sum(1 for _ in (run / "rollouts.jsonl").open())
    mb = (run / "rollouts.jsonl").stat().st_size / 1e6
    t = time.perf_counter()
    app = WatchApp(run, poll_interval=3600)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        print(
            f"open a run with {STEPS - 1} metric rows and {n} rollouts ({mb:.1f} MB), first paint: "
            f"{time.perf_counter() - t:.2f} s"
        )
        with (run / "metrics.jsonl").open("a") as f:
            f.write(json.dumps(rl_metrics(STEPS)) + "\n")
        t = time.perf_counter()
        app.poll()
        await pilot.pause()
        print(f"poll finding a new metrics row, six charts redrawn: {time.perf_counter() - t:.3f} s")
        t = time.perf_counter()
        for _ in range(100):
            app.poll()
        print(f"poll finding nothing new: {(time.perf_counter() - t) * 10:.2f} ms")


if __name__ == "__main__":
    asyncio.run(main())
