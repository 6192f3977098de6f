"""The dashboard's header: which runs, how far each is, what it is doing now, how fast, and its status."""

from __future__ import annotations

from collections.abc import Sequence

from textual.content import Content
from textual.widgets import Static

from pr1.formatting import number
from pr1.metrics_health import no_update_steps
from pr1.rewards import Schedule
from pr1.tui.charts import run_colour
from pr1.tui.run_state import STAGED, RunState

STATUS_STYLE = {
    "running": "bold $warning",
    "finished": "bold $success",
    "failed": "bold $error",
    "interrupted": "bold $error",
    "stopped": "bold $error",
}
Piece = str | tuple[str, str]


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


def _config(info: dict) -> dict:
    return info.get("config") if isinstance(info.get("config"), dict) else {}


def _config_value(info: dict, *keys: str) -> str | None:
    config = _config(info)
    for k in keys:
        if config.get(k) not in (None, ""):
            return str(config[k])
    return None


def memory_label(info: dict) -> str:
    """What `memory_gb` measures for this run: peak CUDA allocation on a GPU, peak RSS on CPU (from the
    device run.json records, when it does), else just "peak memory"."""
    device = str(info.get("device") or _config(info).get("device") or "").lower()
    if device.startswith("cuda"):
        return "peak CUDA"
    if device == "cpu":
        return "peak RSS"
    return "peak memory"


def reward_phase(info: dict, step: int) -> str | None:
    """The active reward of an RL step, from the schedule in run.json's config (None when unknown)."""
    config = _config(info)
    if info.get("kind") != "rl" or not isinstance(config.get("reward"), str):
        return None
    fields = {
        k: config[k] for k in ("window", "accuracy_steps", "switch_step") if isinstance(config.get(k), int)
    }
    try:
        return Schedule(config["reward"], **fields).active(step)
    except ValueError:
        return None


def current_work(state: RunState) -> str | None:
    """What a running run is doing now, from what its folder says: the stage of a demo or an ablation (its last stage
    event), else the step in progress (the one after the last metrics row; RL writes a row per finished
    step) with its reward phase."""
    if state.status != "running":
        return None
    if state.kind in STAGED:
        stages = [e for e in state.events if e.get("event") == "stage"]
        if stages and stages[-1].get("status") == "start":
            return f"now stage {stages[-1].get('stage', '?')}"
        return None
    if state.kind == "eval":
        return None
    step = (state.last_step or 0) + 1
    total = state.info.get("total_steps")
    if isinstance(total, int) and step > total:
        return None
    phase = reward_phase(state.info, step)
    return f"now step {step}" + (f" ({phase})" if phase else "")


def no_update_count(state: RunState) -> list[Piece]:
    n = len(no_update_steps(state.metrics))
    return [(f"  ⚠ {n} no-update step{'s' if n > 1 else ''}", "bold $warning")] if n else []


def progress(state: RunState, bar_width: int = 20, *, brief: bool = False) -> list[Piece]:
    """Step / total with a bar, what runs now, ETA; unless `brief`, tokens/s and memory."""
    info = state.info
    step = state.last_step
    total = info.get("total_steps")
    out: list[Piece] = []
    if state.kind == "eval":
        out.append(f"{len(state.rollouts)} completions")
    elif isinstance(total, int) and total > 0:
        done = step or 0
        frac = min(done / total, 1.0)
        unit = "stage" if state.kind in STAGED else "step"  # their rows are evaluated stages
        out += [f"{unit} {done}/{total} ", (bar(frac, bar_width), "$accent"), f" {frac:4.0%}"]
    elif step is not None:
        out.append(f"step {step}")
    if not brief and (now := current_work(state)) is not None:
        out.append(f" · {now}")
    per_step = step_seconds(state.metrics)
    if state.status == "running" and per_step is not None and isinstance(total, int) and (step or 0) < total:
        out.append(f" · ETA {format_duration(per_step * (total - (step or 0)))}")
    if brief:
        return out
    if (tps := _latest(state.metrics, "tokens_per_s")) is not None:
        out.append(f" · {tps:,.0f} tok/s")
    if (mem := _latest(state.metrics, "memory_gb")) is not None:
        out.append(f" · {memory_label(info)} {number(mem, 1)} GB")
    return out


def _status(state: RunState) -> Piece:
    return (f"● {state.status}", STATUS_STYLE.get(state.status, "bold"))


class RunHeader(Static):
    def __init__(self, *, id: str | None = None):
        super().__init__(id=id)
        self.shown: Content | None = None

    def _set(self, content: Content) -> None:
        if content != self.shown:  # polled every second: repaint only what changed
            self.shown = content
            self.update(content)

    def show_runs(self, runs: Sequence[RunState], hidden: set[int] | frozenset[int] = frozenset()) -> None:
        if len(runs) == 1:
            self._set(Content.assemble(*self._one(runs[0])))
            return
        lines: list[Content] = [
            Content.assemble(("pr1 ", "bold $accent"), f"{len(runs)} runs (h shows/hides)")
        ]
        width = max(len(r.name) for r in runs)
        for i, run in enumerate(runs):
            colour = run_colour(i)
            mark: Piece = (f"{i + 1} " + ("□ " if i in hidden else "■ "), f"bold {colour}")
            if not run.info:
                lines.append(Content.assemble(mark, f"{run.name:<{width}}  waiting for run.json …"))
                continue
            pieces: list[Piece] = [
                mark,
                (f"{run.name:<{width}}", "bold"),
                f"  {run.kind:<5} ",
                _status(run),
                "  ",
            ]
            lines.append(Content.assemble(*pieces, *progress(run, 12, brief=True), *no_update_count(run)))
        self._set(Content("\n").join(lines))

    def _one(self, state: RunState) -> list[Piece]:
        info = state.info
        if not info:
            return [("pr1 ", "bold"), f"{state.path} · waiting for run.json …"]
        who = [state.kind or "?"]
        who += [v for v in (_config_value(info, "model", "model_name", "base_model"),) if v]
        who += [v for v in (_config_value(info, "variant"),) if v]
        head: list[Piece] = [
            ("pr1 ", "bold $accent"),
            (str(info.get("name", state.path.name)), "bold"),
            "  " + " · ".join(who),
            "   ",
            _status(state),
            *no_update_count(state),
        ]
        return [*head, "\n", *progress(state)]
