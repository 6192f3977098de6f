"""Rewards of METHOD.md §4, as plain functions, and as TRL `GRPOTrainer` reward functions.

c = answer correct, n = number of `<Parallel>` blocks, f = format valid (by `Schedule.format_rules`: pr1's
rules of METHOD.md §1, or "reference", the reference code's more lenient checker; `pr1.format.validate`).

    accuracy           c ? +1 : -1
    tiered             c ∧ n≥1 ∧ f → +1.2;  c ∧ n=0 → +1.0;  else -1.0
    parallel-accuracy  c ∧ n≥1 ∧ f → +1;  else -1
    alternating        step s (first step = 1): accuracy if (s-1) % window < accuracy_steps, else tiered
    scaffold           alternating until `switch_step`, accuracy afterwards

TRL calls a reward function as `f(prompts=, completions=, completion_ids=, trainer_state=, **columns)`.
TRL decodes completions with `skip_special_tokens=True`, which deletes the tags; pr1's rollout passes the
tagged text in the extra column `tagged_text`, which these functions prefer when present. pr1's trainer
grades each completion once and hands the `pr1 score` records over in the column `SCORE_COLUMN`; a reward
function given it reads the grade from there instead of grading again (a second math-verify call could time
out where the first did not, and then the logged reward would not be the trained one). The training step is
`rl_step(trainer_state.global_step, updates_per_step)`, so the first step is 1; with several optimizer updates
per generation round (`updates_per_step`, TRL's `steps_per_generation`), a step is one round.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pr1.format import FORMAT_RULES, PARALLEL_OPEN, validate
from pr1.grading import grade

REWARD_NAMES = ("accuracy", "tiered", "parallel-accuracy", "alternating", "scaffold")
SCORE_COLUMN = "pr1_score"  # the trainer's `pr1 score` record of each completion, for the reward functions


def rl_step(global_step: int, updates_per_step: int) -> int:
    """The RL step (first = 1) of the generation round that runs when TRL has made `global_step` optimizer
    steps: each round makes `updates_per_step` of them. Steps done so far: `rl_step(...) - 1`."""
    return global_step // updates_per_step + 1


def accuracy(correct: bool) -> float:
    return 1.0 if correct else -1.0


def tiered(correct: bool, n_blocks: int, valid: bool) -> float:
    if correct and n_blocks >= 1 and valid:
        return 1.2
    if correct and n_blocks == 0:
        return 1.0
    return -1.0


def parallel_accuracy(correct: bool, n_blocks: int, valid: bool) -> float:
    return 1.0 if correct and n_blocks >= 1 and valid else -1.0


@dataclass(frozen=True)
class Schedule:
    """Which base reward ("accuracy" or "tiered" or "parallel-accuracy") is active at a step (first = 1), and
    the format rules (`pr1.format.FORMAT_RULES`) that judge f."""

    name: str = "accuracy"
    window: int = 10
    accuracy_steps: int = 8
    switch_step: int = 200
    format_rules: str = "pr1"

    def __post_init__(self) -> None:
        if self.name not in REWARD_NAMES:
            raise ValueError(f"unknown reward {self.name!r}; expected one of {', '.join(REWARD_NAMES)}")
        if self.format_rules not in FORMAT_RULES:
            raise ValueError(
                f"unknown format rules {self.format_rules!r}; expected one of {', '.join(FORMAT_RULES)}"
            )
        if not 0 <= self.accuracy_steps <= self.window or self.window < 1:
            raise ValueError("alternating schedule needs 0 <= accuracy_steps <= window and window >= 1")

    def active(self, step: int) -> str:
        if self.name == "alternating" or (self.name == "scaffold" and step <= self.switch_step):
            return "accuracy" if (step - 1) % self.window < self.accuracy_steps else "tiered"
        if self.name == "scaffold":
            return "accuracy"
        return self.name


def reward_value(name: str, correct: bool, n_blocks: int, valid: bool) -> float:
    """Value of a base reward ("accuracy", "tiered", "parallel-accuracy")."""
    if name == "accuracy":
        return accuracy(correct)
    if name == "tiered":
        return tiered(correct, n_blocks, valid)
    if name == "parallel-accuracy":
        return parallel_accuracy(correct, n_blocks, valid)
    raise ValueError(f"{name!r} is a schedule, not a base reward")


def score_reward(schedule: Schedule, step: int, correct: bool, n_blocks: int, valid: bool) -> float:
    return reward_value(schedule.active(step), correct, n_blocks, valid)


# ------------------------------------------------------------------------------------- TRL reward funcs


def _text(completion: Any) -> str:
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):  # conversational: [{"role": "assistant", "content": ...}]
        return "".join(str(m.get("content", "")) for m in completion if isinstance(m, dict))
    return str(completion)


def make_reward_func(
    reward: str | Schedule, *, answer_key: str = "answer", updates_per_step: int = 1
) -> Callable[..., list[float]]:
    """A TRL-compatible reward function for `reward` (a name or a Schedule). `updates_per_step` optimizer
    steps make one training step (rewards are computed at the start of each round). With the column
    `SCORE_COLUMN` (one `pr1 score` record per completion) it uses their grade and format check; without
    it, it grades the tagged text (or the completions) itself."""
    schedule = reward if isinstance(reward, Schedule) else Schedule(reward)

    def reward_func(
        completions: Sequence[Any],
        trainer_state: Any = None,
        tagged_text: Sequence[str] | None = None,
        **columns: Any,
    ) -> list[float]:
        step = rl_step(int(getattr(trainer_state, "global_step", 0)), updates_per_step)
        records = columns.get(SCORE_COLUMN)
        if records is not None:
            return [
                score_reward(schedule, step, r["correct"], r["n_blocks"], r["format_valid"]) for r in records
            ]
        texts = list(tagged_text) if tagged_text is not None else [_text(c) for c in completions]
        answers = columns.get(answer_key)
        if answers is None:
            raise KeyError(f"reward function needs the dataset column {answer_key!r}")
        out = []
        for text, gold in zip(texts, answers, strict=True):
            out.append(
                score_reward(
                    schedule,
                    step,
                    grade(text, gold).correct,
                    text.count(PARALLEL_OPEN),
                    not validate(text, schedule.format_rules),
                )
            )
        return out

    reward_func.__name__ = f"{schedule.name.replace('-', '_')}_reward"
    return reward_func
