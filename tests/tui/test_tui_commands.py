"""`pr1 watch` / `pr1 chat` command lines: bad input is a one-line error, adapters merge."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from pr1.cli import app
from pr1.errors import Pr1Error

runner = CliRunner()


def invoke(*args: str) -> None:
    runner.invoke(app, list(args), catch_exceptions=False)


def test_watch_refuses_a_folder_without_a_run(tmp_path: Path) -> None:
    with pytest.raises(Pr1Error, match="not a pr1 run folder"):
        invoke("watch", str(tmp_path))
    with pytest.raises(Pr1Error, match="--interval"):
        invoke("watch", str(tmp_path), "--interval", "0")


def test_chat_checks_options_before_loading_a_model(tmp_path: Path) -> None:
    with pytest.raises(Pr1Error, match="mode 'nope'"):
        invoke("chat", "--model", "no-such-model", "--mode", "nope")
    with pytest.raises(Pr1Error, match="--adapter .*no adapter_config.json"):
        invoke("chat", "--model", "no-such-model", "--adapter", str(tmp_path))
    with pytest.raises(Pr1Error, match="--prompt-file"):
        invoke("chat", "--model", "no-such-model", "--prompt-file", str(tmp_path / "x.txt"))


def test_chat_paths_per_block_is_num_paths() -> None:
    with pytest.raises(Pr1Error, match="--num-paths 1: a block needs at least 2 paths"):
        invoke("chat", "--model", "no-such-model", "--num-paths", "1")
    res = runner.invoke(app, ["chat", "--paths", "2"])
    assert res.exit_code == 2 and "No such option: --paths" in res.output


@pytest.mark.slow
def test_chat_says_when_the_model_has_no_parallel_training(tmp_path: Path, monkeypatch) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from pr1.commands.chat import load_chat_model
    from pr1.models import load_tokenizer, save_model, tiny_config
    from pr1.tui import chat_app
    from pr1.tui.chat_session import NO_PARALLEL_TRAINING, ChatSettings

    tokenizer = load_tokenizer("smollm2-135m")  # a base model's: no tag tokens
    base = AutoModelForCausalLM.from_config(
        tiny_config("llama", len(tokenizer), hidden_size=16, num_layers=1)
    )
    save_model(base, tokenizer, tmp_path / "base")
    loaded = []

    def run_chat(generator, **_):  # noqa: ANN001, ANN003 - the app without a terminal: it loads, then quits
        loaded.append(generator)
        return generator.load()

    monkeypatch.setattr(chat_app, "run_chat", run_chat)
    res = runner.invoke(app, ["chat", "--model", str(tmp_path / "base"), "--device", "cpu"])
    assert res.exit_code == 0 and res.stderr.splitlines()[-1] == NO_PARALLEL_TRAINING  # and in the app
    (untrained,) = loaded
    engine = untrained.engine
    assert "<Parallel>" in engine.tokenizer.get_vocab()  # pr1 added the tags
    # what SFT saves: the adapter, and beside it the tokenizer with the tags
    lora = get_peft_model(engine.model, LoraConfig(r=2, target_modules=["q_proj"]))
    lora.save_pretrained(tmp_path / "adapter")
    engine.tokenizer.save_pretrained(tmp_path / "adapter")
    trained = load_chat_model(
        str(tmp_path / "base"),
        tmp_path / "adapter",
        ChatSettings(engine="hf"),
        dtype="auto",
        device="cpu",
        trust_remote_code=False,
    )
    assert trained.parallel_trained


def test_commands_are_registered() -> None:
    names = {c.name or c.callback.__name__ for c in app.registered_commands}
    assert {"watch", "chat"} <= names


@pytest.mark.slow
def test_load_adapter_merges_a_lora_adapter(tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model

    from pr1.models import tiny_model

    model, _ = tiny_model("llama", seed=0)
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "adapter")
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        want = peft_model(ids).logits
    base, _ = tiny_model("llama", seed=0)
    from pr1.models import merge_adapter

    merged = merge_adapter(base, tmp_path / "adapter")
    assert not hasattr(merged, "peft_config")  # merged: plain transformers model
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, want, atol=1e-5)


def test_watch_exports_several_runs_without_a_terminal(tmp_path: Path) -> None:
    from tui_fixtures import write_rl_run

    a, b = write_rl_run(tmp_path / "a", steps=6), write_rl_run(tmp_path / "b", steps=6, seed=1)
    res = runner.invoke(app, ["watch", str(a), str(b), "--export", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert any(n.endswith(".csv") for n in written) and any(n.endswith(".svg") for n in written)
    header = (tmp_path / "out" / next(n for n in written if n.endswith(".csv"))).read_text().splitlines()[0]
    assert "a" in header and "b" in header  # both runs are in the data
