"""The fork/join rollout engine: `RolloutEngine(model, tokenizer, RolloutConfig(...)).generate(prompts, n)`.

The settings and output types import without torch (the CLI builds its flags from `RolloutConfig`); the
engines load on first use: `VLLMRolloutEngine` (the same contract on vLLM) only where vLLM is installed.
"""

from __future__ import annotations

from typing import Any

from pr1.rollout.config import RolloutConfig, TokenEvent, Trajectory
from pr1.rollout.engines import vllm_available

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


def __getattr__(name: str) -> Any:
    if name == "RolloutEngine":
        from pr1.rollout.engine import RolloutEngine

        return RolloutEngine
    if name == "VLLMRolloutEngine":
        from pr1.rollout.vllm_engine import VLLMRolloutEngine

        return VLLMRolloutEngine
    if name in ("ForcedSchedule", "SampleContext"):
        from pr1.rollout import sampling

        return getattr(sampling, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
