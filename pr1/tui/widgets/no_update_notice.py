"""The health tab's notice of GRPO steps that moved no weights (pr1.metrics_health decides which)."""

from __future__ import annotations

from collections.abc import Sequence

from textual.content import Content
from textual.widgets import Static

from pr1.metrics_health import no_update_message, no_update_steps, trained_steps
from pr1.tui.run_state import RunState


def notice_lines(runs: Sequence[RunState]) -> list[str]:
    """Per run with such steps: how many so far, of how many, and the latest one's message."""
    out = []
    for run in runs:
        steps = no_update_steps(run.metrics)
        if not steps:
            continue
        latest = next(r for r in reversed(run.metrics) if r.get("step") == steps[-1] and no_update_message(r))
        who = f"{run.name}: " if len(runs) > 1 else ""
        out.append(
            f"{who}{len(steps)} of {len(trained_steps(run.metrics))} steps without update so far · "
            f"latest: {no_update_message(latest)}"
        )
    return out


class NoUpdateNotice(Static):
    def show(self, runs: Sequence[RunState]) -> None:
        lines = notice_lines(runs)
        self.display = bool(lines)
        self.update(Content("\n").join(Content.styled("⚠ " + line, "bold $warning") for line in lines))
