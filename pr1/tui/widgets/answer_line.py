"""The last line under a trace: the extracted answer, whether it is right, and its reward."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static


class AnswerLine(Static):
    def set_verdict(
        self,
        pred: str | None,
        *,
        correct: bool | None = None,
        reward: float | None = None,
        gold: str | None = None,
        note: str = "",
    ) -> None:
        """`correct=None`: no gold answer to compare with."""
        pieces: list[str | tuple[str, str]] = [("Final answer: ", "bold")]
        pieces.append(pred if pred is not None else ("none found", "italic"))
        if correct is not None:
            pieces.append(("  ✓ correct" if correct else "  ✗ incorrect", "bold"))
        if gold not in (None, ""):
            pieces.append(f"  (gold {gold})")
        if reward is not None:
            pieces.append(f"  reward {reward:+.2f}")
        if note:
            pieces.append(f"  · {note}")
        self.set_class(correct is True, "-correct")
        self.set_class(correct is False, "-incorrect")
        self.update(Content.assemble(*pieces))
