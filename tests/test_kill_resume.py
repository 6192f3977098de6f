"""Crash safety, proved: `pr1 data generate`, `pr1 sft`, `pr1 rl` and `pr1 eval` on tiny runs are killed with
SIGKILL at a random point after they started writing, then resumed. Every time: no finished row lost, none
twice, metrics steps strictly increasing, the folder readable by the dashboard while killed; and where the
docs promise exactness (sft and rl resume, seeded eval, the synthetic teacher) the results equal an
uninterrupted run's."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from sft_tiny import model_dir, write_problems, write_sft_rows

pytestmark = pytest.mark.slow

TIMEOUT = 240  # seconds a tiny job may take on a loaded 2-core machine


def pr1(*args: str | Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "pr1", *map(str, args)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def finish(args: list, expect: int = 0) -> None:
    proc = pr1(*args)
    _, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == expect, err.decode()[-2000:]


def kill_after(args: list, ready, rng: random.Random) -> None:
    """Start the command, wait until `ready()` (it has written something worth losing), wait a random moment
    more, SIGKILL it. (If it finishes first, the resume below has nothing to do: still a valid case.)"""
    proc = pr1(*args)
    deadline = time.monotonic() + TIMEOUT
    while proc.poll() is None and not ready() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(rng.uniform(0, 1.5))
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def lines(path: Path) -> list[dict]:
    """The complete rows of a JSON Lines file (a torn last line, if any, is what a reader skips too)."""
    if not path.is_file():
        return []
    out = []
    for raw in path.read_bytes().split(b"\n"):
        try:
            out.append(json.loads(raw))
        except ValueError:
            continue
    return out


def assert_watchable(run: Path) -> None:
    from pr1.tui.run_state import RunState

    RunState(run).poll()  # the dashboard's reader: must not raise on a killed run's folder


def assert_steps_increase(run: Path) -> None:
    steps = [r["step"] for r in lines(run / "metrics.jsonl")]
    assert steps == sorted(set(steps)), steps


def lora_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "final" / "adapter_model.safetensors")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("kill")
    sft_settings = root / "sft.toml"
    sft_settings.write_text(
        "lora_r = 4\nbatch = 2\nmicro_batch = 1\nmax_length = 256\nmax_steps = 4\nlr = 0.01\nwarmup_ratio = 0.0\n"
        'save_every = 1\nformat_check = 0\ngradient_checkpointing = false\nbackend = "hf"\n'
    )
    rl_settings = root / "rl.toml"
    rl_settings.write_text(
        'batch = 1\nsamples = 2\nsteps = 4\nmax_tokens = 16\nlora_r = 4\nsave_every = 1\nbackend = "hf"\n'
        "log_rollouts = 2\n"
    )
    return {
        "root": root,
        "model": model_dir(root, "llama"),
        "sft_data": write_sft_rows(root / "sft.jsonl", n=16),
        "problems": write_problems(root / "problems.jsonl", n=6),
        "sft_settings": sft_settings,
        "rl_settings": rl_settings,
    }


@pytest.mark.parametrize("seed", [0])
def test_sft_killed_and_resumed_ends_with_the_uninterrupted_weights(tiny, tmp_path, seed):
    rng = random.Random(seed)
    base = ["sft", "--model", tiny["model"], "--data", tiny["sft_data"], "--config", tiny["sft_settings"]]
    finish([*base, "--out", tmp_path / "whole"])
    run = tmp_path / "killed"
    kill_after([*base, "--out", run], lambda: len(lines(run / "metrics.jsonl")) >= 2, rng)
    assert_watchable(run)
    finish([*base, "--out", run, "--resume"])
    assert_steps_increase(run)
    assert [r["step"] for r in lines(run / "metrics.jsonl") if "loss" in r] == list(range(1, 5))
    whole, resumed = lora_weights(tmp_path / "whole"), lora_weights(run)
    assert all(torch.allclose(whole[k], resumed[k], atol=1e-6) for k in whole)


@pytest.mark.parametrize("seed", [0])
def test_rl_killed_and_resumed_samples_and_trains_as_the_uninterrupted_run(tiny, tmp_path, seed):
    rng = random.Random(seed)
    base = ["rl", "--model", tiny["model"], "--data", tiny["problems"], "--config", tiny["rl_settings"]]
    finish([*base, "--out", tmp_path / "whole"])
    run = tmp_path / "killed"
    kill_after([*base, "--out", run], lambda: len(lines(run / "metrics.jsonl")) >= 2, rng)
    assert_watchable(run)
    finish([*base, "--out", run, "--resume"])
    assert_steps_increase(run)
    a, b = lines(tmp_path / "whole" / "metrics.jsonl"), lines(run / "metrics.jsonl")
    assert [r["step"] for r in b] == [1, 2, 3, 4]
    assert [(r["phase"], r["reward_mean"]) for r in a] == [(r["phase"], r["reward_mean"]) for r in b]
    completions = [
        [(r["step"], r["completion"]) for r in lines(p / "rollouts.jsonl")] for p in (tmp_path / "whole", run)
    ]
    assert completions[0] == completions[1]  # the same samples, each once
    whole, resumed = lora_weights(tmp_path / "whole"), lora_weights(run)
    assert all(torch.allclose(whole[k], resumed[k], atol=1e-5) for k in whole)


@pytest.mark.parametrize("seed", [1])
def test_eval_killed_and_rerun_loses_and_repeats_nothing(tiny, tmp_path, seed):
    rng = random.Random(seed)
    base = ["eval", tiny["problems"], "--model", tiny["model"], "--samples", "3", "--max-tokens", "24",
            "--rollout-batch", "2"]  # fmt: skip
    finish([*base, "--out", tmp_path / "whole"])
    run = tmp_path / "killed"
    kill_after([*base, "--out", run], lambda: len(lines(run / "rollouts.jsonl")) >= 3, rng)
    assert_watchable(run)
    finish([*base, "--out", run])
    key = lambda r: (r["id"], r["sample"])  # noqa: E731
    a, b = lines(tmp_path / "whole" / "rollouts.jsonl"), lines(run / "rollouts.jsonl")
    assert len(b) == len({key(r) for r in b}) == 18  # 6 problems x 3 samples, each once
    assert sorted((key(r), r["completion"]) for r in a) == sorted((key(r), r["completion"]) for r in b)


def test_data_generate_killed_and_rerun_keeps_every_trace_once(tmp_path):
    out = tmp_path / "traces.jsonl"
    base = [
        "data",
        "generate",
        "--teacher",
        "synthetic",
        "--source",
        "synthetic",
        "--limit",
        "300",
        "--seed",
        "3",
    ]
    finish([*base, "--out", tmp_path / "whole.jsonl"])
    kill_after([*base, "--out", out], lambda: len(lines(out)) >= 20, random.Random(0))
    finish([*base, "--out", out])
    ids = [r["id"] for r in lines(out)]
    assert len(ids) == len(set(ids)) == 300
    assert sorted(map(json.dumps, lines(out))) == sorted(map(json.dumps, lines(tmp_path / "whole.jsonl")))
