"""The fork/join rollout engine: `RolloutEngine(model, tokenizer, RolloutConfig(...)).generate(prompts, n)`."""

from pr1.rollout.config import RolloutConfig, TokenEvent, Trajectory
from pr1.rollout.engine import RolloutEngine
from pr1.rollout.sampling import ForcedSchedule, SampleContext

__all__ = ["ForcedSchedule", "RolloutConfig", "RolloutEngine", "SampleContext", "TokenEvent", "Trajectory"]
