"""`pr1 export`: a merged model gives the logits of base + adapter, keeps the tags, needs no peft; the adapter
export carries no trainer state; bad runs and outputs give one-line errors."""

import json
import shutil

import pytest
import torch
from sft_tiny import model_dir, tiny_config, write_sft_rows
from typer.testing import CliRunner

from pr1.cli import app
from pr1.errors import Pr1Error
from pr1.export import EXPORT_INFO, adapter_source, export
from pr1.format import TAGS
from pr1.models import load_model
from pr1.runs import Run
from pr1.sft.train import train


@pytest.fixture(scope="module", params=["llama", "qwen3"])
def run(request, tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    model = model_dir(root, request.param)
    out = root / "run"
    train(tiny_config(model, write_sft_rows(root / "sft.jsonl"), max_steps=2, save_every=1), out)
    return {"out": out, "model": model}


def _ids(tok):
    text = "What is 2+2? <Parallel><Path>4</Path><Path>2+2</Path></Parallel>\n<Summary>4</Summary>"
    return torch.tensor([tok(text, add_special_tokens=False).input_ids])


def test_merged_model_matches_base_plus_adapter(run, tmp_path):
    from peft import PeftModel

    merged_dir = export(run["out"], tmp_path / "merged", merge=True)
    assert not (merged_dir / "adapter_config.json").exists()
    assert list(merged_dir.glob("*.safetensors")) and not list(merged_dir.glob("*.bin"))
    assert json.loads((merged_dir / EXPORT_INFO).read_text())["merged"] is True
    merged, tok = load_model(str(merged_dir), device="cpu")
    assert all(len(tok(t, add_special_tokens=False).input_ids) == 1 for t in TAGS)
    base, _ = load_model(str(run["model"]), device="cpu")
    adapted = PeftModel.from_pretrained(base, str(run["out"] / "final")).eval()
    x = _ids(tok)
    with torch.no_grad():
        ref = adapted(input_ids=x).logits
        got = merged.eval()(input_ids=x).logits
        with adapted.disable_adapter():
            plain = adapted(input_ids=x).logits
    assert torch.allclose(got, ref, atol=1e-4)
    assert not torch.allclose(plain, ref, atol=1e-3)  # the adapter did change the model


def test_adapter_export_has_no_trainer_state(run, tmp_path):
    out = export(run["out"], tmp_path / "adapter")
    names = {p.name for p in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", EXPORT_INFO} <= names
    assert not names & {"optimizer.pt", "scheduler.pt", "rng_state.pth", "training_args.bin", "COMPLETE"}


def test_without_final_the_latest_checkpoint_is_exported(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run["out"], copy)
    shutil.rmtree(copy / "final")
    base, adapter = adapter_source(copy)
    assert base == str(run["model"]) and adapter.name == "step-000002"


def test_a_run_on_top_of_another_run_exports_onto_that_runs_base(run, tmp_path):
    on_top = tmp_path / "rl"
    shutil.copytree(run["out"], on_top)
    info = json.loads((on_top / "run.json").read_text())
    info["config"] = {"model": str(run["out"])}  # as `pr1 rl --model SFT_RUN` started from the SFT run
    (on_top / "run.json").write_text(json.dumps(info))
    assert adapter_source(on_top) == (str(run["model"]), on_top / "final")


def test_cli_merge(run, tmp_path):
    res = CliRunner().invoke(app, ["export", str(run["out"]), "--merge", "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    assert "merged model written to" in res.output and (tmp_path / "m" / "config.json").is_file()


def test_bad_runs_and_outputs(run, tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    with pytest.raises(Pr1Error, match="already exists and is not empty"):
        export(run["out"], busy)
    with pytest.raises(Pr1Error, match="not a pr1 run folder"):
        export(tmp_path, tmp_path / "o")
    empty = tmp_path / "empty"
    Run.create(empty, "sft", {"model": "m"}).finish("failed")
    with pytest.raises(Pr1Error, match="no adapter yet"):
        export(empty, tmp_path / "o")
    assert not (tmp_path / "o").exists()
