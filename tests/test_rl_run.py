"""`pr1 rl` with pr1's rollout engine: forks at <Parallel> reach TRL with their inserted tokens masked, a
20-step tiny-model run switches reward phase at steps 9, 10, 19, 20, and a smoke run on the embedded model."""

import json

import pytest
import torch
from rl_stub import spy_rewards, with_new_adapter

from pr1.models import EMBEDDED_MODEL, save_model, tiny_model
from pr1.rl.config import RLConfig
from pr1.rl.rollout import EngineRollout, prompt_groups
from pr1.rl.trainer import build_dataset, build_trainer, train
from pr1.rollout import ForcedSchedule, RolloutEngine
from pr1.runs import read_metrics, read_run_info


@pytest.fixture
def problems(tmp_path):
    (tmp_path / "template.txt").write_text("Q: {problem}")
    f = tmp_path / "problems.jsonl"
    f.write_text(
        "".join(
            json.dumps({"id": f"p{i}", "problem": f"What is {i}+{i}?", "answer": str(2 * i)}) + "\n"
            for i in range(4)
        )
    )
    return {"data": str(f), "prompt_file": str(tmp_path / "template.txt")}


def test_prompt_groups():
    assert prompt_groups(["a", "a", "b", "b"]) == (["a", "b"], 2)
    assert prompt_groups(["a", "a", "b"]) == (["a", "a", "b"], 1)
    assert prompt_groups([[{"c": 1}], [{"c": 1}]]) == ([[{"c": 1}]], 2)


@pytest.mark.parametrize("mask_inserted", [True, False])
def test_forked_rollouts_reach_trl_with_inserted_tokens_masked(tmp_path, problems, mask_inserted):
    model, tok = tiny_model("llama")
    cfg = RLConfig(
        **{
            "model": "tiny",
            **problems,
            "batch": 1,
            "samples": 2,
            "max_tokens": 40,
            "lora_r": 4,
            "mask_inserted": mask_inserted,
        }
    )
    forced = ForcedSchedule.for_tokenizer(tok, fork_after=3, path_tokens=[4, 6], summary_tokens=3)
    rollout = EngineRollout(cfg, tok, "hf", logits_processor=forced)
    trainer = build_trainer(
        cfg,
        with_new_adapter(model, tok, cfg),
        build_dataset(cfg),
        backend="hf",
        output_dir=tmp_path / "o",
        rollout_func=rollout,
    )
    trainer.model.train()
    calls = spy_rewards(trainer)
    rollout.engine = RolloutEngine(trainer.accelerator.unwrap_model(trainer.model), tok, rollout.config)
    trajectories = []
    generate = rollout.engine.generate
    rollout.engine.generate = lambda *a, **k: trajectories.extend(generate(*a, **k)) or trajectories
    batch = [dict(trainer.train_dataset[0]) for _ in range(2)]
    out = trainer._generate_and_score_completions(batch)
    texts = calls[0]["tagged_text"]
    assert texts == [t.text for t in trajectories]
    assert all(t.count("<Parallel>") >= 1 and "</Parallel>\n<Summary>" in t for t in texts)
    loss_mask = out["completion_mask"] * out["tool_mask"]  # what TRL's loss weighs
    for k, t in enumerate(trajectories):
        assert out["completion_ids"][k, : len(t.completion_ids)].tolist() == t.completion_ids
        inserted = torch.tensor(t.inserted)
        assert inserted.sum() >= 4  # <Path> seeds, </Parallel>, "\n", <Summary>
        expected = (~inserted).long() if mask_inserted else torch.ones_like(inserted, dtype=torch.long)
        assert loss_mask[k, : len(t.completion_ids)].tolist() == expected.tolist()
        assert (loss_mask[k, len(t.completion_ids) :] == 0).all()
    stats = trainer.pr1_recorder.round
    assert all(r["n_blocks"] >= 1 for r in stats.records) and stats.logprob_gap_max > 0


def test_logprob_gap_counts_sampled_tokens_only_whatever_the_loss_mask(tmp_path, problems):
    """`--train-inserted` trains on the inserted tokens (whose sampling log-prob is a placeholder 0): the gap
    of the same trajectories is the same with it and without it."""
    gaps = {}
    for mask_inserted in (True, False):
        model, tok = tiny_model("llama")
        settings = {"model": "tiny", **problems, "batch": 1, "samples": 2, "max_tokens": 40, "lora_r": 4}
        cfg = RLConfig(**{**settings, "mask_inserted": mask_inserted})
        forced = ForcedSchedule.for_tokenizer(tok, fork_after=3, path_tokens=[4, 6], summary_tokens=3)
        rollout = EngineRollout(cfg, tok, "hf", logits_processor=forced)
        policy = with_new_adapter(model, tok, cfg)
        trainer = build_trainer(
            cfg, policy, build_dataset(cfg), backend="hf", output_dir=tmp_path / "o", rollout_func=rollout
        )
        trainer.model.train()
        out = trainer._generate_and_score_completions([dict(trainer.train_dataset[0]) for _ in range(2)])
        assert bool((out["tool_mask"] == 0).any()) is mask_inserted  # the loss masks do differ
        stats = trainer.pr1_recorder.round
        gaps[mask_inserted] = (stats.logprob_gap_mean, stats.logprob_gap_max)
    assert gaps[False] == pytest.approx(gaps[True], abs=1e-6)


@pytest.mark.slow
def test_twenty_engine_steps_switch_phase_at_9_10_19_20(tmp_path, problems):
    model, tok = tiny_model("llama")
    save_model(model, tok, tmp_path / "tiny")
    cfg = RLConfig(
        **{
            "model": str(tmp_path / "tiny"),
            **problems,
            "reward": "alternating",
            "batch": 1,
            "samples": 2,
            "steps": 20,
            "max_tokens": 24,
            "lora_r": 4,
            "save_every": 0,
        }
    )
    train(cfg, tmp_path / "run")
    rows = read_metrics(tmp_path / "run")
    assert [r["step"] for r in rows] == list(range(1, 21))
    assert [r["step"] for r in rows if r["phase"] == "tiered"] == [9, 10, 19, 20]
    assert all(r["reward_mean"] == pytest.approx(r[f"rewards/{r['phase']}/mean"]) for r in rows)
    assert all(
        r["response_tokens_mean"] <= 24 and r["logprob_gap_max"] < 1e-3 for r in rows
    )  # no forks: exact
    assert read_run_info(tmp_path / "run")["status"] == "finished"


@pytest.mark.slow
def test_smoke_run_on_the_embedded_model(tmp_path, problems):
    out = tmp_path / "run"
    cfg = RLConfig(
        **{
            "model": EMBEDDED_MODEL,
            **problems,
            "batch": 1,
            "samples": 2,
            "steps": 2,
            "max_tokens": 16,
            "lora_r": 8,
            "save_every": 1,
        }
    )
    summary = train(cfg, out)
    rows = read_metrics(out)
    assert [r["step"] for r in rows] == [1, 2] and summary["steps"] == 2
    assert all(r["time_rollout"] > 0 and r["tokens_per_s"] > 0 and r["loss"] is not None for r in rows)
    assert (out / "checkpoints" / "step-000002" / "COMPLETE").exists()
    assert (out / "final" / "adapter_config.json").exists()
    info = read_run_info(out)
    assert info["config"]["base_model"] == EMBEDDED_MODEL and info["config"]["backend_used"] == "hf"


@pytest.mark.slow
def test_two_processes_with_accelerate_launch(tmp_path, problems):
    import os
    import shutil
    import subprocess

    if shutil.which("accelerate") is None:
        pytest.skip("accelerate's launcher is not on PATH")
    model, tok = tiny_model("llama")
    save_model(model, tok, tmp_path / "tiny")
    out = tmp_path / "run"
    cmd = [
        "accelerate",
        "launch",
        "--cpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
    ]
    cmd += ["--dynamo_backend", "no", "-m", "pr1", "rl", "--model", str(tmp_path / "tiny"), "--out", str(out)]
    cmd += [
        "--data",
        problems["data"],
        "--prompt-file",
        problems["prompt_file"],
        "--batch",
        "2",
        "--samples",
        "2",
    ]
    cmd += ["--steps", "2", "--max-tokens", "8", "--lora-r", "4", "--save-every", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = read_metrics(out)
    assert [r["step"] for r in rows] == [1, 2]  # written once, by the main process
    rollouts = [json.loads(line) for line in (out / "rollouts.jsonl").read_text().splitlines()]
    assert len({(r["step"], r["id"]) for r in rollouts}) == 4  # both processes' prompts were gathered


def test_a_step_without_gradient_is_said_on_the_console(tmp_path, capsys):
    from types import SimpleNamespace

    from pr1.rl.callbacks import RoundStats, RunCallback, StepRecorder
    from pr1.runs import Run, read_metrics

    run = Run.create(tmp_path, "rl", {})
    recorder = StepRecorder()
    callback = RunCallback(run, recorder, updates_per_step=1, total_steps=2, log_rollouts=0)
    state = SimpleNamespace(global_step=0)
    callback.on_train_begin(None, state, None)
    record = {"correct": False, "parallel": False, "format_valid": True, "n_blocks": 0, "reward": -1.0,
              "pred": None, "tokens": 5, "critical_path_tokens": 5, "truncated": False,
              "rewards": {"accuracy": -1.0, "tiered": -1.0, "parallel-accuracy": -1.0}}  # fmt: skip
    recorder.now("rollout")
    recorder.round = RoundStats(step=1, phase="accuracy", records=[record, dict(record)], time_rollout=0.1)
    state.global_step = 1
    callback.on_log(None, state, None, logs={"loss": 0.0, "grad_norm": 0.0, "frac_reward_zero_std": 1.0})
    callback.close()
    assert "step 1: every group has equal rewards — no update" in capsys.readouterr().out
    (row,) = read_metrics(tmp_path)
    assert row["frac_reward_zero_std"] == 1.0 and row["reward_std"] == 0.0


def test_report_to_tensorboard_writes_event_files_with_pr1s_figures(tmp_path, problems):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model, tok = tiny_model("llama")
    save_model(model, tok, tmp_path / "tiny")
    cfg = RLConfig(
        model=str(tmp_path / "tiny"), **problems, batch=1, samples=2, steps=2, max_tokens=16, lora_r=4,
        save_every=0, report_to="tensorboard",
    )  # fmt: skip
    train(cfg, tmp_path / "run")
    (events,) = (tmp_path / "run" / "tensorboard").rglob("events.out.tfevents.*")
    tags = EventAccumulator(str(events.parent)).Reload().Tags()["scalars"]
    assert {
        "train/loss",
        "train/pr1/parallel_ratio",
        "train/pr1/format_valid_rate",
        "train/pr1/phase_tiered",
    } <= set(tags)
    assert len(read_metrics(tmp_path / "run")) == 2  # the run folder stays the record
