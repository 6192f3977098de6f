"""The fork/join rollout engine: `RolloutEngine(model, tokenizer, RolloutConfig(...)).generate(prompts, n)`.

The settings and output types import without torch (the CLI builds its flags from `RolloutConfig`); the
engine loads on first use.
"""

from typing import Any

from pr1.rollout.config import RolloutConfig, TokenEvent, Trajectory

__all__ = ["ForcedSchedule", "RolloutConfig", "RolloutEngine", "SampleContext", "TokenEvent", "Trajectory"]


def __getattr__(name: str) -> Any:
    if name == "RolloutEngine":
        from pr1.rollout.engine import RolloutEngine

        return RolloutEngine
    if name in ("ForcedSchedule", "SampleContext"):
        from pr1.rollout import sampling

        return getattr(sampling, name)
    raise AttributeError(f"module 'pr1.rollout' has no attribute {name!r}")
