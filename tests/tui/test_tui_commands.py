"""`pr1 watch` / `pr1 chat` command lines: bad input is a one-line error, adapters merge."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from pr1.cli import app
from pr1.commands.chat import load_adapter
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
    merged = load_adapter(base, tmp_path / "adapter")
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
