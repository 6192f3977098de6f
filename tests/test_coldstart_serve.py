"""`pr1 data generate` against a real OpenAI-compatible server: `transformers serve` with the embedded model,
offline, on 127.0.0.1. The 135M model's traces are nearly always rejected; this checks the pipeline, the
reasons and the accounting, not the acceptance rate."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pr1.cli import app
from pr1.coldstart.generate import check_trace
from pr1.errors import Pr1Error
from pr1.jsonl import read_jsonl

REPO = Path(__file__).resolve().parents[1]
KEY = "sk-test-never-logged"
runner = CliRunner()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, model name) of a `transformers serve` process pinned to the embedded model."""
    pytest.importorskip("fastapi", reason="transformers serve needs transformers[serving]")
    pytest.importorskip("uvicorn", reason="transformers serve needs transformers[serving]")
    from pr1.models import resolve_model_path

    model = resolve_model_path("smollm2-135m")  # the cached safetensors folder
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    cmd = [sys.executable, "-m", "transformers.cli.transformers", "serve", model]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--device", "cpu", "--dtype", "float32"]
    with log.open("w") as out:
        # one intra-op thread per request: on a busy 2-core machine, spinning thread pools slow it down 3x
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"transformers serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"transformers serve not ready after 120 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1", model
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _pr1(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENAI_API_KEY": KEY}
    return subprocess.run(
        [sys.executable, "-m", "pr1", *args], capture_output=True, text=True, env=env, timeout=400
    )


@pytest.mark.slow
def test_generate_against_transformers_serve(
    served: tuple[str, str], shared_data: Path, tmp_path: Path
) -> None:
    url, model = served
    out = tmp_path / "gsm.jsonl"
    args = ["data", "generate", "--teacher", url, "--teacher-model", model, "--source", "gsm8k-train"]
    args += ["--limit", "3", "--max-tokens", "32", "--concurrency", "2", "--out", str(out)]
    res = _pr1(*args)
    assert res.returncode == 0, res.stderr
    kept, rejected = read_jsonl(out), read_jsonl(out.with_name("gsm.rejected.jsonl"))
    assert len(kept) + len(rejected) == 3
    assert sorted(r["id"] for r in kept + rejected) == ["train-0", "train-1", "train-2"]
    for row in kept + rejected:
        assert row["teacher"] == f"{model} @ {url}" and row["sample"] == 0
        assert isinstance(row["trace"], str) and row["trace"].strip()  # the server answered every request
        assert 0 < row["trace_tokens"] <= 32 + 6 and row["prompt_tokens"] > 100
    truncated = "truncated: the teacher hit --max-tokens"
    for row in rejected:  # the reasons are exactly the filter's verdict on the stored trace
        n_tokens = row["prompt_tokens"] + row["trace_tokens"]
        assert [r for r in row["reasons"] if r != truncated] == check_trace(
            row["trace"], row["answer"], n_tokens=n_tokens
        )
    for path in (out, out.with_name("gsm.rejected.jsonl")):
        assert KEY not in path.read_text()
    assert KEY not in res.stdout + res.stderr

    res = runner.invoke(app, ["data", "stats", str(out), "--json"])
    assert res.exit_code == 0, res.output
    s = json.loads(res.output)
    assert (s["kept"], s["rejected"], s["attempted"]) == (len(kept), len(rejected), 3)
    assert s["acceptance_rate"] == len(kept) / 3
    assert sum(s["reasons"].values()) == sum(len(r["reasons"]) for r in rejected)

    # a rerun has nothing left to do; a model the server does not serve stops with the server's message
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and "3 of 3 already done, 0 to go" in res.output
    bad = ["data", "generate", "--teacher", url, "--teacher-model", "no-such-model", "--limit", "1"]
    with pytest.raises(Pr1Error) as err:
        runner.invoke(app, [*bad, "--out", str(tmp_path / "b.jsonl")], catch_exceptions=False)
    assert str(err.value).startswith(f"teacher {url} answered HTTP 400: ") and "no-such-model" in str(
        err.value
    )
