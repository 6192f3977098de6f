"""Scoring of completions: the per-row record of `pr1 score --json`, and the summary table.

The row keys are a contract other tools (eval, data, the dashboard) rely on: keep them stable."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from pathlib import Path

from pr1.datasets import check_answer
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
        try:
            missing = [k for k in (completion_key, answer_key) if k not in row]
            if missing:
                raise Pr1Error(f"{path}:{lineno}: missing key(s) {', '.join(map(repr, missing))}")
            if not isinstance(row[completion_key], str):
                raise Pr1Error(f"{path}:{lineno}: {completion_key!r} is not a string")
            answer = check_answer(row[answer_key], f"{path}:{lineno}", answer_key)
        except Pr1Error as e:
            if skip_bad:
                continue
            raise Pr1Error(f"{e} (use --completion-key/--answer-key, or --skip-bad)") from None
        yield lineno, score_completion(row[completion_key], answer, schedule, step)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarise(records: Iterable[dict]) -> dict:
    """The figures of a set of scored rows, under the one set of names that `pr1 score`, `pr1 eval`, the RL
    step metrics, the dashboard and the demo use. Rows are `pr1 score` records; the length figures need the
    rollout keys (`tokens`, `critical_path_tokens`, `truncated`, `parallel_positions`) and are None without
    them, as every figure is for no rows.

    rows, accuracy, parallel_ratio, format_valid_rate, blocks_mean, paths_per_block_mean, parallel_position_mean,
    response_tokens_mean, critical_path_tokens_mean, truncated_rate, no_answer_rate, reward_mean, reward_std"""
    rows = list(records)

    def mean_of(key: str, value=float) -> float | None:  # noqa: ANN001  (a conversion function)
        return _mean([value(r[key]) for r in rows if r.get(key) is not None])

    rewards = [float(r["reward"]) for r in rows if r.get("reward") is not None]
    reward_mean = _mean(rewards)
    return {
        "rows": len(rows),
        "accuracy": mean_of("correct"),
        "parallel_ratio": mean_of("parallel"),
        "format_valid_rate": mean_of("format_valid"),
        "blocks_mean": mean_of("n_blocks"),
        "paths_per_block_mean": _mean([b for r in rows for b in r.get("paths_per_block") or []]),
        "parallel_position_mean": _mean([p for r in rows for p in r.get("parallel_positions") or []]),
        "response_tokens_mean": mean_of("tokens"),
        "critical_path_tokens_mean": mean_of("critical_path_tokens"),
        "truncated_rate": mean_of("truncated"),
        "no_answer_rate": _mean([float(r.get("pred") is None) for r in rows]),
        "reward_mean": reward_mean,
        "reward_std": (
            math.sqrt(sum((x - reward_mean) ** 2 for x in rewards) / (len(rewards) - 1))
            if len(rewards) > 1 and reward_mean is not None
            else (0.0 if rewards else None)
        ),
    }
