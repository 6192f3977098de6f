"""The `pr1 rl` trainer on TRL's GRPOTrainer, with a scripted rollout (tests/rl_stub.py): tagged text reaches
the rewards, the trainer state drives the reward phase, inserted tokens get zero loss weight, structured
scoring, the log-prob gap, and a 20-step run whose metrics switch phase at steps 9, 10, 19, 20."""

import dataclasses
import json

import pytest
import torch
from rl_stub import StubRollout, spy_rewards, with_new_adapter

from pr1.models import save_model, tiny_model
from pr1.rl.config import RLConfig
from pr1.rl.trainer import build_dataset, build_trainer, score_completions, train
from pr1.runs import read_metrics, read_run_info
from pr1.structured import TagIds, batch_inputs

PAR_OK = (
    "<Parallel><Path>3+3=6</Path><Path>2*3=6</Path></Parallel>\n<Summary>both 6</Summary>\nFinal Answer: 6"
)
SEQ_OK = "three plus three is six\nFinal Answer: 6"
SEQ_WRONG = "three plus three is seven\nFinal Answer: 7"


@pytest.fixture
def template(tmp_path):
    f = tmp_path / "template.txt"  # a short prompt keeps the tiny-model steps fast
    f.write_text("Q: {problem}")
    return str(f)


@pytest.fixture
def data(tmp_path, template):
    f = tmp_path / "problems.jsonl"
    f.write_text(
        "".join(
            json.dumps({"id": f"p{i}", "problem": f"What is 3+3? ({i})", "answer": "6"}) + "\n"
            for i in range(4)
        )
    )
    return f


@pytest.fixture
def saved(tmp_path, data, template):
    """A tiny llama saved to disk, its tokenizer, and the settings of a one-problem-a-step LoRA run on it."""
    model, tok = tiny_model("llama")
    save_model(model, tok, tmp_path / "tiny")
    settings = {
        "model": str(tmp_path / "tiny"),
        "data": str(data),
        "prompt_file": template,
        "batch": 1,
        "samples": 2,
        "lora_r": 4,
    }
    return tok, settings


def make_trainer(tmp_path, data, texts, **settings):
    model, tok = tiny_model("llama")
    cfg = RLConfig(
        **{
            "model": "tiny",
            "prompt_file": str(tmp_path / "template.txt"),
            "data": str(data),
            "batch": 1,
            "samples": 2,
            "steps": 3,
            "lora_r": 4,
            "save_every": 0,
            **settings,
        }
    )
    policy = with_new_adapter(model, tok, cfg)
    rollout = StubRollout(tok, texts)
    trainer = build_trainer(
        cfg, policy, build_dataset(cfg), backend="hf", output_dir=tmp_path / "ckpt", rollout_func=rollout
    )
    trainer.model.train()
    return trainer, rollout


def generation_batch(trainer):
    row = trainer.train_dataset[0]
    return [dict(row) for _ in range(trainer.args.num_generations)]


def test_tagged_text_reaches_the_reward_function(tmp_path, data):
    trainer, _ = make_trainer(tmp_path, data, [PAR_OK, SEQ_WRONG])
    calls = spy_rewards(trainer)
    trainer._generate_and_score_completions(generation_batch(trainer))
    (kw,) = calls
    assert kw["tagged_text"] == [PAR_OK, SEQ_WRONG]
    shown = kw["completions"][0][0]["content"]
    assert "<Parallel>" not in shown and "3+3=6" in shown  # TRL's own decoding drops the tags
    assert kw["answer"] == ["6", "6"] and kw["trainer_state"] is trainer.state


def test_trainer_state_drives_the_reward_phase(tmp_path, data):
    trainer, _ = make_trainer(tmp_path, data, [PAR_OK, SEQ_OK], reward="alternating")
    phases = {}
    for global_step in (0, 14, 16, 18, 20):  # 2 optimizer steps per RL step: RL steps 1, 8, 9, 10, 11
        trainer.state.global_step = global_step
        out = trainer._generate_and_score_completions(generation_batch(trainer))
        stats = trainer.pr1_recorder.round
        phases[stats.step] = (stats.phase, [r["reward"] for r in stats.records], out["advantages"].tolist())
    assert [p[0] for p in phases.values()] == ["accuracy", "accuracy", "tiered", "tiered", "accuracy"]
    assert phases[1][1] == [1.0, 1.0] and phases[1][2] == [0.0, 0.0]  # both correct: no signal
    assert phases[9][1] == [1.2, 1.0]  # tiered pays the parallel answer more
    assert phases[9][2][0] == pytest.approx(0.1 / (0.1 * 2**0.5 + 1e-4), rel=1e-4)  # (r - mean) / (std + eps)


def test_the_scaffold_clips_like_the_reference_after_its_switch(tmp_path, data):
    trainer, _ = make_trainer(
        tmp_path,
        data,
        [PAR_OK, SEQ_OK],
        reward="scaffold",
        switch_step=2,
        clip_high=0.28,
        scaffold_clip_high=0.2,
    )
    clips = {}
    for global_step in (0, 2, 4):  # RL steps 1, 2 (alternating) and 3 (accuracy only)
        trainer.state.global_step = global_step
        trainer._generate_and_score_completions(generation_batch(trainer))
        clips[trainer.pr1_recorder.round.step] = trainer.epsilon_high
    assert clips == {1: 0.28, 2: 0.28, 3: 0.2}


def test_each_completion_is_graded_once_and_trained_on_the_logged_reward(tmp_path, data, monkeypatch):
    """The trainer's records and the reward function share one grading: a grader whose verdict flips at each
    call (a math-verify timeout in one of two calls) cannot make the trained reward differ from the logged."""
    import pr1.grading
    import pr1.rewards
    import pr1.score

    trainer, _ = make_trainer(tmp_path, data, [SEQ_OK, SEQ_OK])
    calls = []

    def flipping(text, gold):
        calls.append(text)
        verdict = pr1.grading.grade(text, gold)
        return dataclasses.replace(verdict, correct=verdict.correct and len(calls) % 2 == 1)

    for module in (pr1.score, pr1.rewards):
        monkeypatch.setattr(module, "grade", flipping)
    trained = []
    reward_func = trainer.reward_funcs[0]

    def recording(**kwargs):
        trained.extend(reward_func(**kwargs))
        return trained[-len(kwargs["completions"]) :]

    recording.__name__ = reward_func.__name__
    trainer.reward_funcs[0] = recording
    trainer._generate_and_score_completions(generation_batch(trainer))
    assert calls == [SEQ_OK, SEQ_OK]  # one grading per completion
    logged = [r["reward"] for r in trainer.pr1_recorder.round.records]
    assert trained == logged == [1.0, -1.0]


def test_inserted_tokens_get_zero_loss_weight(tmp_path, data):
    trainer, rollout = make_trainer(tmp_path, data, [PAR_OK, SEQ_WRONG])
    out = trainer._generate_and_score_completions(generation_batch(trainer))
    inserted = out["completion_ids"] == rollout.path_id
    assert inserted.sum() == 2  # the two <Path> seeds of the parallel answer
    assert torch.equal(
        out["tool_mask"].bool() & out["completion_mask"].bool(), out["completion_mask"].bool() & ~inserted
    )
    assert (out["advantages"] != 0).all()
    # Let TRL's own loss differentiate with respect to the per-token log-probs themselves
    logps = out["old_per_token_logps"].clone().requires_grad_(True)
    trainer._get_per_token_logps_and_entropies = lambda *a, **k: (logps * 1, torch.zeros_like(logps), None)
    trainer.current_gradient_accumulation_steps = trainer.args.gradient_accumulation_steps
    trainer.compute_loss(trainer.model, out).backward()
    weighted = logps.grad != 0
    assert not weighted[inserted].any()  # runtime-inserted: zero weight
    assert torch.equal(weighted, out["completion_mask"].bool() & ~inserted)  # every sampled token counts


def _direct_logps(model, seq, plen, structured, tags):
    built = batch_inputs([seq], [plen], tags, pad_id=0, structured=structured)
    with torch.no_grad():
        logits = model(**built).logits[0].float()
    lp = logits[:-1].log_softmax(-1).gather(-1, torch.tensor(seq[1:])[:, None]).squeeze(-1)
    return lp[plen - 1 :]


@pytest.mark.parametrize("structured", [False, True])
def test_scoring_in_trls_layout_matches_a_direct_forward(tiny, structured):
    model, tok = tiny
    tags = TagIds.from_tokenizer(tok)
    prompts = [tok.encode("Question one?"), tok.encode("A much longer second question here?")]
    completions = [tok.encode(PAR_OK, add_special_tokens=False), tok.encode(SEQ_OK, add_special_tokens=False)]
    P, C = max(map(len, prompts)), max(map(len, completions))
    input_ids = torch.zeros(2, P + C, dtype=torch.long)
    mask = torch.zeros(2, P + C, dtype=torch.long)
    for k, (p, c) in enumerate(
        zip(prompts, completions, strict=True)
    ):  # TRL: left-pad prompts, right-pad completions
        input_ids[k, P - len(p) : P + len(c)] = torch.tensor(p + c)
        mask[k, P - len(p) : P + len(c)] = 1
    with torch.no_grad():
        logps, entropy, _ = score_completions(
            model,
            input_ids,
            mask,
            C,
            tags,
            structured=structured,
            pad_id=0,
            batch_size=1,
            compute_entropy=True,
        )
    for k, (p, c) in enumerate(zip(prompts, completions, strict=True)):
        expected = _direct_logps(model, p + c, len(p), structured, tags)
        assert torch.allclose(logps[k, : len(c)], expected, atol=1e-5)
        assert (logps[k, len(c) :] == 0).all() and (entropy[k, : len(c)] > 0).all()
    if structured:  # the second path does not see the first one: scores differ from plain causal ones
        causal, _, _ = score_completions(
            model, input_ids, mask, C, tags, structured=False, pad_id=0, batch_size=2
        )
        assert not torch.allclose(causal[0], logps[0], atol=1e-4)
        assert torch.allclose(causal[1], logps[1], atol=1e-5)  # no block: identical


def test_the_fused_lm_head_is_not_used_when_the_tag_rows_train(monkeypatch):
    """TRL's fused LM head reads `lm_head.bias`, which peft's trainable-token wrapper (the tag rows, trained
    in RL as in SFT) does not expose: with it, pr1's own scoring pass must be chosen, even on CUDA."""
    from peft import get_peft_model
    from trl.trainer import utils

    from pr1.backends import lora_config
    from pr1.rl.trainer import fused_head_available

    monkeypatch.setattr(utils, "_ChunkedLogProbFunction", object())  # as on CUDA, where Triton is
    cuda = torch.device("cuda")
    for arch in ("llama", "qwen3"):  # tied and untied embeddings
        model, tok = tiny_model(arch)
        assert fused_head_available(model, cuda) and not fused_head_available(model, torch.device("cpu"))
        tagged = get_peft_model(model, lora_config(model, tok, r=4, alpha=8, dropout=0.0))
        assert not fused_head_available(tagged, cuda)


@pytest.mark.parametrize(("variant", "gap"), [("causal", False), ("structured", True)])
def test_logprob_gap_between_sampling_and_training(tmp_path, data, variant, gap):
    trainer, _ = make_trainer(tmp_path, data, [PAR_OK, SEQ_OK], variant=variant)
    trainer._generate_and_score_completions(generation_batch(trainer))
    stats = trainer.pr1_recorder.round
    # the stub "samples" with plain causal log-probs: the causal variant trains on the same numbers
    assert (stats.logprob_gap_max > 1e-3) is gap
    assert stats.logprob_gap_mean <= stats.logprob_gap_max


@pytest.mark.slow
def test_twenty_steps_switch_phase_at_9_10_19_20(tmp_path, saved):
    tok, settings = saved
    out = tmp_path / "run"
    cfg = RLConfig(**{**settings, "reward": "alternating", "steps": 20, "save_every": 10, "log_rollouts": 2})
    rollout = StubRollout(tok, [PAR_OK, SEQ_OK])
    summary = train(cfg, out, rollout_func=rollout)
    rows = read_metrics(out)
    assert [r["step"] for r in rows] == list(range(1, 21)) and rollout.calls == 20
    assert [r["step"] for r in rows if r["phase"] == "tiered"] == [9, 10, 19, 20]
    for r in rows:  # the reward actually paid is the phase's reward
        assert r["reward_mean"] == pytest.approx(r[f"rewards/{r['phase']}/mean"])
    assert rows[8]["reward_mean"] == pytest.approx(1.1) and rows[7]["reward_mean"] == pytest.approx(1.0)
    expected = {
        "loss",
        "lr",
        "clip_ratio_low",
        "clip_ratio_high",
        "time_rollout",
        "time_scoring",
        "time_update",
        "tokens_per_s",
        "memory_gb",
        "accuracy",
        "parallel_ratio",
        "format_valid_rate",
        "blocks_mean",
        "response_tokens_mean",
        "critical_path_tokens_mean",
        "logprob_gap_mean",
    }
    assert expected <= set(rows[0])
    assert rows[0]["parallel_ratio"] == 0.5 and rows[0]["accuracy"] == 1.0
    info = read_run_info(out)
    assert info["status"] == "finished" and info["total_steps"] == 20 and summary["steps"] == 20
    assert sorted(p.name for p in (out / "checkpoints").glob("step-*")) == ["step-000010", "step-000020"]
    assert all((p / "COMPLETE").exists() for p in (out / "checkpoints").glob("step-*"))
    assert (out / "final" / "adapter_model.safetensors").exists()
    rollouts = [json.loads(line) for line in (out / "rollouts.jsonl").read_text().splitlines()]
    assert len(rollouts) == 40 and rollouts[16]["phase"] == "tiered" and rollouts[16]["completion"] == PAR_OK
    assert (
        rollouts[16]["reward"] == 1.2 and rollouts[16]["parallel"] is True and rollouts[17]["reward"] == 1.0
    )


def test_a_run_that_raises_is_marked_failed(tmp_path, saved):
    _, settings = saved

    def broken(prompts, trainer):
        raise ValueError("the rollout broke\nat its first call")

    out = tmp_path / "run"
    with pytest.raises(ValueError):
        train(RLConfig(**{**settings, "steps": 2, "save_every": 0}), out, rollout_func=broken)
    info = read_run_info(out)
    assert info["status"] == "failed" and info["summary"] == {"error": "the rollout broke"}
    end = json.loads((out / "events.jsonl").read_text().splitlines()[-1])
    assert end["event"] == "end" and end["status"] == "failed" and not (out / "final").exists()


@pytest.mark.slow
def test_resume_continues_at_the_same_step_and_phase(tmp_path, saved):
    tok, settings = saved
    settings = {
        **settings,
        "reward": "alternating",
        "window": 2,
        "accuracy_steps": 1,  # the phase flips every step
        "steps": 4,
        "save_every": 2,
    }
    whole = StubRollout(tok, [PAR_OK, SEQ_WRONG])
    train(RLConfig(**settings), tmp_path / "whole", rollout_func=whole)
    broken = StubRollout(tok, [PAR_OK, SEQ_WRONG], interrupt_at=3)
    with pytest.raises(KeyboardInterrupt):
        train(RLConfig(**settings), tmp_path / "resumed", rollout_func=broken)
    assert read_run_info(tmp_path / "resumed")["status"] == "interrupted"
    assert [r["step"] for r in read_metrics(tmp_path / "resumed")] == [1, 2]
    again = StubRollout(tok, [PAR_OK, SEQ_WRONG])
    train(RLConfig(**settings), tmp_path / "resumed", resume=True, rollout_func=again)
    a, b = read_metrics(tmp_path / "whole"), read_metrics(tmp_path / "resumed")
    assert [(r["step"], r["phase"]) for r in b] == [(r["step"], r["phase"]) for r in a]
    assert [r["phase"] for r in b] == ["accuracy", "tiered", "accuracy", "tiered"]
    assert again.prompts == whole.prompts[2:]  # the data order goes on where it stopped
    for x, y in zip(a, b, strict=True):  # same weights, optimizer state and batches: same numbers
        assert x["reward_mean"] == y["reward_mean"]
        assert x["loss"] == pytest.approx(y["loss"], abs=1e-6)
    events = [
        json.loads(line)["event"] for line in (tmp_path / "resumed" / "events.jsonl").read_text().splitlines()
    ]
    assert events.count("resume") == 1 and read_run_info(tmp_path / "resumed")["status"] == "finished"


def test_periodic_evaluation_runs_pr1_eval_on_the_checkpoint(tmp_path, data, saved):
    tok, settings = saved
    settings = {
        **settings,
        "steps": 2,
        "save_every": 0,
        "max_tokens": 8,
        "eval_every": 2,
        "eval": str(data),
        "eval_limit": 2,
    }
    out = tmp_path / "run"
    train(RLConfig(**settings), out, rollout_func=StubRollout(tok, [PAR_OK, SEQ_OK]))
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    (ev,) = [e for e in events if e["event"] == "eval"]
    assert ev["step"] == 2 and ev["problems"] == 2 and 0 <= ev["mean_at_k"] <= 1
    rows = read_metrics(out)
    assert [r["step"] for r in rows] == [1, 2, 2]  # the evaluation adds its own row to step 2
    assert rows[2][f"eval/{ev['bench']}/mean_at_k"] == ev["mean_at_k"]
    sub = out / "evals" / "step-000002"
    assert read_run_info(sub)["kind"] == "eval" and read_run_info(sub)["config"]["adapter"] == str(
        out / "checkpoints" / "step-000002"
    )


def test_rl_continues_the_adapter_of_an_sft_run(tmp_path, data, template):
    from sft_tiny import model_dir, tiny_config, write_sft_rows

    from pr1.backends import run_folder_source
    from pr1.errors import Pr1Error
    from pr1.rl.backends import load_policy
    from pr1.sft.train import train as sft_train

    base = model_dir(tmp_path / "models", "llama")
    sft_run = tmp_path / "sft"
    sft_train(tiny_config(base, write_sft_rows(tmp_path / "sft.jsonl")), sft_run)
    assert run_folder_source(str(sft_run)) == (str(base), str(sft_run / "final"))
    cfg = RLConfig(
        **{
            "model": str(sft_run),
            "data": str(data),
            "prompt_file": template,
            "batch": 1,
            "samples": 2,
            "steps": 1,
            "save_every": 0,
        }
    )
    policy = load_policy(cfg, "hf")
    assert policy.peft_config is None and policy.adapter == str(sft_run / "final")  # no new adapter on top
    trained = [p for n, p in policy.model.named_parameters() if "lora_B" in n]
    assert trained and all(p.requires_grad for p in trained) and any(p.abs().sum() > 0 for p in trained)
    out = tmp_path / "rl"
    train(cfg, out, rollout_func=StubRollout(policy.tokenizer, [PAR_OK, SEQ_WRONG]))
    assert read_run_info(out)["config"]["base_model"] == str(base)
    assert run_folder_source(str(out)) == (str(base), str(out / "final"))  # a next stage can start from it
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "run.json").write_text(json.dumps({"kind": "sft", "config": {"model": str(base)}}))
    with pytest.raises(Pr1Error, match="has no final/ model yet"):
        run_folder_source(str(tmp_path / "empty"))
