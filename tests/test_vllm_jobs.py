"""`--engine vllm` in the jobs: `pr1 eval`, `pr1 chat` (streaming) and `pr1 rl` (weights synced into vLLM
before each step's rollout) run end to end on vLLM (the CPU build), and `auto` picks as documented."""

from __future__ import annotations

import json
import math
import threading

import pytest

from pr1.errors import Pr1Error
from pr1.rollout import RolloutConfig
from pr1.rollout.engines import AUTO_MIN_TOKENS, pick_engine, vllm_available

needs_vllm = pytest.mark.skipif(
    not vllm_available(), reason="vLLM is not installed (the CPU build: docs/VLLM.md)"
)


def test_auto_picks_by_mode_installation_and_size():
    assert pick_engine(RolloutConfig(engine="hf")) == ("hf", "asked for")
    assert pick_engine(RolloutConfig(mode="structured"))[0] == "hf"
    small = pick_engine(RolloutConfig(), planned_tokens=AUTO_MIN_TOKENS - 1)
    assert small[0] == "hf" and ("small job" in small[1] or "not installed" in small[1])
    assert pick_engine(RolloutConfig(), planned_tokens=10**7)[0] == ("vllm" if vllm_available() else "hf")
    with pytest.raises(Pr1Error, match="structured needs the hf engine"):
        pick_engine(RolloutConfig(engine="vllm", mode="structured"))


@needs_vllm
def test_eval_on_vllm(tmp_path, vllm_engine):
    """Also: the session's engine, open while eval's own engines start and close, still samples (vLLM's
    parallel groups are process-wide: pr1 leaves them to the last engine closed)."""
    from pr1.eval import EvalConfig, run_eval
    from pr1.runs import read_run_info

    problems = tmp_path / "p.jsonl"
    problems.write_text("".join(json.dumps({"id": i, "problem": f"What is {i} + 1?", "answer": i + 1}) + "\n"
                                for i in range(3)))  # fmt: skip
    out = tmp_path / "eval"
    cfg = EvalConfig(benches=[str(problems)], samples=2, max_tokens=24, engine="vllm", out=str(out))
    (figures,) = run_eval(cfg).values()
    assert figures["rows"] == 6 and read_run_info(out)["engine_used"] == "vllm"
    again = run_eval(EvalConfig(benches=[str(problems)], samples=2, max_tokens=24, out=str(out)))  # auto
    assert next(iter(again.values()))["rows"] == 6  # resumed with the folder's engine: nothing re-sampled
    vllm_engine.config = RolloutConfig(max_tokens=4, mode="free")
    (trajectory,) = vllm_engine.generate(["What is 1 + 1?"])
    assert 0 < trajectory.generated_tokens <= 4


@needs_vllm
def test_chat_streams_from_vllm(vllm_engine):
    from pr1.tui.chat_session import ChatSettings, EngineGenerator, LoadedModel

    generator = EngineGenerator(lambda: LoadedModel(vllm_engine, parallel_trained=True), "smollm2 on vLLM")
    generator.load()
    events = []
    generation = generator.generate(
        "What is 2 + 2?", ChatSettings(max_tokens=20, seed=3), events.append, threading.Event()
    )
    text = "".join(e.text for e in events)
    assert events[-1].done and len(text) > 0 and not generation.stopped


@needs_vllm
def test_rl_on_vllm_samples_from_the_updated_policy(tmp_path):
    from pr1.models import save_model, tiny_model
    from pr1.rl.config import RLConfig
    from pr1.rl.trainer import train
    from pr1.runs import read_metrics, read_run_info

    model, tok = tiny_model(
        "llama", hidden_size=128, num_heads=2, num_kv_heads=1
    )  # vLLM's CPU attention: head_dim 64
    save_model(model, tok, tmp_path / "tiny")
    data = tmp_path / "p.jsonl"
    data.write_text(
        "".join(json.dumps({"id": i, "problem": f"{i}+{i}?", "answer": 2 * i}) + "\n" for i in range(4))
    )
    cfg = RLConfig(model=str(tmp_path / "tiny"), data=str(data), batch=2, samples=2, steps=2, max_tokens=12,
                   lora_r=4, lr=1.0, mode="free", save_every=0, engine="vllm", updates_per_step=1)  # fmt: skip
    train(cfg, tmp_path / "run")
    rows = read_metrics(tmp_path / "run")
    assert [r["step"] for r in rows] == [1, 2]
    # step 2 was sampled after an update at a high learning rate: vLLM's log-probs still equal the trained
    # policy's (measured 3e-7), so the weights reached it (with the step-1 weights left in vLLM: 6e-5)
    assert all(r["logprob_gap_mean"] is not None and r["logprob_gap_mean"] < 1e-5 for r in rows)
    assert (
        not math.isnan(rows[-1]["loss"])
        and read_run_info(tmp_path / "run")["config"]["engine_used"] == "vllm"
    )


@needs_vllm
def test_the_eval_command_on_vllm_keeps_vllm_logs_off_the_console(tmp_path):
    """vLLM logs a page per engine start to stdout; in the CLI its records go to the run log (pr1.logs)."""
    import subprocess
    import sys

    problems = tmp_path / "p.jsonl"
    problems.write_text(json.dumps({"id": 0, "problem": "What is 1 + 1?", "answer": 2}) + "\n")
    out = tmp_path / "eval"
    args = [str(problems), "--engine", "vllm", "--max-tokens", "8", "--out", str(out)]
    res = subprocess.run(
        [sys.executable, "-m", "pr1", "eval", *args], capture_output=True, text=True, timeout=600
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "mean@k" in res.stdout and "WARNING" not in res.stdout + res.stderr
    assert "INFO" not in res.stdout + res.stderr and "vllm" in (out / "pr1.log").read_text()
    assert (
        "Loading safetensors" not in res.stderr and "NUMA" not in res.stderr
    )  # vLLM's bar, torch's C++ notes
