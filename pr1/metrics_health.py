"""GRPO health read from a metrics row: did this step update the model at all?

A GRPO step whose groups all have equal rewards has zero advantages everywhere, so its loss and gradient
are zero and the weights do not move (in `pr1 demo`, 8 of 10 RL steps were such steps). The dashboard
shows these steps, and the RL console can say the same with the same rule: import it from here (light: no
torch, no TRL)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pr1.formatting import is_number

EQUAL_REWARDS = "every group has equal rewards"
ZERO_GRADIENT = "loss and gradient are 0"


def _num(x: object) -> float | None:
    return float(x) if is_number(x) else None  # type: ignore[arg-type]


def no_update_reason(row: Mapping[str, object]) -> str | None:
    """Why the step of this metrics row moved no weights, or None when it did (or the row cannot tell).

    The rule: `frac_reward_zero_std` (the share of groups whose rewards all agree) is 1, or the step's
    `loss` and `grad_norm` are both 0."""
    if (frac := _num(row.get("frac_reward_zero_std"))) is not None and frac >= 1.0:
        return EQUAL_REWARDS
    loss, grad = _num(row.get("loss")), _num(row.get("grad_norm"))
    if loss == 0.0 and grad == 0.0:
        return ZERO_GRADIENT
    return None


def is_no_update(row: Mapping[str, object]) -> bool:
    return no_update_reason(row) is not None


def no_update_message(row: Mapping[str, object]) -> str | None:
    """ "step 3: every group has equal rewards — no update", or None for a step that updated."""
    reason = no_update_reason(row)
    return None if reason is None else f"step {row.get('step', '?')}: {reason} — no update"


def no_update_steps(rows: Iterable[Mapping[str, object]]) -> list[int]:
    """The steps (in order, each once) whose row says no update happened."""
    seen: dict[int, None] = {}
    for row in rows:
        step = row.get("step")
        if isinstance(step, int) and is_no_update(row):
            seen[step] = None
    return list(seen)


def trained_steps(rows: Iterable[Mapping[str, object]]) -> list[int]:
    """The steps that logged an optimiser figure (`loss` or `grad_norm`), i.e. the training steps; an
    evaluation row of the same step does not count twice."""
    seen: dict[int, None] = {}
    for row in rows:
        step = row.get("step")
        if isinstance(step, int) and ("loss" in row or "grad_norm" in row or "frac_reward_zero_std" in row):
            seen[step] = None
    return list(seen)


def no_update_summary(rows: Iterable[Mapping[str, object]]) -> str | None:
    """The end-of-run line: "8 of 10 steps made no update (steps 1, 2, 3, …)", or None when every step
    updated."""
    rows = list(rows)
    steps = no_update_steps(rows)
    if not steps:
        return None
    total = len(trained_steps(rows))
    shown = ", ".join(map(str, steps[:8])) + (", …" if len(steps) > 8 else "")
    return f"{len(steps)} of {total} steps made no update (step{'s' if len(steps) > 1 else ''} {shown})"
