"""`pr1 sft --config`: TOML settings files layered left to right, their place in the precedence (defaults <
files < a resumed run's stored settings < flags), one-line errors naming the file, the examples/ profiles."""

import json
from pathlib import Path

import pytest
from sft_tiny import resolve_config
from typer.testing import CliRunner

from pr1.cli import app
from pr1.errors import Pr1Error
from pr1.sft.config import Pr1SFTConfig

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SFT_FILES = sorted(p.name for p in EXAMPLES.glob("sft-*.toml"))
runner = CliRunner()


@pytest.mark.parametrize("name", SFT_FILES)
def test_every_sft_example_resolves_and_explains_itself(name):
    path = EXAMPLES / name
    assert path.read_text().startswith("#")  # what it is for and the estimates it was sized with
    config = resolve_config({"model": "m", "data": "d"}, files=[path])
    assert (config.model, config.data) == ("m", "d")
    assert config.micro_batch is None or config.batch % config.micro_batch == 0


def test_profiles_set_what_they_say():
    small = resolve_config({"model": "m", "data": "d"}, files=[EXAMPLES / "sft-24gb.toml"])
    large = resolve_config({"model": "m", "data": "d"}, files=[EXAMPLES / "sft-80gb.toml"])
    assert (small.quant, small.micro_batch) == ("4bit", None)  # the backend's 24 GB default micro-batch
    assert (large.quant, large.micro_batch) == ("none", 4)
    paper = resolve_config({"model": "m", "data": "d"})
    for config in (small, large):  # hardware profiles leave the paper's recipe alone
        for key in ("epochs", "lr", "batch", "max_length", "lora_r", "lr_scheduler", "warmup_ratio"):
            assert getattr(config, key) == getattr(paper, key), key


def test_files_layer_left_to_right_and_flags_win(tmp_path):
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text('model = "from-a"\ndata = "d.jsonl"\nepochs = 2\nlr = 1\nmicro-batch = 4\n')
    b.write_text("epochs = 3\nmicro_batch = 2\n")
    config = resolve_config({}, files=[a, b])
    assert (config.model, config.data, config.epochs, config.micro_batch) == ("from-a", "d.jsonl", 3.0, 2)
    assert config.lr == 1.0 and isinstance(config.lr, float)
    assert resolve_config({}, files=[b, a]).micro_batch == 4
    assert resolve_config({"micro_batch": 1, "model": "m"}, files=[a, b]).micro_batch == 1


def test_a_resumed_run_keeps_its_stored_settings_over_the_files(tmp_path):
    stored = {**Pr1SFTConfig(model="m", data="d", lora_r=16, micro_batch=2).__dict__}
    profile = tmp_path / "p.toml"
    profile.write_text("lora_r = 64\nmicro_batch = 8\nmax_steps = 5\n")
    config = resolve_config({}, stored, [profile])
    assert (config.lora_r, config.micro_batch, config.max_steps) == (16, 2, None)
    assert resolve_config({"max_steps": 9}, stored, [profile]).max_steps == 9
    with pytest.raises(Pr1Error, match="--lora-r 8: this run started with 16"):
        resolve_config({"lora_r": 8}, stored, [profile])


def test_model_and_data_from_flags_or_a_file(tmp_path):
    with pytest.raises(Pr1Error, match="--model and --data required"):
        resolve_config({}, files=[])
    only_model = tmp_path / "m.toml"
    only_model.write_text('model = "m"\n')
    with pytest.raises(Pr1Error, match="^--data required"):
        resolve_config({}, files=[only_model])
    assert resolve_config({"data": "d"}, files=[only_model]).model == "m"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("epochz = 3\n", r"bad.toml: unknown setting 'epochz'"),
        ('epochs = "five"\n', r"bad.toml: epochs = 'five': expected a number"),
        ("lora_r = 1.5\n", r"bad.toml: lora_r = 1.5: expected an integer"),
        ("format_check_base = 1\n", r"bad.toml: format_check_base = 1: expected true or false"),
        ("[lora]\nr = 8\n", r"bad.toml: tables are not used"),
        ("epochs = \n", r"bad.toml: invalid TOML"),
    ],
)
def test_bad_files_raise_one_line_errors_naming_the_file(tmp_path, text, message):
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    with pytest.raises(Pr1Error, match=message) as err:
        resolve_config({"model": "m", "data": "d"}, files=[bad])
    assert "\n" not in str(err.value) and str(err.value).startswith("--config ")


def test_cli_config_reaches_the_run(tmp_path, monkeypatch):
    seen = {}

    class Started(Exception):
        pass

    def fake_train(config, out, resume=False, console=None):
        seen.update(config=config, out=out, resume=resume)
        raise Started

    monkeypatch.setattr("pr1.sft.train.train", fake_train)
    extra = tmp_path / "extra.toml"
    extra.write_text("epochs = 1\nmicro_batch = 2\n")
    out = tmp_path / "run"
    base = ["sft", "--out", str(out), "--model", "m", "--data", "d.jsonl"]
    res = runner.invoke(app, [*base, "--config", str(EXAMPLES / "sft-80gb.toml"), "--config", str(extra)])
    assert isinstance(res.exception, Started)
    config = seen["config"]
    assert (config.quant, config.epochs, config.micro_batch, config.model) == ("none", 1.0, 2, "m")
    res = runner.invoke(app, [*base, "--config", str(EXAMPLES / "sft-80gb.toml"), "--micro-batch", "8"])
    assert isinstance(res.exception, Started) and seen["config"].micro_batch == 8
    # --resume: the stored settings come above the files
    out.mkdir()
    stored = Pr1SFTConfig(model="m", data="d.jsonl", micro_batch=1, quant="4bit").__dict__
    (out / "run.json").write_text(json.dumps({"kind": "sft", "config": stored}))
    res = runner.invoke(
        app, ["sft", "--out", str(out), "--resume", "--config", str(EXAMPLES / "sft-80gb.toml")]
    )
    assert isinstance(res.exception, Started) and seen["resume"]
    assert (seen["config"].quant, seen["config"].micro_batch) == ("4bit", 1)
    fresh = ["sft", "--out", str(tmp_path / "run2"), "--model", "m", "--data", "d.jsonl"]
    res = runner.invoke(app, [*fresh, "--config", str(tmp_path / "missing.toml")])
    assert isinstance(res.exception, Pr1Error) and "missing.toml: no such file" in str(res.exception)
