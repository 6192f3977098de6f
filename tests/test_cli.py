"""The command layer: importing the CLI loads no heavy library, and each command's flags are its settings
dataclass's fields, with their help and defaults (declared once, in pr1's settings dataclasses)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import typer.main

from pr1.bench.config import BenchConfig
from pr1.cli import app
from pr1.coldstart.generate import GenerateConfig
from pr1.commands import bench, chat, data, demo, eval, rl, sft
from pr1.demo import DemoConfig
from pr1.eval.run import EvalConfig
from pr1.rl.config import RLConfig
from pr1.settings import flag_name
from pr1.sft.config import Pr1SFTConfig
from pr1.tui.chat_session import ChatSettings

HEAVY = ("torch", "transformers", "trl", "peft", "datasets", "textual", "math_verify", "vllm", "unsloth")


def test_importing_the_cli_loads_no_heavy_library():
    code = f"import sys, pr1.cli; print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _click_command(*path: str):
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return command


@pytest.mark.parametrize(
    ("path", "cls", "flags"),
    [
        (("rl",), RLConfig, rl.FLAGS),
        (("sft",), Pr1SFTConfig, sft.FLAGS),
        (("eval",), EvalConfig, eval.FLAGS),
        (("chat",), ChatSettings, chat.FLAGS),
        (("demo",), DemoConfig, demo.FLAGS),
        (("bench",), BenchConfig, bench.FLAGS),
        (("data", "generate"), GenerateConfig, data.GENERATE_FLAGS),
    ],
)
def test_each_flag_is_its_settings_field(path, cls, flags):
    params = {p.name: p for p in _click_command(*path).params}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name in flags:
        param, field = params[name], fields[name]
        assert (param.help or "").startswith(field.metadata["help"]), name
        if param.param_type_name == "option":
            assert flag_name(cls, name) in param.opts, name
            default = (
                field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
            )
            assert param.default == default, name  # the help shows the field's own default
    # nothing else of the dataclass is a generated flag (bench spells its backends as one comma list itself)
    own = {"backends"} if path == ("bench",) else set()
    assert {n for n in params if n in fields} - own == set(flags)


def test_a_setting_without_a_flag_is_named_as_a_config_key(tmp_path):
    from typer.testing import CliRunner

    from pr1.errors import Pr1Error

    profile = tmp_path / "p.toml"
    profile.write_text("num_paths = 0\n")
    res = CliRunner().invoke(
        app, ["rl", "--model", "m", "--out", str(tmp_path / "r"), "--config", str(profile)]
    )
    assert isinstance(res.exception, Pr1Error)
    assert str(res.exception) == "config key num_paths=0: must be at least 1"


def test_version_short_help_and_flags_shown_as_flags():
    from typer.testing import CliRunner

    runner = CliRunner()
    assert runner.invoke(app, ["--version"]).output.startswith("pr1 ")
    res = runner.invoke(app, ["sft", "-h"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "--resume" in res.output
    rows = [line.strip("│ ") for line in res.output.splitlines()]
    lines = {row.split()[0]: row for row in rows if row.startswith("--")}
    assert "<bool>" not in lines["--resume"] and "<bool>" not in lines["--tui"]  # flags take no value
    assert "--no-resume" not in res.output


def test_eval_folders_are_named_after_what_is_evaluated():
    a = EvalConfig(benches=["gsm8k"])
    assert (
        EvalConfig(benches=["math500"]).run_dir()
        != a.run_dir()
        != EvalConfig(benches=["gsm8k"], seed=1).run_dir()
    )
    assert a.run_dir() == EvalConfig(benches=["gsm8k"], rollout_batch=8).run_dir()  # not a sampling setting
    assert a.run_dir().name.startswith("eval-smollm2-135m-gsm8k-fork-")


def test_adapter_may_be_a_run_folder(tmp_path):
    from pr1.errors import Pr1Error
    from pr1.runs import Run

    Run.create(tmp_path / "sft", "sft", {}).finish()
    with pytest.raises(Pr1Error, match="holds no adapter in final/"):
        EvalConfig(benches=["gsm8k"], adapter=str(tmp_path / "sft"))
    (tmp_path / "sft" / "final").mkdir()
    (tmp_path / "sft" / "final" / "adapter_config.json").write_text("{}")
    assert EvalConfig(benches=["gsm8k"], adapter=str(tmp_path / "sft")).adapter == str(
        tmp_path / "sft" / "final"
    )
    assert EvalConfig(benches=["gsm8k"], adapter="plain/folder").adapter == "plain/folder"
