import json
import time

from typer.testing import CliRunner

from pr1.cli import app
from pr1.rewards import Schedule
from pr1.score import SCORE_KEYS, score_completion, score_file

runner = CliRunner()


def _write(tmp_path, rows, name="c.jsonl"):
    p = tmp_path / name
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p


def test_help_lists_commands():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0 and "score" in res.output


def test_json_rows_have_exactly_the_contract_keys(tmp_path):
    p = _write(
        tmp_path,
        [
            {
                "completion": "<Parallel><Path>a</Path><Path>b</Path></Parallel>\n<Summary>s</Summary>Final Answer: 7",
                "answer": "7",
            },
            {"completion": "\\boxed{8}", "answer": 7},
            {"completion": "<Path>x", "answer": "7"},
        ],
    )
    res = runner.invoke(app, ["score", str(p), "--json", "--reward", "tiered"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.output.splitlines()]
    assert [tuple(r) for r in rows] == [SCORE_KEYS] * 3
    assert rows[0] == {
        "correct": True,
        "pred": "7",
        "answer_source": "final_answer",
        "format_valid": True,
        "format_errors": [],
        "n_blocks": 1,
        "paths_per_block": [2],
        "parallel": True,
        "reward": 1.2,
    }
    assert rows[1]["answer_source"] == "boxed" and rows[1]["pred"] == "8" and rows[1]["reward"] == -1.0
    assert rows[2]["pred"] is None and rows[2]["answer_source"] is None and not rows[2]["format_valid"]


def test_step_selects_the_alternating_phase(tmp_path):
    p = _write(
        tmp_path,
        [
            {
                "completion": "<Parallel><Path>a</Path><Path>b</Path></Parallel>\n<Summary>s</Summary>Final Answer: 7",
                "answer": "7",
            }
        ],
    )
    r8 = runner.invoke(app, ["score", str(p), "--json", "--reward", "alternating", "--step", "8"])
    r9 = runner.invoke(app, ["score", str(p), "--json", "--reward", "alternating", "--step", "9"])
    assert json.loads(r8.output)["reward"] == 1.0 and json.loads(r9.output)["reward"] == 1.2


def test_summary_table(tmp_path):
    p = _write(
        tmp_path,
        [{"completion": "Final Answer: 1", "answer": 1}, {"completion": "Final Answer: 2", "answer": 1}],
    )
    res = runner.invoke(app, ["score", str(p)])
    assert res.exit_code == 0 and "50.0%" in res.output


def test_custom_keys(tmp_path):
    p = _write(tmp_path, [{"text": "Final Answer: 3", "gold": "3"}])
    res = runner.invoke(app, ["score", str(p), "--json", "--completion-key", "text", "--answer-key", "gold"])
    assert json.loads(res.output)["correct"] is True


def _cli(*args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "pr1", *args], capture_output=True, text=True)


def test_malformed_line_is_a_one_line_error_naming_the_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"completion": "Final Answer: 1", "answer": 1}\n{not json\n')
    res = _cli("score", str(p))
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        f"error: {p}:2: invalid JSON (Expecting property name enclosed in double quotes)"
    ]
    assert "Traceback" not in res.stderr


def test_missing_key_names_the_line_and_skip_bad_continues(tmp_path):
    p = _write(
        tmp_path,
        [
            {"completion": "Final Answer: 1", "answer": 1},
            {"completion": "Final Answer: 1"},
            {"completion": "Final Answer: 2", "answer": 2},
        ],
    )
    res = runner.invoke(app, ["score", str(p), "--json"])
    assert res.exit_code != 0 and f"{p}:2: missing key(s) 'answer'" in str(res.exception)
    res = runner.invoke(app, ["score", str(p), "--json", "--skip-bad"])
    assert res.exit_code == 0 and len(res.output.splitlines()) == 2


def test_bad_flags_and_missing_file(tmp_path):
    res = _cli("score", str(tmp_path / "nope.jsonl"))
    assert res.returncode == 2 and "no such file" in res.stderr
    p = _write(tmp_path, [{"completion": "x", "answer": 1}])
    res = _cli("score", str(p), "--reward", "bogus")
    assert res.returncode == 2 and "--reward 'bogus'" in res.stderr


def test_parallel_sample_validates_and_grades(shared_data):
    res = runner.invoke(
        app,
        [
            "score",
            str(shared_data / "parallel_gsm8k_v2_partial.jsonl"),
            "--completion-key",
            "solution",
            "--json",
        ],
    )
    rows = [json.loads(line) for line in res.output.splitlines()]
    assert len(rows) == 341
    assert all(r["correct"] for r in rows)
    assert sum(r["format_valid"] for r in rows) == 340
    assert sum(r["parallel"] for r in rows) == 338


def test_score_completion_default_reward_is_accuracy():
    assert score_completion("Final Answer: 2", "3")["reward"] == -1.0


def test_score_completion_follows_the_schedules_format_rules(shared_data):
    text = "<Parallel><Path>a</Path><Path>b</Path></Parallel>\n<Summary>so 6\nFinal Answer: 6"
    strict = score_completion(text, "6", Schedule("tiered"))
    lenient = score_completion(text, "6", Schedule("tiered", format_rules="reference"))
    assert (strict["format_valid"], strict["format_errors"], strict["reward"]) == (
        False,
        ["unclosed at end: <Summary>"],
        -1.0,
    )
    assert (lenient["format_valid"], lenient["format_errors"], lenient["reward"]) == (True, [], 1.2)
    # the cold-start sample: 340 valid traces under pr1's rules, all 341 under the reference's
    rows = list(
        score_file(
            shared_data / "parallel_gsm8k_v2_partial.jsonl",
            schedule=Schedule(format_rules="reference"),
            completion_key="solution",
        )
    )
    assert len(rows) == 341 and all(r["format_valid"] for _, r in rows)


def test_score_reads_a_run_folder(tmp_path):
    from pr1.runs import Run

    run = Run.create(tmp_path / "run", "eval", {})
    run.log_rollouts(0, [{"completion": "Final Answer: 4", "answer": "4"}])
    run.finish()
    res = runner.invoke(app, ["score", str(tmp_path / "run"), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["correct"] is True


def test_unbounded_answers_are_graded_in_bounded_time(tmp_path, capsys, monkeypatch):
    # a gold or predicted `9^{9^{9}}` (a 370-million-digit power) or a 200,000-digit integer: each row is
    # graded within the timeout (here 1 s), as incorrect with its reason, and the command goes on
    from pr1 import grading
    from pr1.cli import run

    monkeypatch.setattr(grading, "DEFAULT_TIMEOUT", 1.0)
    huge = "1" * 200_000
    p = _write(
        tmp_path,
        [
            {"completion": "Final Answer: $9^{9^{9}}$", "answer": "5"},
            {"completion": "Final Answer: 5", "answer": "$9^{9^{9}}$"},
            {"completion": f"Final Answer: {huge}", "answer": "5"},
            {"completion": f"Final Answer: {huge}", "answer": huge},
            {"completion": "Final Answer: 5", "answer": 5},
        ],
    )
    start = time.monotonic()
    assert run(["score", str(p), "--json"]) == 0
    assert time.monotonic() - start < 20
    assert [json.loads(line)["correct"] for line in capsys.readouterr().out.splitlines()] == [
        False,
        False,
        False,
        True,
        True,
    ]
