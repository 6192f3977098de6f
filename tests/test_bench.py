"""`pr1 bench`: settings and errors, the tables, reuse of finished benchmarks, and a real quick run on CPU."""

from __future__ import annotations

import json
import os
import signal
import tempfile
import time
from pathlib import Path

import pytest
from orphans import outlives_its_killed_parent
from typer.testing import CliRunner

from pr1.bench import sft as bench_sft
from pr1.bench import suite
from pr1.bench.common import run_child, unavailable
from pr1.bench.config import BenchConfig
from pr1.bench.report import Report
from pr1.bench.suite import run_bench
from pr1.cli import app
from pr1.errors import Pr1Error

runner = CliRunner()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (dict(names=("rollout", "speed")), "unknown benchmark 'speed'"),
        (dict(backends=("vllm",)), "unknown backend 'vllm'"),
        (dict(names=("sft",), overrides={"paths": "2"}), "--set paths: not a setting of sft"),
        (dict(overrides={"paths": "2,x"}), "--set paths=2,x: expected comma-separated whole numbers"),
        (dict(overrides={"gaps": "yes"}), "--set gaps=yes: expected true or false"),
        (dict(overrides={"steps": "1.5"}), "--set steps=1.5: expected a whole number"),
    ],
)
def test_bad_settings_are_one_line_errors(config, message):
    with pytest.raises(Pr1Error, match=message.replace("(", r"\(")):
        suite.check_overrides(BenchConfig(**config))


def test_set_applies_to_every_benchmark_that_has_the_setting():
    config = BenchConfig(quick=True, overrides={"max_tokens": "48", "paths": "2,4", "gaps": "true"})
    suite.check_overrides(config)
    settings = {name: suite.bench_settings(config, name) for name in ("rollout", "grpo", "structured", "sft")}
    assert settings["rollout"]["max_tokens"] == 48
    assert settings["grpo"]["max_tokens"] == 48
    assert settings["structured"]["paths"] == (2, 4) and settings["structured"]["gaps"] is True
    assert "max_tokens" not in settings["sft"]


def test_cli_rejects_a_set_without_a_value(tmp_path):
    res = runner.invoke(app, ["bench", "--set", "paths", "--out", str(tmp_path)])
    assert res.exit_code != 0 and "expected KEY=VALUE" in str(res.exception or res.output)


def test_report_markdown_has_the_table_and_notes():
    report = Report("sft", "SFT", ["backend", "tokens/s"], [["hf", "80.9"]], ["a note"], {"paths": [2, 4]})
    text = report.markdown("**measured**")
    assert text.splitlines()[:3] == ["### SFT", "", "**measured**"]
    assert "Settings: paths=2,4" in text
    assert "| backend | tokens/s |\n|---|---|\n| hf | 80.9 |" in text
    assert text.rstrip().endswith("- a note")


def test_unavailable_backends_and_child_errors():
    import torch

    assert unavailable("hf") is None
    if not torch.cuda.is_available():
        assert unavailable("unsloth") == "needs a CUDA GPU"
    assert run_child(["-c", "print('ok')"]) is None
    assert run_child(["-c", "import sys; print('first'); sys.exit('the reason')"]) == "the reason"


def test_finished_benchmarks_are_reused_failed_ones_measured_again(tmp_path, monkeypatch):
    calls = []

    def fake_backend(backend, model, out, settings):
        calls.append(backend)
        if len(calls) == 1:
            return {"backend": backend, "error": "out of memory"}
        return {"backend": backend, "quant": "none", "tokens_per_s": 100.0, "peak_memory_gb": 1.5, "steps": 2,
                "loss_first": 2.0, "loss_last": 1.0}  # fmt: skip

    monkeypatch.setattr(bench_sft, "run_backend", fake_backend)
    monkeypatch.setattr(suite, "saved_bench_model", lambda name, folder: name)
    config = BenchConfig(names=("sft",), backends=("hf",), quick=True)
    (first,) = run_bench(config, tmp_path, log=lambda line: None)
    assert first.failed and "failed: out of memory" in first.rows[0][-1]
    (second,) = run_bench(config, tmp_path, log=lambda line: None)
    assert not second.failed and second.rows[0][2] == "100.0"
    lines = []
    (third,) = run_bench(config, tmp_path, log=lines.append)
    assert calls == ["hf", "hf"] and "reused" in lines[0] and third.rows == second.rows
    other = BenchConfig(names=("sft",), backends=("hf",), quick=True, overrides={"steps": "3"})
    run_bench(other, tmp_path, log=lambda line: None)
    assert calls == ["hf", "hf", "hf"]  # other settings: measured again
    rows = [json.loads(line) for line in (tmp_path / "bench.jsonl").read_text().splitlines()]
    assert [r["failed"] for r in rows] == [True, False, False]
    assert rows[-1]["command"] == f"pr1 bench sft --out {tmp_path} --backends hf --set steps=3 --quick"
    assert (tmp_path / "BENCH.md").read_text().count("### SFT") == 1


def test_a_bench_file_with_torn_or_foreign_lines_is_measured_again(tmp_path, monkeypatch):
    measured = {"backend": "hf", "quant": "none", "tokens_per_s": 1.0, "peak_memory_gb": 1.0, "steps": 1,
                "loss_first": 1.0, "loss_last": 1.0}  # fmt: skip
    monkeypatch.setattr(bench_sft, "run_backend", lambda backend, model, out, settings: measured)
    monkeypatch.setattr(suite, "saved_bench_model", lambda name, folder: name)
    (tmp_path / "bench.jsonl").write_text('{"name": "sft", "failed": false}\nnot json\n{"name": "sf')
    (report,) = run_bench(
        BenchConfig(names=("sft",), backends=("hf",), quick=True), tmp_path, log=lambda line: None
    )
    assert not report.failed and report.rows[0][2] == "1.0"


def test_a_child_dies_with_its_parent():
    # the parent starts a child the way run_child does (child_env; the child is `python -m pr1 ...`, whose
    # main calls follow_parent)
    child = "from pr1.processes import follow_parent; import time; follow_parent(); print('up', flush=True); time.sleep(60)"
    code = (
        "import subprocess, sys, time; from pr1.processes import child_env\n"
        f"p = subprocess.Popen([sys.executable, '-c', {child!r}], env=child_env(), stdout=subprocess.PIPE, text=True)\n"
        "p.stdout.readline(); print(p.pid, flush=True); time.sleep(60)"
    )
    assert not outlives_its_killed_parent(code)


def test_bench_refuses_a_run_folder_of_another_job(tmp_path):
    from pr1.runs import Run

    Run.create(tmp_path / "r", "sft", {}).finish()
    with pytest.raises(Pr1Error, match=r"--out .*/r: holds a 'sft' run, not benchmarks"):
        run_bench(BenchConfig(names=("sft",), quick=True), tmp_path / "r", log=lambda line: None)
    assert not (tmp_path / "r" / "bench.jsonl").exists()


def test_sigterm_removes_the_temporary_folder(tmp_path, monkeypatch, capsys):
    from pr1.cli import run

    seen = []

    def killed(model, workdir, settings, backends, log):
        seen.append(Path(workdir))
        (Path(workdir) / "big.safetensors").write_bytes(b"0" * 1000)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        raise AssertionError("SIGTERM did not interrupt")

    monkeypatch.setattr(suite, "saved_bench_model", lambda name, folder: name)
    monkeypatch.setattr(bench_sft, "sft_report", killed)
    out = tmp_path / "b"
    assert run(["bench", "sft", "--quick", "--out", str(out), "--backends", "hf"]) == 143
    assert seen and not seen[0].exists()  # the `with TemporaryDirectory` block was left by the exception
    assert not (out / "writer.lock").exists()


def test_a_temporary_folder_left_by_a_killed_bench_is_removed_by_the_next(tmp_path, monkeypatch):
    from pr1.files import WriterLock
    from pr1.runs import LOCK_FILE

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    abandoned, live, other = (tmp_path / f"{suite.WORKDIR_PREFIX}{n}" for n in ("a", "b", "c"))
    for folder in (abandoned, live, other):
        folder.mkdir()
    (abandoned / LOCK_FILE).write_text('{"pid": 1}')  # its process was killed: nobody holds it
    with WriterLock.acquire(live / LOCK_FILE, str(live)):  # a bench that is running
        suite._remove_abandoned_workdirs()
    assert not abandoned.exists() and live.exists() and other.exists()  # `other`: no lock, not known


@pytest.mark.slow
def test_quick_bench_on_cpu_writes_every_table(tmp_path):
    out = tmp_path / "bench"
    # all but `engines`, whose report tests/test_vllm_engine.py runs on its shared vLLM (no second start-up)
    names = ["rollout", "structured", "sft", "grpo"]
    res = runner.invoke(app, ["bench", *names, "--quick", "--out", str(out), "--backends", "hf"])
    assert res.exit_code == 0, res.output
    rows = {
        json.loads(line)["name"]: json.loads(line) for line in (out / "bench.jsonl").read_text().splitlines()
    }
    assert list(rows) == names
    rollout = rows["rollout"]["figures"]
    assert rollout["results"]["fork"]["tokens"] > 0 and rollout["fork_vs_generate"] > 0
    assert rows["structured"]["figures"]["paths_2"]["speedup"] > 0
    (sft,) = rows["sft"]["figures"]["results"]
    assert sft["tokens_per_s"] > 0 and sft["peak_memory_gb"] > 0 and sft["steps"] == 2
    (grpo,) = rows["grpo"]["figures"]["results"]
    assert grpo["step_time_s"] > 0 and 0 < grpo["rollout_share"] < 1
    assert (
        0 < grpo["response_tokens_mean"] <= 24
    )  # the forced shape: max_tokens, runtime-inserted tags included
    tables = (out / "BENCH.md").read_text()
    assert tables.count("load average") == 4 and all(len(r["load_average"]) == 2 for r in rows.values())
    assert any(n.endswith((": met", ": MISSED")) for n in rows["rollout"]["notes"])  # targets marked
    command = f"`pr1 bench rollout structured sft grpo --out {out} --backends hf --quick`"
    assert tables.count("\n### ") == 4 and tables.count(command) == 4


@pytest.mark.gpu
def test_bench_on_cuda_compares_the_backends(tmp_path):
    from pr1.backends import unsloth_available

    args = ["bench", "rollout", "sft", "grpo", "--quick", "--model", "qwen3-0.6b", "--out", str(tmp_path)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    rows = {
        json.loads(line)["name"]: json.loads(line)
        for line in (tmp_path / "bench.jsonl").read_text().splitlines()
    }
    assert rows["rollout"]["figures"]["results"]["fork"]["peak_memory_gb"] > 0
    sft = {r["backend"]: r for r in rows["sft"]["figures"]["results"]}
    assert sft["hf"]["quant"] == "4bit" and sft["hf"]["tokens_per_s"] > 0, sft
    if unsloth_available():
        assert sft["unsloth"]["tokens_per_s"] > 0, sft
        assert set(rows["sft"]["figures"]["unsloth_vs_hf"]) == {"tokens_per_s", "peak_memory_gb"}
        assert set(rows["grpo"]["figures"]["unsloth_vs_hf"]) == {"step_time_s", "peak_memory_gb"}


def test_targets_are_marked_met_or_missed():
    from pr1.bench.report import target

    assert target("fork vs generate", 1.06, 0.9).endswith("1.06x (target: at least 0.9x): met")
    assert target("batching", 3.2, 4).endswith(": MISSED")
