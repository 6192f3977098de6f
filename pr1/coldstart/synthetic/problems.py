"""`make_problem` and `synthetic_problems`: the problem sets, one per seed."""

from __future__ import annotations

import random

from pr1.coldstart.synthetic.model import Draw, Problem
from pr1.coldstart.synthetic.word import FAMILIES


def make_problem(seed: int, index: int) -> Problem:
    """The `index`-th synthetic problem of the set drawn with `seed` (same arguments, same problem)."""
    d = Draw(random.Random(f"pr1-synthetic:{seed}:{index}"))
    family = FAMILIES[d.num(0, len(FAMILIES) - 1)]
    problem = family(d)
    problem.id = f"synthetic-{seed}-{index}"
    for stage in problem.stages:
        for route in stage.routes:
            assert route.value == stage.value, (problem.text, route.label, route.value, stage.value)
    assert problem.stages[-1].value == problem.answer
    return problem


def synthetic_problems(n: int, seed: int = 0) -> list[dict]:
    """Rows {id, problem, answer, seed, index} like `pr1.datasets.load_problems` returns."""
    return [make_problem(seed, i).row(seed, i) for i in range(n)]
