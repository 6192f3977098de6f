"""The list of sampled rollouts (run, step, problem id, sample, reward, correct, blocks) with its filters."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable, Static

from pr1.format import PARALLEL_OPEN

CORRECTNESS = ("all", "correct", "incorrect")
PARALLEL = ("all", "with", "without")


def has_parallel(row: dict) -> bool:
    if isinstance(row.get("parallel"), bool):
        return row["parallel"]
    return PARALLEL_OPEN in str(row.get("completion", ""))


def n_blocks(row: dict) -> int:
    if isinstance(row.get("n_blocks"), int):
        return row["n_blocks"]
    return str(row.get("completion", "")).count(PARALLEL_OPEN)


def keep(row: dict, correctness: str, parallel: str) -> bool:
    if correctness != "all" and row.get("correct") is not (correctness == "correct"):
        return False
    return parallel == "all" or has_parallel(row) == (parallel == "with")


def group(row: dict) -> object:
    """What the step column shows: the stage of a demo row, the benchmark of an eval row, else the step."""
    for key in ("stage", "bench"):
        if key in row:
            return row[key]
    return row.get("step", "")


def group_name(row: dict) -> str:
    return next((k for k in ("stage", "bench") if k in row), "step")


def _cells(row: dict) -> tuple[str | Text, ...]:
    correct = row.get("correct")
    reward = row.get("reward")
    return (
        str(group(row))[:8],
        str(row.get("id", ""))[:14],
        str(row.get("sample", "")),
        f"{reward:+.2f}" if isinstance(reward, (int, float)) else "",
        Text("✓", "green") if correct is True else Text("✗", "red") if correct is False else "·",
        str(n_blocks(row)),
    )


class RolloutList(Vertical):
    """Shows `rows` (the runs' rollouts, in the order read; `run_of[i]` is the index in `runs` of row i's
    run) filtered; posts `Selected` with a row index."""

    correctness: reactive[str] = reactive("all", init=False)
    parallel: reactive[str] = reactive("all", init=False)
    run_filter: reactive[int | None] = reactive(None, init=False)  # None: every run

    class Selected(Message):
        def __init__(self, index: int):
            super().__init__()
            self.index = index

    def __init__(self, runs: list[str], *, id: str | None = None):
        super().__init__(id=id)
        self.runs = runs
        self.rows: list[dict] = []
        self.run_of: list[int] = []
        self.shown: list[int] = []

    def compose(self) -> ComposeResult:
        yield Static(id="filters")
        yield DataTable(id="rollout-table", cursor_type="row", zebra_stripes=True)

    @property
    def table(self) -> DataTable:
        return self.query_one("#rollout-table", DataTable)

    def on_mount(self) -> None:
        self.rebuild()

    def watch_correctness(self) -> None:
        self.rebuild()

    def watch_parallel(self) -> None:
        self.rebuild()

    def watch_run_filter(self) -> None:
        self.rebuild()

    def cycle_run(self) -> None:
        """Every run -> the first run only -> the second … -> every run."""
        options = [None, *range(len(self.runs))]
        self.run_filter = options[(options.index(self.run_filter) + 1) % len(options)]

    def cycle_correctness(self) -> None:
        self.correctness = CORRECTNESS[(CORRECTNESS.index(self.correctness) + 1) % len(CORRECTNESS)]

    def cycle_parallel(self) -> None:
        self.parallel = PARALLEL[(PARALLEL.index(self.parallel) + 1) % len(PARALLEL)]

    def rebuild(self) -> None:
        table = self.table
        current = self.current
        first = group_name(self.rows[0]) if self.rows else "step"
        table.clear(columns=True)
        table.add_columns(*(("run",) if len(self.runs) > 1 else ()), first, "id", "#", "reward", "ok", "blk")
        self.shown = []
        self._append(0)
        if current in self.shown:
            table.move_cursor(row=self.shown.index(current))
        elif self.shown:
            self.post_message(self.Selected(self.shown[0]))

    def add_rows(self, run: int, rows: list[dict]) -> None:
        """Add new rows of run `run` (a live run's new lines); those that pass the filters are shown."""
        start = len(self.rows)
        self.rows += rows
        self.run_of += [run] * len(rows)
        if start == 0:
            self.rebuild()  # the first row tells whether the step column is a step, a stage or a benchmark
        else:
            self._append(start)

    def _append(self, start: int) -> None:
        table = self.table
        several = len(self.runs) > 1
        for i in range(start, len(self.rows)):
            run = self.run_of[i]
            if (self.run_filter is None or run == self.run_filter) and keep(
                self.rows[i], self.correctness, self.parallel
            ):
                self.shown.append(i)
                cells = _cells(self.rows[i])
                table.add_row(*((self.runs[run][:12], *cells) if several else cells), key=str(i))
        self._show_filters()

    def _show_filters(self) -> None:
        runs = (
            ""
            if len(self.runs) < 2
            else f"run: {'all' if self.run_filter is None else self.runs[self.run_filter]} · "
        )
        self.query_one("#filters", Static).update(
            f"{runs}answers: {self.correctness} · parallel: {self.parallel} · {len(self.shown)}/{len(self.rows)}"
        )

    @property
    def current(self) -> int | None:
        row = self.table.cursor_row
        return self.shown[row] if 0 <= row < len(self.shown) else None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.post_message(self.Selected(int(event.row_key.value)))

    def jump_step(self, direction: int) -> None:
        """Move the cursor to the first row of the next (+1) or previous (-1) step (benchmark)."""
        keys = [(self.run_of[i], group(self.rows[i])) for i in self.shown]
        cur = self.table.cursor_row
        if not 0 <= cur < len(keys):
            return
        start = cur
        while start > 0 and keys[start - 1] == keys[cur]:
            start -= 1
        if direction > 0:
            target = next((j for j in range(cur + 1, len(keys)) if keys[j] != keys[cur]), None)
        elif start > 0:
            target = start - 1
            while target > 0 and keys[target - 1] == keys[start - 1]:
                target -= 1
        else:
            target = None
        if target is not None:
            self.table.move_cursor(row=target)
