"""`pr1 data generate | stats | build` through the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pr1.cli import app
from pr1.errors import Pr1Error
from pr1.format import validate
from pr1.grading import grade
from pr1.jsonl import read_jsonl
from pr1.prompts import PARALLEL_TEMPLATE, build_prompt

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def pr1(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `python -m pr1` as a user would (errors become one line on stderr)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "pr1", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_generate_stats_build_synthetic(tmp_path: Path) -> None:
    out = tmp_path / "syn.jsonl"
    res = runner.invoke(
        app,
        [
            "data",
            "generate",
            "--teacher",
            "synthetic",
            "--source",
            "synthetic",
            "--limit",
            "12",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert len(read_jsonl(out)) == 12 and read_jsonl(out.with_name("syn.rejected.jsonl")) == []

    res = runner.invoke(app, ["data", "stats", str(out), "--json"])
    assert res.exit_code == 0, res.output
    s = json.loads(res.output)
    assert (s["kept"], s["rejected"], s["attempted"], s["acceptance_rate"]) == (12, 0, 12, 1.0)
    assert sum(s["blocks_per_trace"].values()) == 12 and set(s["paths_per_block"]) <= {"2", "3"}
    assert 60 < s["trace_tokens"]["median"] < 300 and s["teachers"] == {"synthetic": 12}
    res = runner.invoke(app, ["data", "stats", str(out)])
    text = " ".join(res.output.split())
    assert res.exit_code == 0 and "kept 12 of 12 (100.0%)" in text and "paths per block" in text

    res = runner.invoke(app, ["data", "build", str(out), "--out", str(tmp_path / "ds")])
    assert res.exit_code == 0, res.output
    sft, rl = read_jsonl(tmp_path / "ds" / "sft.jsonl"), read_jsonl(tmp_path / "ds" / "rl.jsonl")
    kept = read_jsonl(out)
    assert [r["id"] for r in sft] == [r["id"] for r in rl] == [r["id"] for r in kept]
    for row, k, r in zip(sft, kept, rl, strict=True):
        assert set(row) == {"id", "sample", "prompt", "completion"}
        assert row["prompt"] == [{"role": "user", "content": build_prompt(k["problem"], PARALLEL_TEMPLATE)}]
        assert row["completion"] == [{"role": "assistant", "content": k["trace"]}]
        assert r == {"id": k["id"], "problem": k["problem"], "prompt": row["prompt"], "answer": k["answer"]}


def test_build_the_shared_sample(shared_data: Path, tmp_path: Path) -> None:
    sample = shared_data / "parallel_gsm8k_v2_partial.jsonl"
    sft_out, rl_out = tmp_path / "sft.jsonl", tmp_path / "rl.jsonl"
    res = runner.invoke(
        app,
        [
            "data",
            "build",
            str(sample),
            "--trace-key",
            "solution",
            "--sft-out",
            str(sft_out),
            "--rl-out",
            str(rl_out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "left out 1 rows that fail the check: format: unclosed at end: <Summary> (1)" in res.output
    sft, rl = read_jsonl(sft_out), read_jsonl(rl_out)
    assert len(sft) == len(rl) == 340 and "475" not in {r["id"] for r in sft}
    by_id = {str(r["id"]): r for r in read_jsonl(sample)}
    for row in sft:
        trace = row["completion"][0]["content"]
        assert trace == by_id[row["id"]]["solution"] and validate(trace) == []
        assert grade(trace, by_id[row["id"]]["answer"]).correct
    res = runner.invoke(
        app,
        ["data", "build", str(sample), "--trace-key", "solution", "--no-check", "--sft-out", str(sft_out)],
    )
    assert res.exit_code == 0 and len(read_jsonl(sft_out)) == 341
    # the stats command reads any trace file
    res = runner.invoke(app, ["data", "stats", str(sample), "--trace-key", "solution", "--json"])
    s = json.loads(res.output)
    assert s["blocks_per_trace"] == {"0": 3, "1": 261, "2": 59, "3": 12, "4": 6}  # METHOD.md §3
    assert s["paths_per_block"] == {"2": 427, "3": 11, "4": 1}


def test_build_bad_input_names_the_line(tmp_path: Path) -> None:
    good = {"id": "a", "problem": "1+1?", "answer": "2", "trace": "Final Answer: 2"}
    path = tmp_path / "in.jsonl"
    path.write_text(
        json.dumps(good) + "\n" + json.dumps({"id": "b", "problem": "2+2?", "answer": "4"}) + "\n"
    )
    sft_out = tmp_path / "sft.jsonl"
    sft_out.write_text("previous\n")
    with pytest.raises(Pr1Error, match=r"in.jsonl:2: missing key 'trace' \(choose it with --trace-key\)"):
        runner.invoke(app, ["data", "build", str(path), "--sft-out", str(sft_out)], catch_exceptions=False)
    assert sft_out.read_text() == "previous\n"  # nothing half-written
    path.write_text(json.dumps(good) + "\n{not json\n")
    res = pr1("data", "build", str(path), "--sft-out", str(sft_out))
    assert res.returncode == 2 and res.stderr.strip().splitlines() == [
        f"error: {path}:2: invalid JSON (Expecting property name enclosed in double quotes)"
    ]
    res = pr1("data", "build", str(path))
    assert res.returncode == 2 and "nothing to write" in res.stderr


def test_generate_errors_are_one_line(tmp_path: Path) -> None:
    res = pr1("data", "generate", "--teacher", "gpt-4o", "--out", str(tmp_path / "x.jsonl"), "--limit", "1")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1].startswith("error: --teacher 'gpt-4o': expected an http(s)://")
    assert "Traceback" not in res.stderr


def test_stats_and_build_find_the_shared_samples_trace_column(shared_data: Path, tmp_path: Path) -> None:
    sample = shared_data / "parallel_gsm8k_v2_partial.jsonl"
    res = runner.invoke(app, ["data", "stats", str(sample), "--json"])  # no --trace-key: it reads `solution`
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["kept"] == 341
    res = runner.invoke(app, ["data", "build", str(sample), "--sft-out", str(tmp_path / "s.jsonl")])
    assert res.exit_code == 0, res.output
    assert len(read_jsonl(tmp_path / "s.jsonl")) == 340  # id 475 ends inside <Summary>


def test_build_with_no_row_passing_names_the_reasons(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    rows = [{"id": i, "problem": "1+1?", "answer": "2", "trace": "Final Answer: 3"} for i in range(3)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(
        Pr1Error, match=r"none of its 3 rows passes the check \(most common: wrong answer \(3\)\)"
    ):
        runner.invoke(
            app, ["data", "build", str(path), "--sft-out", str(tmp_path / "s.jsonl")], catch_exceptions=False
        )
    assert not (tmp_path / "s.jsonl").exists()
