"""`pr1 rl` settings: paper defaults, presets, layered --config files, precedence, validation, the TRL config
they map to, the rollout batch reaching the engine, CLI errors."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pr1 import settings
from pr1.cli import app
from pr1.commands.rl import FLAGS
from pr1.errors import Pr1Error
from pr1.rl.config import MAY_CHANGE_ON_RESUME, RLConfig
from pr1.rl.trainer import batch_layout, grpo_args

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
RL_FILES = sorted(p.name for p in EXAMPLES.glob("*.toml") if not p.name.startswith("sft-"))
runner = CliRunner()


def load_preset(path):
    return settings.load_file(path, RLConfig)


def resolve(cli, presets=(), saved=None):
    """`pr1 rl`'s resolution: flags over a resumed run's settings over the --config files."""
    return settings.resolve(RLConfig, cli, presets, saved=saved, may_change=MAY_CHANGE_ON_RESUME, flags=FLAGS)


def test_defaults_are_the_papers_constants():
    c = RLConfig(model="m")
    assert (c.samples, c.updates_per_step, c.clip_low, c.clip_high) == (8, 2, 0.2, 0.2)  # the reference's
    assert (c.dual_clip, c.weight_decay, c.max_grad_norm) == (3.0, 0.01, 1.0)  # verl's defaults
    assert (c.max_tokens, c.max_prompt_tokens, c.num_paths, c.max_blocks, c.max_path_tokens) == (
        3000,
        2000,
        2,
        4,
        4096,
    )
    assert (c.temperature, c.top_p, c.window, c.accuracy_steps, c.switch_step) == (1.0, 1.0, 10, 8, 200)
    assert c.mask_inserted and c.reward == "alternating"


@pytest.mark.parametrize("preset", RL_FILES)
def test_every_preset_resolves_and_explains_itself(preset):
    path = EXAMPLES / preset
    assert path.read_text().startswith("#")  # what it is and what changed from the paper
    cfg = resolve({"model": "m"}, presets=[path])
    assert cfg.model == "m"
    assert (cfg.batch * cfg.samples) % cfg.updates_per_step == 0


def test_presets_cover_the_papers_stages():
    stages = {p.removesuffix(".toml"): load_preset(EXAMPLES / p) for p in RL_FILES}
    assert stages["causal-stage1-gsm8k"]["reward"] == "parallel-accuracy"
    assert stages["causal-stage1-gsm8k"]["data"] == "gsm8k-train"
    assert stages["causal-stage2-dapo"]["reward"] == "accuracy"
    assert stages["structured-s1"]["variant"] == "structured"
    assert stages["structured-s2"]["reward"] == "alternating"
    assert stages["scaffold"]["reward"] == "scaffold" and stages["scaffold"]["switch_step"] == 200
    assert (
        stages["sequential-grpo"]["prompt_file"] == "sequential"
        and stages["sequential-grpo"]["mode"] == "free"
    )


def test_precedence_defaults_preset_saved_cli(tmp_path):
    preset = tmp_path / "p.toml"
    preset.write_text('model = "from-preset"\nsteps = 7\nlr = 1\nclip-high = 0.2\n')
    cfg = resolve({"steps": None, "batch": 4}, presets=[preset], saved={"steps": 9, "kind_of": "ignored"})
    assert cfg.model == "from-preset" and cfg.steps == 9 and cfg.batch == 4
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float) and cfg.clip_high == 0.2
    assert resolve({"steps": 3}, presets=[preset], saved={"steps": 9}).steps == 3


def test_config_files_layer_left_to_right(tmp_path):
    stage, profile = tmp_path / "stage.toml", tmp_path / "profile.toml"
    stage.write_text("steps = 7\nrollout_batch = 32\nmicro_batch = 8\n")
    profile.write_text("rollout-batch = 4\nmicro_batch = 2\n")
    cfg = resolve({"model": "m"}, presets=[stage, profile])
    assert (cfg.steps, cfg.rollout_batch, cfg.micro_batch) == (7, 4, 2)
    assert resolve({"model": "m"}, presets=[profile, stage]).rollout_batch == 32  # the later file wins
    assert resolve({"model": "m", "rollout_batch": 1}, presets=[stage, profile]).rollout_batch == 1
    # on --resume the run's saved settings come above every file, and flags above them
    assert resolve({"model": "m"}, presets=[stage, profile], saved={"rollout_batch": 8}).rollout_batch == 8


@pytest.mark.parametrize("stage", ["causal-stage1-gsm8k", "causal-stage2-dapo", "structured-s1", "structured-s2",
                                   "scaffold", "sequential-grpo"])  # fmt: skip
@pytest.mark.parametrize("profile", ["rl-24gb", "rl-80gb"])
def test_every_stage_preset_takes_every_hardware_profile(stage, profile):
    files = [EXAMPLES / f"{stage}.toml", EXAMPLES / f"{profile}.toml"]
    cfg = resolve({"model": "m"}, presets=files)
    staged, sized = load_preset(files[0]), load_preset(files[1])
    assert {k: getattr(cfg, k) for k in sized} == sized  # the profile's values win
    assert {k: getattr(cfg, k) for k in staged if k not in sized} == {
        k: v for k, v in staged.items() if k not in sized
    }
    assert not set(sized) & {
        "data",
        "reward",
        "variant",
        "mode",
        "steps",
        "lr",
        "samples",
        "batch",
    }  # sizes only
    assert batch_layout(cfg, 1)[0] <= cfg.micro_batch


@pytest.mark.parametrize(
    ("cli", "message"),
    [
        ({}, "--model is required"),
        ({"model": "m", "reward": "fast"}, "--reward 'fast'"),
        ({"model": "m", "variant": "tree"}, "--variant 'tree'"),
        ({"model": "m", "samples": 1}, "--samples 1"),
        ({"model": "m", "batch": 3, "samples": 3}, "updates_per_step=2"),
        ({"model": "m", "eval_every": 5}, "--eval-every needs --eval"),
        ({"model": "m", "steps": "ten"}, "command line: steps = 'ten': expected an integer"),
        ({"model": "m", "mask_inserted": 1}, "mask_inserted = 1: expected true or false"),
        ({"model": "m", "rollout_batch": 0}, "--rollout-batch 0: must be at least 1"),
        ({"model": "m", "stepz": 3}, "command line: unknown setting 'stepz'"),
        ({"model": "m", "clip_low": 1.5}, "--clip-low"),
    ],
)
def test_bad_settings_raise_one_line_errors(cli, message):
    with pytest.raises(Pr1Error, match=message.replace("(", r"\(").replace("|", r"\|")):
        resolve(cli)


def test_bad_preset_files(tmp_path):
    with pytest.raises(Pr1Error, match="no such file"):
        load_preset(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("steps = \n")
    with pytest.raises(Pr1Error, match="invalid TOML"):
        load_preset(bad)
    bad.write_text("stepz = 3\n")
    with pytest.raises(Pr1Error, match=r"--config .*bad.toml: unknown setting 'stepz'"):
        load_preset(bad)
    bad.write_text('steps = "ten"\n')
    with pytest.raises(Pr1Error, match=r"--config .*bad.toml: steps = 'ten': expected an integer"):
        load_preset(bad)
    bad.write_text("lr = [1e-6]\n")
    with pytest.raises(Pr1Error, match=r"bad.toml: lr = \[1e-06\]: expected a number"):
        load_preset(bad)
    bad.write_text("[grpo]\nsteps = 3\n")
    with pytest.raises(Pr1Error, match="flat"):
        load_preset(bad)
    good = tmp_path / "good.toml"
    good.write_text("steps = 3\n")
    with pytest.raises(Pr1Error, match=r"bad.toml: tables are not used"):  # the failing file of several
        resolve({"model": "m"}, presets=[good, bad])


@pytest.mark.parametrize(
    ("batch", "samples", "ups", "micro", "procs", "expected"),
    [
        (16, 8, 2, 8, 1, (8, 8)),  # 64 rollouts per update: 8 micro-batches of 8
        (1, 2, 2, 8, 1, (1, 1)),
        (4, 6, 2, 8, 1, (6, 2)),  # the largest divisor of 12 not above 8
        (16, 8, 2, 8, 4, (8, 2)),
    ],
)
def test_batch_layout(batch, samples, ups, micro, procs, expected):
    cfg = RLConfig(model="m", batch=batch, samples=samples, updates_per_step=ups, micro_batch=micro)
    assert batch_layout(cfg, procs) == expected


def test_batch_layout_refuses_uneven_processes():
    with pytest.raises(Pr1Error, match="do not split over 3 processes"):
        batch_layout(RLConfig(model="m", batch=2, samples=2), 3)


def test_grpo_config_matches_the_method(tmp_path):
    from trl import GRPOConfig

    cfg = RLConfig(model="m", batch=4, samples=4, steps=5, micro_batch=2, clip_high=0.28, save_every=2)
    args = grpo_args(cfg, GRPOConfig, tmp_path, 1)
    assert (args.loss_type, args.beta, args.epsilon, args.epsilon_high) == ("dapo", 0.0, 0.2, 0.28)
    assert args.scale_rewards == "group" and args.num_iterations == 1 and args.lr_scheduler_type == "constant"
    assert (
        args.num_generations == 4 and args.generation_batch_size == 16
    )  # one generation round = one RL step
    # 16 rollouts -> 2 updates of 8 rollouts -> micro-batches of 2 with 4 accumulation steps
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (2, 4)
    assert args.steps_per_generation == 8 and args.max_steps == 10 and args.save_steps == 4
    assert args.max_completion_length == 3000 and not args.mask_truncated_completions


def test_cli_errors_before_any_model_is_loaded(tmp_path):
    res = runner.invoke(app, ["rl", "--model", "m"])
    assert isinstance(res.exception, Pr1Error) and "--out" in str(res.exception)
    res = runner.invoke(app, ["rl", "--out", str(tmp_path / "r"), "--model", "m", "--reward", "nope"])
    assert isinstance(res.exception, Pr1Error) and "--reward 'nope'" in str(res.exception)
    other = tmp_path / "sft-run"
    other.mkdir()
    (other / "run.json").write_text(json.dumps({"kind": "sft", "config": {}}))
    res = runner.invoke(app, ["rl", "--out", str(other), "--model", "m"])
    assert isinstance(res.exception, Pr1Error) and "holds a 'sft' run" in str(res.exception)
    mine = tmp_path / "rl-run"
    mine.mkdir()
    (mine / "run.json").write_text(json.dumps({"kind": "rl", "config": {"model": "m"}}))
    res = runner.invoke(app, ["rl", "--out", str(mine)])
    assert isinstance(res.exception, Pr1Error) and "--resume" in str(res.exception)
    res = runner.invoke(
        app, ["rl", "--out", str(tmp_path / "r2"), "--model", "m", "--data", str(tmp_path / "x.jsonl")]
    )
    assert isinstance(res.exception, Pr1Error) and "x.jsonl: no such file" in str(res.exception)
    assert not (tmp_path / "r2").exists()  # nothing was created for a run that could not start


def test_cli_reports_errors_in_one_line(tmp_path):
    import subprocess
    import sys

    res = subprocess.run(
        [sys.executable, "-m", "pr1", "rl", "--out", str(tmp_path / "r"), "--model", "m", "--samples", "1"],
        capture_output=True,
        text=True,
    )
    assert (
        res.returncode == 2
        and res.stderr.strip() == "error: --samples 1: GRPO needs at least 2 samples per prompt"
    )


@pytest.mark.parametrize("rollout_batch", [2, 3])
def test_rollout_batch_is_how_many_trajectories_the_engine_decodes_at_once(tiny, monkeypatch, rollout_batch):
    """`rollout_batch` reaches the engine through EngineRollout: in free mode (one cache row per trajectory)
    the rows decoded together never exceed it, and reach it while enough trajectories wait."""
    from types import SimpleNamespace

    import torch
    from accelerate import Accelerator

    from pr1.rl.rollout import EngineRollout
    from pr1.rollout.row_decoder import RowDecoder

    model, tok = tiny
    cfg = resolve({"model": "tiny", "mode": "free", "rollout_batch": rollout_batch, "max_tokens": 5})
    widths = []
    forward = RowDecoder.forward
    monkeypatch.setattr(
        RowDecoder, "forward", lambda self, rows, *a: widths.append(len(rows)) or forward(self, rows, *a)
    )

    def no_eos(contexts, logits):  # every trajectory runs to max_tokens, so none frees its row early
        return logits.index_fill(1, torch.tensor(sorted(rollout.engine.eos_ids)), float("-inf"))

    rollout = EngineRollout(cfg, tok, "hf", logits_processor=no_eos)
    trainer = SimpleNamespace(
        model_wrapped=model,
        accelerator=Accelerator(cpu=True),
        args=SimpleNamespace(ds3_gather_for_generation=True),
        state=SimpleNamespace(global_step=0),
    )
    out = rollout(["What is 1+1?"] * 3 + ["What is 2+2?"] * 3, trainer)
    assert rollout.engine.config.rollout_batch == rollout_batch
    assert len(out["completion_ids"]) == 6 and all(len(c) == 5 for c in out["completion_ids"])
    assert max(widths) == rollout_batch


def test_cli_layers_repeated_config_files_and_flags(tmp_path, monkeypatch):
    seen = {}

    class Started(Exception):
        pass

    def fake_train(cfg, out, resume=False):
        seen["cfg"] = cfg
        raise Started

    monkeypatch.setattr("pr1.rl.trainer.train", fake_train)
    stage, profile = EXAMPLES / "structured-s2.toml", EXAMPLES / "rl-24gb.toml"
    args = [
        "rl",
        "--config",
        str(stage),
        "--config",
        str(profile),
        "--model",
        "m",
        "--out",
        str(tmp_path / "r"),
    ]
    res = runner.invoke(app, [*args, "--steps", "7"])
    assert isinstance(res.exception, Started)
    cfg = seen["cfg"]
    assert (cfg.reward, cfg.variant, cfg.mode) == ("alternating", "structured", "structured")  # the stage
    assert (cfg.rollout_batch, cfg.micro_batch) == (7, 4) and cfg.steps == 7  # the profile, then the flag
    res = runner.invoke(app, [*args, "--rollout-batch", "2"])
    assert isinstance(res.exception, Started) and seen["cfg"].rollout_batch == 2
    res = runner.invoke(
        app, ["rl", "--config", str(tmp_path / "no.toml"), "--model", "m", "--out", str(tmp_path / "r")]
    )
    assert isinstance(res.exception, Pr1Error) and "no.toml: no such file" in str(res.exception)


def test_presets_clip_like_their_reference_scripts():
    clips = {p.removesuffix(".toml"): load_preset(EXAMPLES / p).get("clip_high") for p in RL_FILES}
    assert clips["structured-s1"] == clips["causal-stage1-gsm8k"] == 0.2  # verl's default, symmetric
    assert clips["structured-s2"] == clips["causal-stage2-dapo"] == 0.28  # the stage-2 scripts
    scaffold = resolve({"model": "m"}, presets=[EXAMPLES / "scaffold.toml"])
    assert scaffold.variant == "structured"  # the reference scaffold continues a structured S2 run
    assert [scaffold.clip_high_at(s) for s in (1, 200, 201, 400)] == [0.28, 0.28, 0.2, 0.2]
    assert RLConfig(model="m", reward="alternating", scaffold_clip_high=0.1).clip_high_at(300) == 0.2


def test_dual_clip_reaches_trl_and_must_lie_above_the_clip_range(tmp_path):
    from trl import GRPOConfig

    assert grpo_args(RLConfig(model="m"), GRPOConfig, tmp_path, 1).delta == 3.0
    assert grpo_args(RLConfig(model="m", dual_clip=None), GRPOConfig, tmp_path, 1).delta is None
    with pytest.raises(Pr1Error, match=r"^config key dual_clip=1.2 must exceed 1 \+ --clip-high 0.2 "):
        resolve({"model": "m", "dual_clip": 1.2})
