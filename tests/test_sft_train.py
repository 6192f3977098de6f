"""`pr1 sft` training on tiny random-weight models: the tag rows train (and only they, of the embeddings),
the adapter reproduces the trained model, the run folder streams, resume continues without repeating data,
the structured collator reaches the model, and bad flags give one-line errors."""

import json

import pytest
import torch
from safetensors.torch import load_file
from sft_tiny import model_dir, resolve_config, tiny_config, write_problems, write_sft_rows
from typer.testing import CliRunner

import pr1.sft.trainer as trainer_mod
from pr1.checkpoints import latest_checkpoint
from pr1.cli import app
from pr1.datasets import load_problems
from pr1.errors import Pr1Error
from pr1.models import load_model, tag_token_ids
from pr1.prompts import PARALLEL_TEMPLATE
from pr1.runs import read_metrics, read_run_info
from pr1.sft.data import IGNORE
from pr1.sft.format_check import format_check
from pr1.sft.train import train


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("sft")
    return {
        "root": root,
        "data": write_sft_rows(root / "sft.jsonl"),
        "problems": write_problems(root / "problems.jsonl"),
    }


@pytest.fixture(scope="module")
def run_of(files):
    """arch -> a finished 3-step run with a checkpoint at step 2 and the format check, trained once per module
    (llama: tied embeddings; qwen3: untied)."""
    runs = {}

    def get(arch):
        if arch not in runs:
            model = model_dir(files["root"], arch)
            out = files["root"] / f"run-{arch}"
            config = tiny_config(
                model,
                files["data"],
                save_every=2,
                format_check=2,
                format_check_data=str(files["problems"]),
                format_check_length=8,
            )
            summary = train(config, out)
            runs[arch] = {"arch": arch, "model": model, "out": out, "config": config, "summary": summary}
        return runs[arch]

    return get


@pytest.fixture(params=["llama", "qwen3"])
def trained(request, run_of):
    return run_of(request.param)


def _events(out):
    return [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]


def test_only_the_tag_rows_of_the_embeddings_change_and_they_are_in_the_adapter(trained):
    base, tok = load_model(str(trained["model"]), device="cpu")
    tags = sorted(tag_token_ids(tok).values())
    before_in = base.get_input_embeddings().weight.detach().clone()
    before_out = base.get_output_embeddings().weight.detach().clone()
    from peft import PeftModel

    merged = PeftModel.from_pretrained(base, str(trained["out"] / "final")).merge_and_unload()
    changed_in = (merged.get_input_embeddings().weight != before_in).any(1).nonzero().flatten().tolist()
    changed_out = (merged.get_output_embeddings().weight != before_out).any(1).nonzero().flatten().tolist()
    assert changed_in == tags and changed_out == tags
    saved = load_file(trained["out"] / "final" / "adapter_model.safetensors")
    token_keys = [k for k in saved if "trainable_tokens" in k]
    assert all(saved[k].shape[0] == len(tags) for k in token_keys)  # the six rows, not the whole matrices
    assert len(token_keys) == (1 if trained["arch"] == "llama" else 2)  # tied: one matrix serves both
    assert all("lora_" in k or "trainable_tokens" in k for k in saved)  # no resized matrices
    assert not (trained["out"] / "final" / "training_args.bin").exists()  # safetensors and JSON only


def test_a_reloaded_adapter_reproduces_the_trained_model(trained):
    """Greedy completions of the reloaded adapter equal those the trained model wrote in the format check."""
    from peft import PeftModel

    base, tok = load_model(str(trained["model"]), device="cpu")
    model = PeftModel.from_pretrained(base, str(trained["out"] / "final")).eval()
    problems = load_problems(trained["config"].format_check_data)
    _, rows = format_check(model, tok, problems, template=PARALLEL_TEMPLATE, max_new_tokens=8)
    logged = [json.loads(line) for line in (trained["out"] / "rollouts.jsonl").read_text().splitlines()]
    assert [r["completion"] for r in rows] == [r["completion"] for r in logged if r["source"] == "sft"]


def test_the_run_folder_streams(trained):
    out = trained["out"]
    info = read_run_info(out)
    assert info["status"] == "finished" and info["kind"] == "sft" and info["total_steps"] == 3
    assert info["backend"] == "hf" and info["micro_batch"] == 1 and info["config"]["lora_r"] == 4
    rows = [r for r in read_metrics(out) if "loss" in r]
    assert [r["step"] for r in rows] == [1, 2, 3]
    for r in rows:
        assert r["loss"] > 0 and r["lr"] is not None and r["tokens_per_s"] > 0 and r["memory_gb"] > 0
        assert 0 < r["epoch"] <= 1
    names = [e["event"] for e in _events(out)]
    assert names[0] == "start" and names[-1] == "end"
    assert [e["step"] for e in _events(out) if e["event"] == "checkpoint"] == [2, 3]
    assert latest_checkpoint(out).name == "step-000003"
    assert (latest_checkpoint(out) / "adapter_model.safetensors").is_file()
    check = next(e for e in _events(out) if e["event"] == "format_check")
    assert check["n"] == 2 and 0 <= check["format_valid_rate"] <= 1
    assert trained["summary"]["format_check"]["n"] == 2 and trained["summary"]["steps"] == 3


def _recording(monkeypatch):
    """Record the input_ids of every micro-batch the trainer computes a loss on (what is actually trained)."""
    seen = []
    real = trainer_mod.count_tokens

    def count(inputs):
        seen.append(inputs)
        return real(inputs)

    monkeypatch.setattr(trainer_mod, "count_tokens", count)
    return seen


def _ids(batches):
    return [tuple(b["input_ids"][0].tolist()) for b in batches]


def _lora_state(out):
    return load_file(out / "final" / "adapter_model.safetensors")


def test_resume_continues_without_repeating_data(files, run_of, monkeypatch):
    """Stopped by --max-steps, or killed by Ctrl-C after step 2: resume trains the rows an uninterrupted run
    trains (no row twice), continues the step count, and (killed) ends with the uninterrupted run's weights."""
    reference = run_of("llama")
    model = reference["model"]
    seen = _recording(monkeypatch)

    # stopped by --max-steps 2, then resumed with --max-steps 3
    out = files["root"] / "stopped"
    train(tiny_config(model, files["data"], max_steps=2, save_every=2), out)
    train(resolve_config({"max_steps": 3}, read_run_info(out)["config"]), out, resume=True)
    expected = _ids(seen)
    assert len(expected) == 6 and len(set(expected)) == 6  # 3 steps x 2 micro-batches, all different rows
    assert [r["step"] for r in read_metrics(out) if "loss" in r] == [1, 2, 3]
    assert [e["event"] for e in _events(out)].count("resume") == 1
    # the schedule is re-planned for 3 steps: step 3 has the uninterrupted run's learning rate, not the end of
    # a finished 2-step cosine (0)
    lr = {r["step"]: r["lr"] for r in read_metrics(reference["out"]) if "loss" in r}
    assert read_metrics(out)[-1]["lr"] == pytest.approx(lr[3]) and lr[3] > 0

    # killed after step 2: the interrupted step is saved, the run says so, resume finishes it
    seen.clear()

    class Interrupting(trainer_mod.RunLogger):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 2 and read_run_info(self.run.path).get("resumed_at") is None:
                raise KeyboardInterrupt

    monkeypatch.setattr(trainer_mod, "RunLogger", Interrupting)
    out = files["root"] / "killed"
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(model, files["data"], save_every=100), out)
    assert read_run_info(out)["status"] == "interrupted"
    assert latest_checkpoint(out).name == "step-000002"
    train(resolve_config({}, read_run_info(out)["config"]), out, resume=True)
    assert _ids(seen) == expected and read_run_info(out)["status"] == "finished"
    ref_state, state = _lora_state(reference["out"]), _lora_state(out)
    assert all(torch.allclose(ref_state[k], state[k], atol=1e-6) for k in ref_state)


def test_structured_variant_trains_with_4d_masks_and_multiverse_positions(files, monkeypatch):
    seen = _recording(monkeypatch)
    out = files["root"] / "structured"
    summary = train(
        tiny_config(model_dir(files["root"], "qwen3"), files["data"], variant="structured", max_steps=2), out
    )
    assert summary["steps"] == 2 and all(torch.isfinite(torch.tensor(r["loss"])) for r in read_metrics(out))
    batch = seen[0]
    assert batch["attention_mask"].dim() == 4 and "position_ids" in batch
    pos = batch["position_ids"][0].tolist()
    assert pos != list(range(len(pos)))  # the block's paths share positions
    labels = batch["labels"][0].tolist()
    assert labels[0] == IGNORE and labels[-1] != IGNORE  # completion-only labels reach the model


runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--quant", "4bit"], "--quant 4bit needs a CUDA GPU"),
        (["--backend", "unsloth"], "--backend unsloth needs a CUDA GPU"),
        (["--batch", "6", "--micro-batch", "4"], "--batch 6 is not a multiple of --micro-batch 4"),
        (["--variant", "tree"], "--variant 'tree': expected one of causal, structured"),
        (["--data", "missing.jsonl"], "--data missing.jsonl: no such file"),
    ],
)
def test_bad_flags_are_one_line_errors(files, tmp_path, args, message):
    base = ["sft", "--out", str(tmp_path / "run"), "--model", str(model_dir(files["root"], "llama"))]
    base += ["--data", str(files["data"])]
    res = runner.invoke(app, base + args)
    assert isinstance(res.exception, Pr1Error), res.output
    assert message in str(res.exception) and "\n" not in str(res.exception)
    assert not (tmp_path / "run").exists()


def test_resume_needs_a_run(tmp_path):
    res = runner.invoke(app, ["sft", "--out", str(tmp_path), "--resume"])
    assert isinstance(res.exception, Pr1Error) and "holds no run to resume" in str(res.exception)


def test_tag_rows_have_their_own_learning_rate(files, run_of):
    """--tag-lr puts the tag rows in their own optimizer groups: near zero, they stay put while LoRA trains."""
    from peft import PeftModel

    model = run_of("qwen3")["model"]
    out = files["root"] / "tag-lr"
    train(tiny_config(model, files["data"], max_steps=2, tag_lr=1e-12), out)
    base, tok = load_model(str(model), device="cpu")
    before = base.get_output_embeddings().weight.detach().clone()
    merged = PeftModel.from_pretrained(base, str(out / "final")).merge_and_unload()
    tags = sorted(tag_token_ids(tok).values())
    assert torch.allclose(merged.get_output_embeddings().weight[tags], before[tags], atol=1e-9)
    saved = load_file(out / "final" / "adapter_model.safetensors")
    assert any(saved[k].abs().sum() > 0 for k in saved if "lora_B" in k)  # LoRA did train


def test_report_to_tensorboard_writes_event_files(files, run_of):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = files["root"] / "tensorboard-run"
    train(tiny_config(run_of("llama")["model"], files["data"], max_steps=2, report_to="tensorboard"), out)
    (events,) = (out / "tensorboard").rglob("events.out.tfevents.*")
    assert "train/loss" in EventAccumulator(str(events.parent)).Reload().Tags()["scalars"]
    assert [r["step"] for r in read_metrics(out)] == [1, 2]  # the run folder stays the record


def test_resuming_a_finished_run_trains_nothing(files, run_of):
    done = run_of("llama")
    out, before = done["out"], (done["out"] / "final" / "adapter_model.safetensors").read_bytes()
    losses = [r["loss"] for r in read_metrics(out) if "loss" in r]
    assert done["summary"]["train_loss"] == pytest.approx(sum(losses) / len(losses))  # every step's loss
    for _ in range(2):
        summary = train(resolve_config({}, read_run_info(out)["config"]), out, resume=True)
        assert summary["steps"] == 3
    assert (out / "final" / "adapter_model.safetensors").read_bytes() == before
    assert [r["step"] for r in read_metrics(out) if "loss" in r] == [1, 2, 3]
