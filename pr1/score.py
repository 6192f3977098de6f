"""Scoring of completions: the per-row record of `pr1 score --json`, and the summary table.

The row keys are a contract other tools (eval, data, the dashboard) rely on: keep them stable."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from pr1.errors import Pr1Error
from pr1.format import stats, validate
from pr1.grading import grade
from pr1.jsonl import iter_jsonl
from pr1.rewards import Schedule, score_reward

SCORE_KEYS = (
    "correct",
    "pred",
    "answer_source",
    "format_valid",
    "format_errors",
    "n_blocks",
    "paths_per_block",
    "parallel",
    "reward",
)


def score_completion(
    text: str, answer: str | int | float, schedule: Schedule | None = None, step: int = 1
) -> dict:
    """The `pr1 score` record of one completion (tags written literally) against its gold answer, under
    `schedule` (default: accuracy, pr1's format rules) at `step`; `format_valid` and `format_errors` follow
    `schedule.format_rules`."""
    schedule = schedule or Schedule()
    g = grade(text, answer)
    errors = validate(text, schedule.format_rules)
    st = stats(text)
    return {
        "correct": g.correct,
        "pred": g.pred,
        "answer_source": g.answer_source,
        "format_valid": not errors,
        "format_errors": errors,
        "n_blocks": st.n_blocks,
        "paths_per_block": st.paths_per_block,
        "parallel": st.n_blocks >= 1,
        "reward": score_reward(schedule, step, g.correct, st.n_blocks, not errors),
    }


def score_file(
    path: str | Path,
    *,
    schedule: Schedule | None = None,
    step: int = 1,
    completion_key: str = "completion",
    answer_key: str = "answer",
    skip_bad: bool = False,
) -> Iterator[tuple[int, dict]]:
    """Yield (line number, score record) for each row of a JSON Lines file of completions."""
    for lineno, row in iter_jsonl(path, skip_bad=skip_bad):
        missing = [k for k in (completion_key, answer_key) if k not in row]
        bad_type = completion_key in row and not isinstance(row[completion_key], str)
        if missing or bad_type:
            if skip_bad:
                continue
            what = (
                f"missing key(s) {', '.join(map(repr, missing))}"
                if missing
                else f"{completion_key!r} is not a string"
            )
            raise Pr1Error(f"{path}:{lineno}: {what} (use --completion-key/--answer-key, or --skip-bad)")
        yield lineno, score_completion(row[completion_key], row[answer_key], schedule, step)


def summarise(records: Iterable[dict]) -> dict:
    """Rows, accuracy, parallel ratio, format-valid rate, mean blocks, mean reward."""
    rows = list(records)
    n = len(rows)

    def mean(key: str) -> float:
        return sum(float(r[key]) for r in rows) / n if n else 0.0

    return {
        "rows": n,
        "accuracy": mean("correct"),
        "parallel_ratio": mean("parallel"),
        "format_valid_rate": mean("format_valid"),
        "mean_blocks": mean("n_blocks"),
        "mean_reward": mean("reward"),
    }
