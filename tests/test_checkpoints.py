"""pr1/checkpoints.py: a trainer checkpoint is adopted as step-NNNNNN and counts once complete, pruning keeps
the newest complete ones, `final/` appears only complete."""

import json
from pathlib import Path

import pytest

from pr1.checkpoints import (
    adopt,
    checkpoint_dir,
    checkpoint_step,
    latest_checkpoint,
    mark_checkpoint_complete,
    prune,
    save_final,
)
from pr1.runs import Run


def test_checkpoints_count_only_when_complete(tmp_path):
    Run.create(tmp_path, "sft", {})
    assert latest_checkpoint(tmp_path) is None
    c1, c2 = checkpoint_dir(tmp_path, 10), checkpoint_dir(tmp_path, 20)
    c1.mkdir(parents=True)
    c2.mkdir(parents=True)
    mark_checkpoint_complete(c1, step=10)
    assert latest_checkpoint(tmp_path) == c1  # step 20 was interrupted before it completed


def _written(tmp_path, global_step):
    """What transformers' Trainer writes: OUTPUT_DIR/checkpoint-N."""
    folder = tmp_path / "checkpoints" / f"checkpoint-{global_step}"
    folder.mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_text(str(global_step))
    return folder


def test_adopt_renames_then_marks_complete_and_replaces_an_incomplete_one(tmp_path):
    stale = checkpoint_dir(tmp_path, 2)
    stale.mkdir(parents=True)
    (stale / "half-written").write_text("")  # an interrupted save of the same step
    target = adopt(_written(tmp_path, 4), tmp_path, 2, global_step=4)
    assert target == stale and checkpoint_step(target) == 2
    assert sorted(p.name for p in target.iterdir()) == ["COMPLETE", "adapter_model.safetensors"]
    assert json.loads((target / "COMPLETE").read_text())["global_step"] == 4
    assert not (tmp_path / "checkpoints" / "checkpoint-4").exists() and latest_checkpoint(tmp_path) == target
    assert adopt(tmp_path / "checkpoints" / "checkpoint-6", tmp_path, 3) is None  # the trainer wrote nothing


def test_prune_keeps_the_newest_complete_checkpoints(tmp_path):
    for step in (1, 2, 3):
        adopt(_written(tmp_path, step), tmp_path, step)
    checkpoint_dir(tmp_path, 4).mkdir()  # incomplete: neither counted nor deleted
    prune(tmp_path, 2)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "step-000002",
        "step-000003",
        "step-000004",
    ]
    prune(tmp_path, 0)  # 0 keeps them all
    assert latest_checkpoint(tmp_path) == checkpoint_dir(tmp_path, 3)


def test_final_appears_only_complete(tmp_path):
    def save(folder):
        Path(folder).mkdir()
        (Path(folder) / "adapter_model.safetensors").write_text("new")

    (tmp_path / "final").mkdir()
    (tmp_path / "final" / "adapter_model.safetensors").write_text("old")

    def broken(folder):
        save(folder)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        save_final(tmp_path, broken)
    assert (tmp_path / "final" / "adapter_model.safetensors").read_text() == "old"  # the last complete save
    final = save_final(tmp_path, save)
    assert final == tmp_path / "final" and (final / "adapter_model.safetensors").read_text() == "new"
    assert not (tmp_path / ".final.partial").exists()
