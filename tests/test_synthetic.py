"""The synthetic teacher: correct, valid, varied traces of a learnable length, deterministic per seed."""

from __future__ import annotations

import hashlib
import json
import re
import statistics
from collections import Counter

import pytest

from pr1.coldstart.generate import TokenCounter
from pr1.coldstart.synthetic import (
    DEFAULT_DIFFICULTY,
    DIFFICULTIES,
    FAMILIES,
    Problem,
    make_problem,
    synthetic_problems,
    write_trace,
)
from pr1.errors import Pr1Error
from pr1.format import stats, validate
from pr1.grading import grade

EASY = [d for d in DIFFICULTIES if d != DEFAULT_DIFFICULTY]


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
    for difficulty in EASY:  # shorter still (1,800 traces of each: at most 160, 162 and 207 tokens)
        traces = [write_trace(make_problem(0, i, difficulty)) for i in range(200)]
        assert max(counter.text(trace) for trace in traces) < 224


def test_deterministic_per_seed_and_sample() -> None:
    assert synthetic_problems(5, seed=3) == synthetic_problems(5, seed=3)
    assert synthetic_problems(5, seed=3) != synthetic_problems(5, seed=4)
    p = make_problem(3, 2)
    assert write_trace(p, 0) == write_trace(make_problem(3, 2), 0)
    samples = {write_trace(p, s) for s in range(6)}
    assert len(samples) >= 4  # another sample number gives another variant of the same solution
    for trace in samples:
        assert grade(trace, p.answer).correct


# ------------------------------------------------------------------------------------------ difficulties


def test_difficulties_run_from_one_step_to_the_word_problems() -> None:
    assert DIFFICULTIES == ("one-step", "two-step", "short-word", "word") and DEFAULT_DIFFICULTY == "word"
    assert re.fullmatch(r"What is \d [+-] \d\?", make_problem(0, 9, "one-step").text)
    with pytest.raises(Pr1Error, match="expected one of one-step, two-step, short-word, word"):
        make_problem(0, 0, "hard")


def test_the_default_difficulty_is_the_word_problems_as_before() -> None:
    # a digest of problems and traces written before there were difficulties (commit da22f0e)
    rows = [row for seed in (0, 1) for row in synthetic_problems(60, seed=seed)]
    traces = [write_trace(make_problem(r["seed"], r["index"]), s) for r in rows for s in (0, 1)]
    digest = hashlib.sha256(json.dumps([rows, traces], ensure_ascii=False).encode()).hexdigest()
    assert digest == "d6459d1704efdc66675ac798ba9e8594a132f87142b5a3426ec28d739b35f277"
    assert synthetic_problems(20, seed=4, difficulty="word") == synthetic_problems(20, seed=4)
    assert all("difficulty" not in row for row in rows)


@pytest.mark.parametrize("difficulty", EASY)
def test_easy_levels_give_valid_correct_traces(difficulty: str) -> None:
    for seed in range(5):
        rows = synthetic_problems(100, seed=seed, difficulty=difficulty)
        assert len({row["id"] for row in rows}) == 100 and len({row["problem"] for row in rows}) > 40
        for row in rows:
            assert row["difficulty"] == difficulty and row["id"].startswith(f"synthetic-{difficulty}-")
            problem = make_problem(seed, row["index"], difficulty)
            assert problem.text == row["problem"]
            for sample in (0, 1):
                trace = write_trace(problem, sample)
                assert validate(trace) == [], trace
                g = grade(trace, row["answer"])
                assert g.correct and g.answer_source == "final_answer", (trace, row["answer"], g)
                for block in re.findall(r"<Parallel>(.*?)</Parallel>", trace, re.S):
                    bodies = re.findall(r"<Path>(.*?)</Path>", block, re.S)
                    assert len(bodies) >= 2 and len(set(bodies)) == len(bodies)
    assert synthetic_problems(5, seed=3, difficulty=difficulty) != synthetic_problems(5, seed=3)


def _operations(problem: Problem) -> int:
    """Operations on the first route to each quantity (each family lists the plain computation first)."""
    return sum(len(re.findall(r" [+−×÷] ", " ".join(stage.routes[0].steps))) for stage in problem.stages)


def test_levels_differ_in_the_number_of_steps() -> None:
    ops = {d: [_operations(make_problem(0, i, d)) for i in range(200)] for d in DIFFICULTIES}
    assert set(ops["one-step"]) == {1}
    assert set(ops["two-step"]) == set(ops["short-word"]) == {2}
    assert min(ops["word"]) >= 2 and statistics.mean(ops["word"]) > 2.5
    for difficulty in ("one-step", "two-step"):  # on single digits
        texts = [make_problem(0, i, difficulty).text for i in range(200)]
        assert all(int(n) <= 9 for text in texts for n in re.findall(r"\d+", text))
    words = [len(make_problem(0, i, d).text.split()) for d in DIFFICULTIES for i in range(50)]
    assert statistics.mean(words[50:100]) < statistics.mean(words[100:150]) < statistics.mean(words[150:])
