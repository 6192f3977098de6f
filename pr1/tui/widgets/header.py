"""The dashboard's header: which run, how far it is, how fast, and its status."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from pr1.tui.run_state import RunState

STATUS_STYLE = {
    "running": "bold $warning",
    "finished": "bold $success",
    "failed": "bold $error",
    "interrupted": "bold $error",
}


def step_seconds(metrics: list[dict], window: int = 20) -> float | None:
    """Mean wall time per step over the last `window` metric rows."""
    rows = [r for r in metrics[-window:] if isinstance(r.get("time"), (int, float))]
    if len(rows) < 2 or rows[-1]["step"] <= rows[0]["step"]:
        return None
    return (rows[-1]["time"] - rows[0]["time"]) / (rows[-1]["step"] - rows[0]["step"])


def format_duration(seconds: float) -> str:
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def bar(fraction: float, width: int = 24) -> str:
    filled = max(0, min(width, round(fraction * width)))
    return "━" * filled + "╺" * (filled < width) + "─" * max(0, width - filled - 1)


def _latest(metrics: list[dict], key: str) -> float | None:
    for row in reversed(metrics):
        if isinstance(row.get(key), (int, float)):
            return float(row[key])
    return None


def _config_value(info: dict, *keys: str) -> str | None:
    config = info.get("config") if isinstance(info.get("config"), dict) else {}
    for k in keys:
        if config.get(k) not in (None, ""):
            return str(config[k])
    return None


class RunHeader(Static):
    def show_state(self, state: RunState) -> None:
        info = state.info
        if not info:
            self.update(Content.assemble(("pr1 ", "bold"), f"{state.path} · waiting for run.json …"))
            return
        status = str(info.get("status", "?"))
        who = [str(info.get("kind", "?"))]
        who += [v for v in (_config_value(info, "model", "model_name", "base_model"),) if v]
        who += [v for v in (_config_value(info, "variant"),) if v]
        line1: list[str | tuple[str, str]] = [
            ("pr1 ", "bold $accent"),
            (str(info.get("name", state.path.name)), "bold"),
            "  " + " · ".join(who),
            "   ",
            (f"● {status}", STATUS_STYLE.get(status, "bold")),
        ]
        step = state.last_step
        total = info.get("total_steps")
        line2: list[str | tuple[str, str]] = []
        if state.kind == "eval":
            line2.append(f"{len(state.rollouts)} completions")
        elif step is not None and isinstance(total, int) and total > 0:
            frac = min(step / total, 1.0)
            line2 += [f"step {step}/{total} ", (bar(frac), "$accent"), f" {frac:4.0%}"]
            per_step = step_seconds(state.metrics)
            if status == "running" and per_step is not None and step < total:
                line2.append(f" · ETA {format_duration(per_step * (total - step))}")
        elif step is not None:
            line2.append(f"step {step}")
        tps = _latest(state.metrics, "tokens_per_s")
        if tps is not None:
            line2.append(f" · {tps:,.0f} tok/s")
        mem = _latest(state.metrics, "memory_gb")
        if mem is not None:
            line2.append(f" · {mem:.1f} GB")
        self.update(Content.assemble(*line1, "\n", *line2))
