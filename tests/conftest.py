"""Shared fixtures. Tests never touch the network: data comes from ../shared/data, models are built
from configs or converted from the embedded GGUF."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# before anything imports huggingface_hub, which reads these once
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _pr1_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test sees the shared data through PR1_DATA_DIR."""
    if SHARED_DATA.is_dir():
        monkeypatch.setenv("PR1_DATA_DIR", str(SHARED_DATA))


@pytest.fixture(scope="session")
def tiny() -> tuple:
    """A random-weight 2-layer Llama (tied embeddings) with the SmolLM2 tokenizer and the tags: (model, tokenizer).
    Shared by the whole session: do not modify it."""
    from pr1.models import tiny_model

    return tiny_model("llama")


@pytest.fixture(scope="session")
def tiny_qwen3() -> tuple:
    """Like `tiny`, but a Qwen3 with untied embeddings."""
    from pr1.models import tiny_model

    return tiny_model("qwen3")


@pytest.fixture(scope="session")
def sharp() -> tuple:
    """Like `tiny`, with peaked next-token distributions. The plain random model's are almost flat over 49k
    tokens, where float noise between batch layouts (1e-6) can flip a sample now and then."""
    import torch

    from pr1.models import tiny_model

    model, tok = tiny_model("llama", seed=1)
    with torch.no_grad():
        model.model.norm.weight.mul_(20)
    return model, tok


@pytest.fixture
def rl_files(tmp_path: Path) -> dict[str, str]:
    """A saved tiny Qwen3 (hidden size 128: big enough for Unsloth's 4-bit kernels), a one-line prompt
    template and four problems: the `model`, `data` and `prompt_file` settings of a `pr1 rl` run."""
    import json

    from pr1.models import save_model, tiny_model

    model, tok = tiny_model("qwen3", hidden_size=128, num_heads=4, num_kv_heads=2)
    save_model(model, tok, tmp_path / "tiny")
    (tmp_path / "template.txt").write_text("Q: {problem}")
    data = tmp_path / "problems.jsonl"
    data.write_text(
        "".join(
            json.dumps({"id": i, "problem": f"What is {i}+{i}?", "answer": 2 * i}) + "\n" for i in range(4)
        )
    )
    return {"model": str(tmp_path / "tiny"), "data": str(data), "prompt_file": str(tmp_path / "template.txt")}


@pytest.fixture(scope="session")
def smollm2() -> tuple:
    """The embedded SmolLM2-135M-Instruct (float32, tags added): (model, tokenizer). Do not modify it."""
    from pr1.models import load_model

    return load_model("smollm2-135m", dtype="float32", device="cpu")


@pytest.fixture(scope="session")
def vllm_engine():
    """One vLLM engine on the embedded model for the whole session (starting one takes ~20 s on CPU), with
    vLLM's stats on. Tests set `engine.config` to what they need; the LLM has room for 2,000 prompt tokens
    plus 3,000 completion tokens. Skipped where vLLM is not installed."""
    from pr1.rollout import vllm_available

    if not vllm_available():
        pytest.skip("vLLM is not installed (the CPU build: docs/VLLM.md)")
    from pr1.rollout import RolloutConfig
    from pr1.rollout.vllm_engine import VLLMRolloutEngine

    engine = VLLMRolloutEngine.from_model("smollm2-135m", RolloutConfig(), disable_log_stats=False)
    yield engine
    engine.close()
