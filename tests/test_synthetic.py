"""The synthetic teacher: correct, valid, varied traces of a learnable length, deterministic per seed."""

from __future__ import annotations

import re
import statistics
from collections import Counter

from pr1.coldstart.generate import TokenCounter
from pr1.coldstart.synthetic import FAMILIES, make_problem, synthetic_problems, write_trace
from pr1.format import stats, validate
from pr1.grading import grade


def _traces(n: int, seed: int = 0) -> list[tuple[dict, str]]:
    rows = synthetic_problems(n, seed=seed)
    return [(row, write_trace(make_problem(seed, row["index"]))) for row in rows]


def test_200_traces_are_valid_correct_and_distinct_up_to_numbers() -> None:
    pairs = _traces(200)
    for row, trace in pairs:
        assert validate(trace) == [], trace
        g = grade(trace, row["answer"])
        assert g.correct and g.answer_source == "final_answer", (trace, row["answer"], g)
    masked = [re.sub(r"\d+", "#", trace) for _, trace in pairs]
    assert len(set(masked)) == 200
    problems = {re.sub(r"\d+", "#", row["problem"]) for row, _ in pairs}
    assert len(problems) > 190  # problems may share wording and differ in their numbers only


def test_traces_vary_in_shape_and_routes() -> None:
    pairs = _traces(200)
    shapes = Counter()
    paths = Counter()
    for _, trace in pairs:
        s = stats(trace)
        shapes[s.n_blocks] += 1
        paths.update(s.paths_per_block)
    assert shapes[1] > 100 and shapes[2] >= 5  # mostly one block, sometimes two
    assert paths[2] > 150 and paths[3] >= 5  # mostly two paths, sometimes three
    # every family shows up, and the paths of one block are different routes, not copies
    first_lines = {make_problem(0, row["index"]).text.split()[0] for row, _ in pairs}
    assert len(first_lines) > 20
    for _, trace in pairs:
        for block in re.findall(r"<Parallel>(.*?)</Parallel>", trace, re.S):
            bodies = re.findall(r"<Path>(.*?)</Path>", block, re.S)
            assert len(set(bodies)) == len(bodies)
    assert len(FAMILIES) >= 10


def test_lengths_suit_a_small_model() -> None:
    counter = TokenCounter("smollm2-135m")  # the tags count as one token each, as after SFT
    lengths = [counter.text(trace) for _, trace in _traces(200)]
    assert 100 <= statistics.median(lengths) <= 250
    assert max(lengths) < 400


def test_deterministic_per_seed_and_sample() -> None:
    assert synthetic_problems(5, seed=3) == synthetic_problems(5, seed=3)
    assert synthetic_problems(5, seed=3) != synthetic_problems(5, seed=4)
    p = make_problem(3, 2)
    assert write_trace(p, 0) == write_trace(make_problem(3, 2), 0)
    samples = {write_trace(p, s) for s in range(6)}
    assert len(samples) >= 4  # another sample number gives another variant of the same solution
    for trace in samples:
        assert grade(trace, p.answer).correct
