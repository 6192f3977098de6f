"""The data model of a synthetic problem: the routes to each quantity it asks for, and the rng helpers
that the problem families and the trace writer draw with."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from pr1.coldstart.synthetic.vocabulary import PEOPLE

T = TypeVar("T")


@dataclass
class Route:
    """One way to a quantity. `check` routes verify a value that is already stated (the inverse operation),
    so they only appear after the value was computed in the main text."""

    label: str  # a noun phrase for the summary: "adding the two subtotals"
    steps: list[str]
    value: int
    check: bool = False


@dataclass
class Stage:
    """A quantity the problem asks for on the way to its answer (the last stage is the answer), with every
    route to it; all routes reach `value`."""

    quantity: str  # "the total cost"
    value: int
    shown: str  # the value as written: "$34", "42 km"
    routes: list[Route]


@dataclass
class Problem:
    """A problem and all a trace may say about it; `id` is filled in by `make_problem`."""

    id: str
    text: str
    answer: int
    opening: list[str]  # alternative first sentences of a trace
    stages: list[Stage] = field(default_factory=list)
    closing: str = ""  # the answer in words, for the end of a trace

    def row(self, seed: int, index: int) -> dict:
        return {"id": self.id, "problem": self.text, "answer": str(self.answer), "seed": seed, "index": index}


class Draw:
    """rng helpers that read well in the problem families and the trace writer."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def num(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def one(self, options: Sequence[T]) -> T:
        return self.rng.choice(options)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def person(self) -> tuple[str, str, str]:
        return self.one(PEOPLE)


Family = Callable[[Draw], Problem]  # a problem family: builds one problem from a draw


def distinct(routes: list[Route]) -> list[Route]:
    """`routes` without those whose steps repeat an earlier route's (small numbers can make two routes
    read the same, and the paths of a block must differ)."""
    seen: set[tuple[str, ...]] = set()
    out = []
    for route in routes:
        if tuple(route.steps) not in seen:
            seen.add(tuple(route.steps))
            out.append(route)
    return out
