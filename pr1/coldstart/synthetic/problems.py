"""`make_problem` and `synthetic_problems`: the problem sets, one per seed and difficulty."""

from __future__ import annotations

import random
from typing import Any

from pr1.coldstart.synthetic import arithmetic, short_word, word
from pr1.coldstart.synthetic.model import Draw, Family, Problem
from pr1.errors import Pr1Error

# the difficulties, easiest first, and the families each draws from
LEVELS: dict[str, list[Family]] = {
    "one-step": arithmetic.ONE_STEP,  # "What is 3 + 5?": one operation on single digits
    "two-step": arithmetic.TWO_STEP,  # "What is 3 + 5 - 2?": two operations on single digits
    "short-word": short_word.FAMILIES,  # two operations on small numbers, in a sentence or two
    "word": word.FAMILIES,  # word problems with 2-4 operations
}
DIFFICULTIES = tuple(LEVELS)
DEFAULT_DIFFICULTY = "word"


def check_difficulty(difficulty: str) -> None:
    if difficulty not in LEVELS:
        raise Pr1Error(f"synthetic difficulty {difficulty!r}: expected one of {', '.join(DIFFICULTIES)}")


def make_problem(seed: int, index: int, difficulty: str = DEFAULT_DIFFICULTY) -> Problem:
    """The `index`-th synthetic problem of the set drawn with `seed` at `difficulty` (same arguments, same
    problem; the sets of different difficulties are independent draws)."""
    check_difficulty(difficulty)
    # the default level keeps the names it had before there were levels, so its sets stay the same
    key = f"{seed}:{index}" if difficulty == DEFAULT_DIFFICULTY else f"{difficulty}:{seed}:{index}"
    d = Draw(random.Random(f"pr1-synthetic:{key}"))
    families = LEVELS[difficulty]
    family = families[d.num(0, len(families) - 1)]
    problem = family(d)
    problem.id = f"synthetic-{key.replace(':', '-')}"
    for stage in problem.stages:
        for route in stage.routes:
            assert route.value == stage.value, (problem.text, route.label, route.value, stage.value)
    assert problem.stages[-1].value == problem.answer
    return problem


def synthetic_problems(n: int, seed: int = 0, difficulty: str = DEFAULT_DIFFICULTY) -> list[dict[str, Any]]:
    """Rows {id, problem, answer, seed, index} like `pr1.datasets.load_problems` returns, and `difficulty`
    where it is not the default (so that `make_problem` can rebuild each problem from its row)."""
    rows = []
    for i in range(n):
        problem = make_problem(seed, i, difficulty)
        row: dict[str, Any] = {"id": problem.id, "problem": problem.text, "answer": str(problem.answer)}
        row.update(seed=seed, index=i)
        if difficulty != DEFAULT_DIFFICULTY:
            row["difficulty"] = difficulty
        rows.append(row)
    return rows
