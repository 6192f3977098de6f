"""One turn of `pr1 chat`: the problem as a collapsible title, the live trace tree, the answer line, and a line
with the format check, the token counts and the seed."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Collapsible, Static

from pr1.tui.chat_session import Turn
from pr1.tui.widgets.answer_line import AnswerLine
from pr1.tui.widgets.trace_tree import TraceView


def _title(number: int, problem: str, width: int = 200) -> str:
    line = " ".join(problem.split())
    return f"#{number}  " + (line if len(line) <= width else line[: width - 1] + "…")


def format_check(errors: list[str]) -> Content:
    """`format ✓ valid`, or `format ✗` with the first reason (and how many more there are)."""
    if not errors:
        return Content.assemble(("format ✓ valid", "bold"))
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return Content.assemble(("format ✗ ", "bold"), errors[0], more)


class TurnView(Collapsible):
    def __init__(self, number: int, turn: Turn):
        self.turn = turn
        self.trace = TraceView(live=True, classes="turn-trace")
        self.answer = AnswerLine("", classes="turn-answer")
        self.details = Static(classes="turn-details")
        self.details.display = False
        super().__init__(
            self.trace,
            self.answer,
            self.details,
            title=_title(number, turn.problem),
            collapsed=False,
            classes="turn",
        )

    def show_result(self) -> None:
        """The finished turn as it is saved: its text, answer, grade, format check, lengths and seed."""
        t = self.turn
        cut = "stopped" if t.stopped else "truncated" if t.truncated else "unfinished"
        self.trace.show(t.text, unfinished=cut)
        counts = f"{t.tokens} tokens · critical path {t.critical_path_tokens} · seed {t.settings.seed}"
        if t.error is not None:
            self.answer.update(f"error: {t.error}")
            self.answer.set_class(True, "-incorrect")
            self.details.update(counts)
        else:
            self.answer.set_verdict(
                t.pred,
                correct=t.correct,
                gold=t.answer or None,
                note={"stopped": "stopped", "truncated": "truncated (max tokens)"}.get(cut, ""),
            )
            self.details.update(Content.assemble(format_check(t.format_errors), " · ", counts))
            self.details.set_class(bool(t.format_errors), "-invalid")
        self.details.display = True
