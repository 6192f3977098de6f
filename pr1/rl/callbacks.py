"""Run-folder output of `pr1 rl`: one metrics row per RL step, sample rollouts, checkpoints, evaluations.

An RL step is one generation round (first = 1) followed by `updates_per_step` optimizer steps, so TRL's
global step g (optimizer steps done) belongs to RL step `pr1.rewards.rl_step(g, updates_per_step)` while it
is generating, and RL step s is complete when the global step reaches s * updates_per_step. The trainer
(pr1.rl.trainer) fills a `RoundStats` while it generates and scores; `RunCallback` adds the optimizer
figures TRL logs after each update and writes the row once the step's last update is done, before the
checkpoint of that step.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from transformers import TrainerCallback

from pr1 import checkpoints
from pr1.formatting import number, percent
from pr1.metrics_health import no_update_message
from pr1.rewards import rl_step
from pr1.runs import Run, peak_memory_gb
from pr1.score import SCORE_KEYS, summarise

BASE_REWARDS = ("accuracy", "tiered", "parallel-accuracy")
# TRL log key -> metrics.jsonl key; averaged over the updates of a step (lr: the last value)
TRL_KEYS = {
    "loss": "loss",
    "grad_norm": "grad_norm",
    "learning_rate": "lr",
    "clip_ratio/low_mean": "clip_ratio_low",
    "clip_ratio/high_mean": "clip_ratio_high",
    "entropy": "entropy",
    "frac_reward_zero_std": "frac_reward_zero_std",
}


@dataclass
class RoundStats:
    """What one generation round produced (gathered from every process)."""

    step: int
    phase: str
    records: list[dict] = field(default_factory=list)  # one per completion: score keys, lengths, text
    time_rollout: float = 0.0
    time_scoring: float = 0.0
    logprob_gap_mean: float | None = None
    logprob_gap_max: float | None = None


class StepRecorder:
    """Shared by the trainer (which fills `round` and says what it is doing now) and RunCallback (which writes
    the round out and shows the progress)."""

    def __init__(self) -> None:
        self.round: RoundStats | None = None
        self.time_rollout = 0.0
        self.on_activity: Callable[[str], None] | None = None

    def now(self, activity: str) -> None:
        """The trainer is now in `activity` of the step: "rollout", "scoring" or "update"."""
        if self.on_activity is not None:
            self.on_activity(activity)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def step_metrics(stats: RoundStats) -> dict[str, Any]:
    """The rollout half of a metrics row: the figures of the step's scored completions under the names of
    `pr1.score.summarise` (shared with eval and the dashboard), each base reward's mean, timings and the
    sampling/training log-prob gap."""
    recs = stats.records
    generated = sum(r.get("generated_tokens", r["tokens"]) for r in recs)
    figures = summarise(recs)
    row: dict[str, Any] = {"phase": stats.phase, **{k: v for k, v in figures.items() if k != "rows"}}
    for name in BASE_REWARDS:
        row[f"rewards/{name}/mean"] = _mean([r["rewards"][name] for r in recs])
    row.update(
        time_rollout=stats.time_rollout,
        time_scoring=stats.time_scoring,
        tokens_per_s=generated / stats.time_rollout if stats.time_rollout > 0 else None,
        logprob_gap_mean=stats.logprob_gap_mean,
        logprob_gap_max=stats.logprob_gap_max,
    )
    return row


# what each logged rollout keeps: the trajectory, its reward phase, the `pr1 score` record, its lengths
ROLLOUT_KEYS = (
    "id",
    "sample",
    "problem",
    "answer",
    "completion",
    "phase",
    *SCORE_KEYS,
    "tokens",
    "critical_path_tokens",
    "truncated",
)


class RunCallback(TrainerCallback):
    """Writes metrics.jsonl / rollouts.jsonl / events.jsonl rows and adopts HF checkpoints as
    `checkpoints/step-NNNNNN/` (pr1.checkpoints), on the main process only."""

    def __init__(
        self,
        run: Run | None,
        recorder: StepRecorder,
        *,
        updates_per_step: int,
        total_steps: int,
        log_rollouts: int,
        eval_every: int = 0,
        evaluate: Callable[[int, Path], dict[str, Any]] | None = None,
    ) -> None:
        self.run = run
        self.recorder = recorder
        self.ups = updates_per_step
        self.total_steps = total_steps
        self.log_rollouts = log_rollouts
        self.eval_every = eval_every
        self.evaluate = evaluate  # (step, checkpoint folder) -> {metric: value}
        self.updates: dict[str, list[float]] = defaultdict(list)
        self.round_start: float | None = None
        self.progress: Progress | None = None
        self.task = None

    # -- progress
    def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001
        if self.run is None:
            return
        done = rl_step(state.global_step, self.ups) - 1
        self.progress = Progress(
            TextColumn("[bold]rl"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[cyan]{task.fields[activity]:<8}"),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
        )
        self.task = self.progress.add_task("", total=self.total_steps, completed=done, activity="")
        self.recorder.on_activity = self._activity
        self.progress.start()

    def _activity(self, activity: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, activity=activity)

    def on_train_end(self, args, state, control, **kwargs):  # noqa: ANN001
        self.close()

    def close(self) -> None:
        """Stop the progress display (also when training stops with an error)."""
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    # -- metrics
    def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001
        if state.global_step % self.ups == 0:
            self.round_start = time.perf_counter()

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
        for key in TRL_KEYS:
            value = (logs or {}).get(key)
            if isinstance(value, (int, float)) and not math.isnan(value):
                self.updates[key].append(float(value))
        if state.global_step % self.ups or state.global_step == 0:
            return
        stats, self.recorder.round = self.recorder.round, None
        updates, self.updates = self.updates, defaultdict(list)
        if stats is None or self.run is None:
            return
        row = step_metrics(stats)
        for key, name in TRL_KEYS.items():
            values = updates.get(key)
            if values:
                row[name] = values[-1] if key == "learning_rate" else sum(values) / len(values)
        elapsed = time.perf_counter() - self.round_start if self.round_start is not None else None
        if elapsed is not None:
            row["time_update"] = max(0.0, elapsed - stats.time_rollout - stats.time_scoring)
        row["memory_gb"] = peak_memory_gb()
        self.run.log_metrics(stats.step, **row)
        if self.log_rollouts:
            kept = [{k: r.get(k) for k in ROLLOUT_KEYS} for r in stats.records[: self.log_rollouts]]
            self.run.log_rollouts(stats.step, kept)
        if self.progress is not None:
            loss = row.get("loss")
            self.progress.update(
                self.task,
                completed=stats.step,
                activity="",
                description=(
                    f"step {stats.step} {stats.phase:<17} reward {row['reward_mean']:+.3f}  "
                    f"acc {percent(row['accuracy'])}  loss {number(loss, 4)}  {elapsed or 0:.0f} s/step"
                ),
            )
            if (message := no_update_message({"step": stats.step, **row})) is not None:
                self.progress.console.print(f"[yellow]{message}")

    # -- checkpoints and evaluations
    def _eval_due(self, global_step: int) -> bool:
        step, rest = divmod(global_step, self.ups)
        return bool(self.evaluate and self.eval_every and not rest and step % self.eval_every == 0)

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
        if self._eval_due(state.global_step):
            control.should_save = True  # the evaluation reads that step's checkpoint
        return control

    def on_save(self, args, state, control, **kwargs):  # noqa: ANN001
        if self.run is None or state.global_step % self.ups:
            return
        step = rl_step(state.global_step, self.ups) - 1  # the step whose last update was just made
        written = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        target = checkpoints.adopt(written, self.run.path, step, global_step=state.global_step)
        if target is None:
            return
        self.run.event("checkpoint", step=step, path=str(target))
        if self._eval_due(state.global_step):
            self._evaluate(step, target)

    def _evaluate(self, step: int, checkpoint: Path) -> None:
        assert self.evaluate is not None and self.run is not None
        if self.progress is not None:  # the evaluation shows its own progress bar
            self.progress.stop()
        try:
            figures = self.evaluate(step, checkpoint)
        finally:
            if self.progress is not None:
                self.progress.start()
        for bench, values in figures.items():
            self.run.event("eval", step=step, bench=bench, **values)
            self.run.log_metrics(step, **{f"eval/{bench}/{k}": v for k, v in values.items()})
