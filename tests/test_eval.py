"""Eval metrics and `pr1 eval`: output folder, `pr1 score` on it, resume."""

from __future__ import annotations

import json
import math
from itertools import combinations

import pytest
from typer.testing import CliRunner

from pr1.cli import app
from pr1.errors import Pr1Error
from pr1.eval.metrics import accuracy_difference, bench_metrics, majority_correct, pass_at_k, pass_ks
from pr1.score import SCORE_KEYS

runner = CliRunner()


def brute_pass_at_k(n: int, c: int, k: int) -> float:
    subsets = list(combinations([True] * c + [False] * (n - c), k))
    return sum(any(s) for s in subsets) / len(subsets)


@pytest.mark.parametrize(("n", "c", "k"), [(2, 1, 1), (5, 2, 2), (8, 3, 4), (6, 0, 3), (6, 6, 1), (7, 5, 3)])
def test_pass_at_k_is_the_unbiased_estimator(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(n, c, k))
    assert pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k))


def test_pass_ks():
    assert pass_ks(16) == [1, 2, 4, 8, 16]
    assert pass_ks(10) == [1, 2, 4, 8, 10]
    assert pass_ks(1) == [1]
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 5)


def test_majority_vote_groups_equivalent_answers():
    assert majority_correct(["18", "18.0", "20", None], [True, True, False, False])
    # a tie: the group seen first wins
    assert not majority_correct(["20", "18", "$20", "18"], [False, True, False, True])
    assert majority_correct(["1,080", "1080", "7"], [True, True, False])
    assert not majority_correct([None, None], [False, False])


def row(pid, sample, correct, pred, blocks=(), tokens=10, critical=10, truncated=False, positions=()):
    return {
        "id": pid,
        "sample": sample,
        "correct": correct,
        "pred": pred,
        "format_valid": True,
        "n_blocks": len(blocks),
        "paths_per_block": list(blocks),
        "parallel": bool(blocks),
        "tokens": tokens,
        "critical_path_tokens": critical,
        "truncated": truncated,
        "parallel_positions": list(positions),
    }


def test_accuracy_difference_is_paired_by_problem():
    def rows(correct_by_problem):
        return [{"id": i, "correct": c} for i, cs in correct_by_problem.items() for c in cs]

    before = rows({"a": [1, 0, 0, 0], "b": [0, 0], "c": [1, 1], "gone": [1]})
    after = rows({"a": [1, 1, 0, 0], "b": [1, 0], "c": [1, 1], "new": [0]})
    d = accuracy_difference(before, after)
    assert d["problems"] == 3 and d["difference"] == pytest.approx(0.25)  # per problem: +1/4, +1/2, 0
    sd = math.sqrt(sum((x - 0.25) ** 2 for x in (0.25, 0.5, 0.0)) / 2)
    assert d["stderr"] == pytest.approx(sd / math.sqrt(3))
    assert (d["low"], d["high"]) == (
        pytest.approx(0.25 - 1.96 * d["stderr"]),
        pytest.approx(0.25 + 1.96 * d["stderr"]),
    )
    # the same shift on every problem: no noise in the difference, however spread the problems are
    same = accuracy_difference(rows({"a": [0, 0], "b": [1, 0]}), rows({"a": [1, 0], "b": [1, 1]}))
    assert same["difference"] == 0.5 and same["stderr"] == 0 and same["low"] == same["high"] == 0.5
    assert accuracy_difference(before, [])["difference"] is None


def test_bench_metrics():
    rows = [
        row("a", 0, True, "1", blocks=[2], tokens=20, critical=14, positions=[0.25]),
        row("a", 1, False, "2"),
        row("a", 2, True, "1"),
        row("a", 3, False, None, truncated=True),
        row("b", 0, False, "5", blocks=[2, 3], tokens=30, critical=20, positions=[0.5, 0.75]),
        row("b", 1, False, "5"),
        row("b", 2, False, "6"),
        row("b", 3, False, "6"),
    ]
    m = bench_metrics(rows)
    assert m["problems"] == 2 and m["samples"] == 4 and m["rows"] == 8
    assert m["mean_at_k"] == pytest.approx(0.25)
    assert m["pass_at_k"] == {"1": pytest.approx(0.25), "2": pytest.approx((1 - 1 / 6) / 2), "4": 0.5}
    assert m["maj_at_k"] == 0.5
    assert m["parallel_ratio"] == 0.25 and m["blocks_mean"] == pytest.approx(3 / 8)
    assert m["paths_per_block_mean"] == pytest.approx(7 / 3)
    assert m["parallel_position_mean"] == pytest.approx(0.5)
    assert m["response_tokens_mean"] == pytest.approx(110 / 8)
    assert m["critical_path_tokens_mean"] == pytest.approx(94 / 8)
    assert m["truncated_rate"] == 0.125 and m["no_answer_rate"] == 0.125


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, tiny):
    from pr1.models import save_model

    path = tmp_path_factory.mktemp("tiny-model")
    save_model(*tiny, path)
    return path


def eval_args(model, out, *extra):
    return ["eval", "gsm8k", "--model", str(model), "--max-tokens", "8", "--out", str(out), *extra]


def read_rows(out):
    return [json.loads(line) for line in (out / "rollouts.jsonl").read_text().splitlines()]


@pytest.fixture
def generate_calls(monkeypatch):
    """Records the prompts each `RolloutEngine.generate` call gets."""
    from pr1.rollout import RolloutEngine

    calls = []
    original = RolloutEngine.generate

    def spy(self, prompts, n=1, **kw):
        calls.append((len(prompts), n))
        return original(self, prompts, n, **kw)

    monkeypatch.setattr(RolloutEngine, "generate", spy)
    return calls


def test_eval_resumes_and_skips_finished_problems(shared_data, tiny_dir, tmp_path, generate_calls):
    out = tmp_path / "ev"
    res = runner.invoke(app, eval_args(tiny_dir, out, "--limit", "2", "--samples", "2"))
    assert res.exit_code == 0, res.output
    assert generate_calls == [(2, 2)]
    first = read_rows(out)
    assert [(r["id"], r["sample"]) for r in first] == [
        ("test-0", 0),
        ("test-0", 1),
        ("test-1", 0),
        ("test-1", 1),
    ]

    res = runner.invoke(app, eval_args(tiny_dir, out, "--limit", "3", "--samples", "2"))
    assert res.exit_code == 0, res.output
    assert generate_calls[-1] == (1, 2)  # only the new problem
    rows = read_rows(out)
    assert rows[:4] == first and len(rows) == 6

    # an interrupted run that wrote only part of a problem: that problem is sampled again, the missing
    # sample written, nothing duplicated; the seeded samples come out the same
    (out / "rollouts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:5]))
    res = runner.invoke(app, eval_args(tiny_dir, out, "--limit", "3", "--samples", "2"))
    assert res.exit_code == 0, res.output
    assert generate_calls[-1] == (1, 2)
    again = read_rows(out)
    assert again[:5] == rows[:5] and again[5]["completion"] == rows[5]["completion"]

    runner.invoke(app, eval_args(tiny_dir, out, "--limit", "3", "--samples", "2"))
    assert len(generate_calls) == 3  # nothing left to do
    summary = json.loads((out / "summary.json").read_text())["benchmarks"]["gsm8k"]
    assert summary["problems"] == 3 and summary["rows"] == 6
    info = json.loads((out / "run.json").read_text())
    assert info["kind"] == "eval" and info["status"] == "finished" and len(info["resumed_at"]) == 3

    with pytest.raises(Pr1Error, match="other settings"):
        runner.invoke(app, eval_args(tiny_dir, out, "--temperature", "0.5"), catch_exceptions=False)


def test_eval_rejects_bad_options(shared_data, tiny_dir, tmp_path):
    for extra, message in (
        (["--samples", "0"], "--samples"),
        (["--mode", "weird"], "mode"),
    ):
        with pytest.raises(Pr1Error, match=message):
            runner.invoke(app, eval_args(tiny_dir, tmp_path / "x", *extra), catch_exceptions=False)
    with pytest.raises(Pr1Error, match="unknown dataset"):
        runner.invoke(app, ["eval", "nope", "--model", str(tiny_dir)], catch_exceptions=False)
    assert not (tmp_path / "x").exists()  # nothing written for a bad command


@pytest.mark.slow
def test_eval_embedded_model_on_gsm8k(shared_data, tmp_path):
    out = tmp_path / "ev"
    args = [
        "eval",
        "gsm8k",
        "--model",
        "smollm2-135m",
        "--limit",
        "8",
        "--samples",
        "2",
        "--max-tokens",
        "64",
    ]
    res = runner.invoke(app, [*args, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "mean@k" in res.output and "tokens / s" in res.output
    rows = read_rows(out)
    assert len(rows) == 16 and {r["sample"] for r in rows} == {0, 1} and len({r["id"] for r in rows}) == 8
    for r in rows:
        assert set(SCORE_KEYS) <= set(r)
        assert r["step"] == 0 and r["bench"] == "gsm8k" and isinstance(r["completion"], str)
        assert 0 < r["critical_path_tokens"] <= r["tokens"] <= 64
    summary = json.loads((out / "summary.json").read_text())["benchmarks"]["gsm8k"]
    assert summary["problems"] == 8 and set(summary["pass_at_k"]) == {"1", "2"}
    assert summary["tokens_per_s"] > 0
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert metrics[0]["bench"] == "gsm8k" and "accuracy" in metrics[0]

    scored = runner.invoke(app, ["score", str(out / "rollouts.jsonl"), "--json"])
    assert scored.exit_code == 0, scored.output
    records = [json.loads(line) for line in scored.output.splitlines()]
    assert [r["correct"] for r in records] == [r["correct"] for r in rows]


def test_pickle_weights_are_refused_and_never_loaded(tiny_dir, tmp_path):
    """An adapter folder holding only `adapter_model.bin` (peft would torch.load it): one line, and the pickle is
    not opened (this one would write a file if it were unpickled)."""
    import pickle

    class Payload:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(
        '{"peft_type": "LORA", "r": 2, "target_modules": ["q_proj"]}'
    )
    (adapter / "adapter_model.bin").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(Pr1Error, match=r"adapter: holds pickle-format weights \(adapter_model.bin\)"):
        runner.invoke(
            app, eval_args(tiny_dir, tmp_path / "out", "--adapter", str(adapter)), catch_exceptions=False
        )
    from pr1.rl.backends import load_policy
    from pr1.rl.config import RLConfig
    from pr1.runs import Run

    run = Run.create(tmp_path / "sft", "sft", {"model": str(tiny_dir)})
    run.finish()
    (tmp_path / "sft" / "final").symlink_to(adapter)
    with pytest.raises(Pr1Error, match="holds pickle-format weights"):
        load_policy(RLConfig(model=str(tmp_path / "sft")), "hf")
    assert not (tmp_path / "pwned").exists()


def test_mean_at_k_comes_with_its_standard_error_over_problems():
    def row(pid, correct):
        return {"id": pid, "correct": correct, "pred": "1", "parallel": False, "format_valid": True, "n_blocks": 0,
                "paths_per_block": [], "reward": 1.0 if correct else -1.0}  # fmt: skip

    m = bench_metrics([row("a", True), row("a", True), row("b", False), row("b", True)])
    assert m["mean_at_k"] == 0.75 and m["mean_at_k_stderr"] == pytest.approx(0.25)  # sd 0.354 / sqrt(2)
    assert bench_metrics([row("a", True)])["mean_at_k_stderr"] is None


def test_library_noise_stays_off_the_console_and_in_the_run_log(tiny_dir, tmp_path):
    import subprocess
    import sys

    problems = tmp_path / "p.jsonl"
    problems.write_text('{"id": "a", "problem": "x?", "answer": "\\\\frac{\\\\sqrt{2}}{2}"}\n')
    out = tmp_path / "run"
    args = [
        "eval",
        str(problems),
        "--model",
        str(tiny_dir),
        "--samples",
        "1",
        "--max-tokens",
        "4",
        "--out",
        str(out),
    ]
    res = subprocess.run([sys.executable, "-m", "pr1", *args], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "Loading weights" not in res.stderr and "Timeout is disabled" not in res.stderr
    assert "Warning" not in res.stderr and (out / "pr1.log").is_file()
    assert "mean@k" in res.stdout  # pr1's own output stays


def test_eval_refuses_rows_made_from_another_file_of_the_same_name(tiny_dir, tmp_path):
    from pr1.runs import read_run_info

    def problems(folder, words):
        folder.mkdir()
        path = folder / "probs.jsonl"
        rows = [{"id": f"p{i}", "problem": f"What is {i} {w} 1?", "answer": "1"} for i, w in enumerate(words)]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return str(path)

    first, other = problems(tmp_path / "a", ["plus", "times"]), problems(tmp_path / "b", ["minus", "times"])
    out = tmp_path / "ev"
    args = ["--model", str(tiny_dir), "--max-tokens", "4", "--out", str(out)]
    assert runner.invoke(app, ["eval", first, *args]).exit_code == 0
    rows = (out / "rollouts.jsonl").read_text()
    with pytest.raises(Pr1Error, match=r"its 'probs' rows were made from other problems \(id 'p0' differs"):
        runner.invoke(app, ["eval", other, *args], catch_exceptions=False)
    assert (out / "rollouts.jsonl").read_text() == rows and read_run_info(out)["status"] == "finished"
