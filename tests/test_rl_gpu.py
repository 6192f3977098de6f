"""`pr1 rl` on CUDA: the Unsloth backend (4-bit base + LoRA, Unsloth's patched GRPOTrainer) and the hf
backend's fused-LM-head scoring. Skipped without a GPU (no GPU was available when these were written)."""

import pytest

from pr1.backends import pick_backend, unsloth_available
from pr1.rl.config import RLConfig
from pr1.rl.trainer import train
from pr1.runs import read_metrics, read_run_info

pytestmark = pytest.mark.gpu


@pytest.fixture
def settings(rl_files):
    return {
        **rl_files,
        "reward": "alternating",
        "batch": 2,
        "samples": 4,
        "steps": 3,
        "max_tokens": 32,
        "lora_r": 8,
        "save_every": 3,
    }


@pytest.mark.skipif(not unsloth_available(), reason="Unsloth is not installed")
def test_unsloth_backend_trains_with_pr1_rollouts(tmp_path, settings):
    assert pick_backend("auto", "causal")[0] == "unsloth"
    out = tmp_path / "run"
    train(RLConfig(**{**settings, "backend": "unsloth"}), out)
    rows = read_metrics(out)
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert all(r["logprob_gap_max"] < 0.5 and r["memory_gb"] > 0 for r in rows)  # bf16 / 4-bit noise only
    assert read_run_info(out)["config"]["backend_used"] == "unsloth"
    assert (out / "checkpoints" / "step-000003" / "COMPLETE").exists()


@pytest.mark.parametrize("variant", ["causal", "structured"])
def test_hf_backend_on_cuda(tmp_path, settings, variant):
    out = tmp_path / "run"
    train(RLConfig(**{**settings, "backend": "hf", "variant": variant}), out)
    rows = read_metrics(out)
    assert [r["step"] for r in rows] == [1, 2, 3] and all(r["loss"] is not None for r in rows)
    assert read_run_info(out)["status"] == "finished"
