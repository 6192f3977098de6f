"""One turn of `pr1 chat`: the problem as a collapsible title, the live trace tree, the answer line."""

from __future__ import annotations

from textual.widgets import Collapsible

from pr1.tui.chat_session import Turn
from pr1.tui.widgets.answer_line import AnswerLine
from pr1.tui.widgets.trace_tree import TraceView


def _title(number: int, problem: str, width: int = 200) -> str:
    line = " ".join(problem.split())
    return f"#{number}  " + (line if len(line) <= width else line[: width - 1] + "…")


class TurnView(Collapsible):
    def __init__(self, number: int, turn: Turn):
        self.turn = turn
        self.trace = TraceView(live=True, classes="turn-trace")
        self.answer = AnswerLine("generating … (esc stops)", classes="turn-answer")
        super().__init__(
            self.trace, self.answer, title=_title(number, turn.problem), collapsed=False, classes="turn"
        )

    def show_result(self) -> None:
        """The finished turn: its final text, answer, grade and lengths."""
        t = self.turn
        r = t.result
        if r is None:
            self.answer.update(f"error: {t.error}")
            self.answer.set_class(True, "-incorrect")
            return
        self.trace.show(r.text)
        notes = [f"{r.tokens} tokens"]
        if r.critical_path_tokens is not None:
            notes.append(f"critical path {r.critical_path_tokens}")
        if t.stopped:
            notes.append("stopped")
        elif r.truncated:
            notes.append("truncated")
        self.answer.set_verdict(t.pred, correct=t.correct, gold=t.answer or None, note=" · ".join(notes))
