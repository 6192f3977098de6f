"""examples/README.md: every `pr1 rl`, `pr1 sft` and `pr1 eval` command it shows (accelerate launch included)
parses with the real flags and reaches its job with the settings its --config files and flags say, and every
TOML file in examples/ is used by one of them."""

import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pr1 import settings
from pr1.cli import app
from pr1.rl.config import RLConfig
from pr1.sft.config import Pr1SFTConfig

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "examples" / "README.md"
runner = CliRunner()


def documented_commands() -> list[tuple[list[str], int]]:
    """The pr1 rl / sft / eval commands of the README's code blocks: (the arguments after `pr1`, processes:
    `accelerate launch --num_processes N`, else 1)."""
    commands, in_block, pending = [], False, ""
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_block = not in_block
            continue
        if not in_block:
            continue
        pending += line.rstrip().removesuffix("\\") + " " if line.rstrip().endswith("\\") else line
        if line.rstrip().endswith("\\"):
            continue
        words, pending = shlex.split(pending, comments=True), ""
        if "pr1" in words:
            args = words[words.index("pr1") + 1 :]
            if args and args[0] in ("rl", "sft", "eval"):
                processes = (
                    int(words[words.index("--num_processes") + 1]) if "--num_processes" in words else 1
                )
                commands.append((args, processes))
    return commands


COMMANDS = documented_commands()


def test_the_readme_shows_every_recipe():
    assert len(COMMANDS) >= 20
    assert {c[0] for c, _ in COMMANDS} == {"rl", "sft", "eval"}
    assert any(n > 1 for _, n in COMMANDS)  # the several-GPU form
    used = {Path(c[i + 1]).name for c, _ in COMMANDS for i, word in enumerate(c) if word == "--config"}
    assert used == {p.name for p in (ROOT / "examples").glob("*.toml")}  # no file without a command


class Started(Exception):
    pass


@pytest.mark.parametrize(("args", "processes"), COMMANDS, ids=[" ".join(c)[:90] for c, _ in COMMANDS])
def test_documented_command_reaches_its_job(args, processes, tmp_path, monkeypatch):
    seen = {}

    def capture(config, *rest, **kwargs):
        seen["config"] = config
        raise Started

    monkeypatch.setattr("pr1.rl.trainer.train", capture)
    monkeypatch.setattr("pr1.sft.train.train", capture)
    monkeypatch.setattr("pr1.eval.run.run_eval", capture)
    monkeypatch.chdir(ROOT)
    args = [str(tmp_path / a) if i and args[i - 1] == "--out" else a for i, a in enumerate(args)]
    res = runner.invoke(app, args)
    assert isinstance(res.exception, Started), res.output or repr(res.exception)
    config = seen["config"]
    if args[0] == "eval":
        return
    cls = RLConfig if args[0] == "rl" else Pr1SFTConfig
    files = [args[i + 1] for i, a in enumerate(args) if a == "--config"]
    flags = {a[2:].replace("-", "_") for a in args if a.startswith("--")}
    expected = {k: v for k, v in settings.layer(files, cls).items() if k not in flags}
    assert {k: getattr(config, k) for k in expected} == expected
    if args[0] == "rl":
        from pr1.rl.trainer import batch_layout

        micro, _ = batch_layout(config, processes)  # the rollouts of an update split over the processes
        assert micro <= config.micro_batch
