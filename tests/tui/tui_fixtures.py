"""Deterministic fixtures for the TUI tests, snapshots and screenshots: run folders (fixed times and
values) and recorded rollout-engine events replayed in place of a model."""

from __future__ import annotations

import math
import random
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from pr1.jsonl import JsonlWriter, write_json_atomic
from pr1.rewards import Schedule
from pr1.score import score_completion

T0 = 1_760_000_000.0  # fixed start time

PROBLEMS = [
    (
        "gsm8k-0",
        "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips to her "
        "friends in May. How many clips did Natalia sell altogether in April and May?",
        "72",
    ),
    (
        "gsm8k-1",
        "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. "
        "How much did she earn?",
        "10",
    ),
    (
        "gsm8k-2",
        "Betty is saving money for a new wallet which costs $100. Betty has only half of the money she "
        "needs. Her parents decided to give her $15 for that purpose, and her grandparents twice as much "
        "as her parents. How much more money does Betty need to buy the wallet?",
        "5",
    ),
]

COMPLETIONS = {
    "gsm8k-0": [
        "Natalia sold 48 clips in April. In May she sold half as many, so first find the May sales.\n"
        "<Parallel><Path>Half of 48 is 48 / 2 = 24, so she sold 24 clips in May.</Path>"
        "<Path>Selling half as many means 48 × 0.5 = 24 clips in May.</Path></Parallel>\n"
        "<Summary>Both ways give 24 clips in May.</Summary>\n"
        "Altogether she sold 48 + 24 = 72 clips.\nFinal Answer: 72",
        "April: 48 clips. May: 48 / 2 = 24 clips. Total: 48 + 24 = 72.\nFinal Answer: 72",
        "She sold 48 clips and then half, so 48 / 2 = 24.\nFinal Answer: 24",
    ],
    "gsm8k-1": [
        "Weng earns $12 per hour, and 50 minutes is part of an hour.\n"
        "<Parallel><Path>Per minute she earns 12 / 60 = $0.2, so 50 minutes pay 0.2 × 50 = $10.</Path>"
        "<Path>50 minutes is 5/6 of an hour, and 5/6 × 12 = $10.</Path>"
        "<Path>An hour pays 12, ten minutes pay 2, so 50 minutes pay 12 − 2 = $10.</Path></Parallel>\n"
        "<Summary>All three paths agree: $10.</Summary>\nFinal Answer: 10",
        "<Parallel><Path>12 × 50 = 600 dollars.</Path><Path>50 / 60 × 12 = 10</Path></Parallel>\n"
        "Final Answer: 600",
    ],
    "gsm8k-2": [
        "The wallet costs $100 and Betty has half: $50.\n"
        "<Parallel><Path>Parents give $15, grandparents twice as much: $30.</Path>"
        "<Path>Gifts total 15 + 2 × 15 = $45.</Path></Parallel>\n"
        "<Summary>She receives $45 in gifts.</Summary>\n"
        "Then she has 50 + 45 = 95, and needs 100 − 95 = 5 more.\n"
        "<Parallel><Path>100 − 95 = 5.</Path><Path>Check: 95 + 5 = 100.</Path></Parallel>\n"
        "<Summary>She needs $5 more.</Summary>\nFinal Answer: 5",
        "Betty has 50. Parents 15, grandparents 30. 50 + 15 + 30 = 95. She needs 100 - 95 = 5.\nFinal Answer: 5",
    ],
}


def _info(path: Path, kind: str, status: str, config: dict, total_steps: int | None) -> dict:
    info = {
        "kind": kind,
        "name": path.name,
        "created": T0,
        "status": status,
        "command": ["pr1", kind],
        "config": config,
        "versions": {"python": "3.12.0", "pr1": "0.1.0"},
    }
    if total_steps:
        info["total_steps"] = total_steps
    return info


def rollout_rows(step: int, phase: str | None = None) -> list[dict]:
    rows = []
    for pid, problem, answer in PROBLEMS:
        for sample, completion in enumerate(COMPLETIONS[pid]):
            score = score_completion(completion, answer, Schedule("alternating"), max(step, 1))
            row = {"step": step, "id": pid, "sample": sample, "problem": problem, "answer": answer}
            row |= {"completion": completion, **score, "tokens": len(completion.split()) * 2}
            if phase:
                row["phase"] = phase
            rows.append(row)
    return rows


NO_UPDATE_STEPS = (3, 17)  # steps of the RL fixture where every group has equal rewards


def rl_metrics(step: int, seed: int = 0) -> dict:
    rng = random.Random(step + 1000 * seed)
    phase = "accuracy" if (step - 1) % 10 < 8 else "tiered"
    acc = 0.35 + 0.3 * (1 - math.exp(-step / 25)) + rng.uniform(-0.04, 0.04) + 0.05 * seed
    par = min(1.0, 0.15 + step / 60 + rng.uniform(-0.05, 0.05))
    flat = step in NO_UPDATE_STEPS and not seed
    return {
        "step": step,
        "time": T0 + 30 * step,
        "phase": phase,
        "reward_mean": 2 * acc - 1 + (0.2 * par * acc if phase == "tiered" else 0.0),
        "reward_std": 0.8,
        "rewards/accuracy/mean": 2 * acc - 1,
        "rewards/tiered/mean": 2 * acc - 1 + 0.2 * par * acc,
        "accuracy": acc,
        "parallel_ratio": par,
        "format_valid_rate": min(1.0, 0.6 + step / 100),
        "blocks_mean": par * 1.3,
        "parallel_position_mean": 0.45 - step / 300 + rng.uniform(-0.02, 0.02),
        "response_tokens_mean": 420 + 3 * step + rng.uniform(-20, 20),
        "critical_path_tokens_mean": 380 + 1.5 * step + rng.uniform(-20, 20),
        "loss": 0.0 if flat else 0.02 * math.exp(-step / 40) + rng.uniform(0, 0.005),
        "lr": 1e-6,
        "tokens_per_s": 812.0 + rng.uniform(-30, 30),
        "memory_gb": 11.2,
        "frac_reward_zero_std": 1.0 if flat else max(0.0, 0.6 - step / 60 + rng.uniform(-0.1, 0.1)),
        "grad_norm": 0.0 if flat else 0.3 + rng.uniform(0, 0.2),
        "entropy": 0.9 - step / 100 + rng.uniform(-0.03, 0.03),
        "clip_ratio_low": 0.0 if flat else rng.uniform(0, 0.004),
        "clip_ratio_high": 0.0 if flat else rng.uniform(0, 0.01),
        "truncated_rate": max(0.0, 0.12 - step / 400 + rng.uniform(-0.02, 0.02)),
        "logprob_gap_mean": 0.004 + rng.uniform(0, 0.002),
        "logprob_gap_max": 0.3 + rng.uniform(0, 0.2),
        "time_rollout": 21.0 + rng.uniform(-2, 2),
        "time_scoring": 0.4,
        "time_update": 0.1 if flat else 8.0 + rng.uniform(-1, 1),
    }


def write_rl_run(
    path: Path,
    steps: int = 40,
    total: int = 200,
    status: str = "running",
    seed: int = 0,
    reward: str = "alternating",
) -> Path:
    """An RL run folder; `seed` > 0: another run of the same shape (other values, every step updates)."""
    config = {"model": "Qwen/Qwen3-4B-Base", "variant": "causal", "reward": reward}
    write_json_atomic(path / "run.json", _info(path, "rl", status, config, total))
    with JsonlWriter(path / "metrics.jsonl") as w:
        for s in range(1, steps + 1):
            w.write(rl_metrics(s, seed))
    with JsonlWriter(path / "rollouts.jsonl") as w:
        for s in range(10, steps + 1, 10):
            w.write_many(rollout_rows(s, rl_metrics(s)["phase"]))
    with JsonlWriter(path / "events.jsonl") as w:
        w.write({"event": "start", "time": T0})
        w.write({"event": "checkpoint", "time": T0 + 600, "step": 20, "path": "checkpoints/step-000020"})
        w.write({"event": "eval", "time": T0 + 660, "step": 20, "bench": "gsm8k", "accuracy": 0.512})
        w.write({"event": "notice", "time": T0 + 700, "message": "grad norm spike at step 23 (clipped)"})
    return path


def write_sft_run(path: Path, steps: int = 30) -> Path:
    write_json_atomic(path / "run.json", _info(path, "sft", "finished", {"model": "smollm2-135m"}, steps))
    with JsonlWriter(path / "metrics.jsonl") as w:
        for s in range(1, steps + 1):
            w.write(
                {
                    "step": s,
                    "time": T0 + 2 * s,
                    "loss": 2.5 * math.exp(-s / 10) + 0.3,
                    "lr": 2e-5 * min(1, s / 5),
                    "tokens_per_s": 1500.0,
                }
            )
    with JsonlWriter(path / "events.jsonl") as w:
        w.write({"event": "start", "time": T0})
        w.write({"event": "end", "time": T0 + 2 * steps, "status": "finished"})
    return path


def write_eval_run(path: Path) -> Path:
    """The folder `pr1 eval` writes: rollouts (step 0, with `bench`), one metrics row per benchmark,
    and summary.json {"model", "adapter", "benchmarks": {name: figures}}."""
    config = {"model": "runs/rl-s2/final", "benchmarks": ["gsm8k"], "samples": 3}
    write_json_atomic(path / "run.json", _info(path, "eval", "finished", config, None))
    rows = [r | {"bench": "gsm8k"} for r in rollout_rows(0)]
    with JsonlWriter(path / "rollouts.jsonl") as w:
        w.write_many(rows)
    n = len(rows)
    figures = {
        "problems": 3,
        "samples": 3,
        "rows": n,
        "mean_at_k": sum(r["correct"] for r in rows) / n,
        "pass_at_k": {"1": sum(r["correct"] for r in rows) / n, "2": 1.0},
        "maj_at_k": 1.0,
        "parallel_ratio": sum(r["parallel"] for r in rows) / n,
        "format_valid_rate": sum(r["format_valid"] for r in rows) / n,
        "blocks_mean": sum(r["n_blocks"] for r in rows) / n,
        "response_tokens_mean": sum(r["tokens"] for r in rows) / n,
    }
    write_json_atomic(
        path / "summary.json", {"model": config["model"], "adapter": None, "benchmarks": {"gsm8k": figures}}
    )
    with JsonlWriter(path / "metrics.jsonl") as w:
        w.write(
            {
                "step": 0,
                "time": T0 + 95,
                "bench": "gsm8k",
                "accuracy": figures["mean_at_k"],
                "tokens_per_s": 950.0,
            }
        )
    with JsonlWriter(path / "events.jsonl") as w:
        w.write({"event": "start", "time": T0})
        w.write(
            {"event": "eval", "time": T0 + 95, "step": 0, "bench": "gsm8k", "accuracy": figures["mean_at_k"]}
        )
        w.write({"event": "end", "time": T0 + 95, "status": "finished"})
    return path


DEMO_STAGES = {
    "base": {"accuracy": 0.25, "parallel_ratio": 0.0, "format_valid_rate": 0.0625, "blocks_mean": 0.0},
    "sft": {"accuracy": 0.3125, "parallel_ratio": 0.9375, "format_valid_rate": 0.875, "blocks_mean": 1.31},
    "rl": {"accuracy": 0.4375, "parallel_ratio": 1.0, "format_valid_rate": 0.9375, "blocks_mean": 1.5},
}


def write_demo_run(path: Path) -> Path:
    """The folder `pr1 demo` writes at its top: one metrics row per evaluated stage (steps 1–3, with
    `stage`), the stages' completions (with `stage` and `bench`), stage events."""
    write_json_atomic(path / "run.json", _info(path, "demo", "finished", {"model": "smollm2-135m"}, 3))
    with JsonlWriter(path / "metrics.jsonl") as w:
        for step, (stage, figures) in enumerate(DEMO_STAGES.items(), 1):
            tokens = {"base": 201.0, "sft": 188.5, "rl": 176.25}[stage]
            w.write(
                {"step": step, "time": T0 + 60 * step, "stage": stage, **figures}
                | {"response_tokens_mean": tokens, "no_answer_rate": 0.125 if stage == "base" else 0.0}
            )
    with JsonlWriter(path / "rollouts.jsonl") as w:
        for step, stage in enumerate(DEMO_STAGES, 1):
            w.write_many(
                r | {"step": step, "stage": stage, "bench": "eval_problems"} for r in rollout_rows(0)[:3]
            )
    with JsonlWriter(path / "events.jsonl") as w:
        w.write({"event": "start", "time": T0})
        for i, stage in enumerate(("data", "sft", "rl")):
            w.write({"event": "stage", "time": T0 + 100 * i, "stage": stage, "status": "start"})
            w.write(
                {
                    "event": "stage",
                    "time": T0 + 100 * i + 90,
                    "stage": stage,
                    "status": "end",
                    "seconds": 90.0,
                }
            )
        summary = {stage: dict(figures) for stage, figures in DEMO_STAGES.items()}
        w.write({"event": "end", "time": T0 + 400, "status": "finished", "minutes": 6.67, **summary})
    return path


# --------------------------------------------------------------------------------- recorded chat events


@dataclass
class Event:
    """The fields of `pr1.rollout.TokenEvent` that the chat app reads."""

    segment: str
    block: int | None
    path: int | None
    text: str
    inserted: bool = False
    done: bool = False
    trajectory: int = 0
    token_id: int = 0


def _words(text: str) -> list[str]:
    return re.findall(r"\S+\s*|\s+", text)


def layout(main: list[str], blocks: list[tuple[list[str], str]]) -> str:
    """The finished text of `record(main, blocks)`."""
    out = ""
    for b, (paths, summary) in enumerate(blocks):
        out += main[b] + "<Parallel>" + "".join(f"<Path>{p}</Path>" for p in paths)
        out += f"</Parallel>\n<Summary>{summary}</Summary>"
    return out + main[len(blocks)]


def record(main: list[str], blocks: list[tuple[list[str], str]]) -> list[Event]:
    """Events of a fork-mode trajectory as `pr1.rollout` emits them: main[0], block 0 (paths sampled
    together, so their tokens interleave; `<Path>` and `</Parallel>\\n<Summary>` inserted by the
    runtime), its summary, main[1], ... Words stand in for tokens."""
    events: list[Event] = []
    for b, (paths, summary) in enumerate(blocks):
        events += [Event("main", None, None, w) for w in _words(main[b])]
        events.append(Event("main", None, None, "<Parallel>"))
        events += [Event("path", b, p, "<Path>", inserted=True) for p in range(len(paths))]
        streams = [_words(p) + ["</Path>"] for p in paths]
        for i in range(max(map(len, streams))):
            events += [Event("path", b, p, s[i]) for p, s in enumerate(streams) if i < len(s)]
        events += [Event("summary", b, None, t, inserted=True) for t in ("</Parallel>", "\n", "<Summary>")]
        events += [Event("summary", b, None, w) for w in _words(summary)] + [
            Event("summary", b, None, "</Summary>")
        ]
    events += [Event("main", None, None, w) for w in _words(main[len(blocks)])]
    return events + [Event("main", None, None, "", done=True, token_id=-1)]


CHAT_PROBLEM = (
    "Betty needs $100 for a wallet and has half. Her parents give $15 and her grandparents twice that. "
    "How much more does she need?"
)
CHAT_PARTS = (
    [
        "Betty has half of $100, which is $50.\n",
        "\nSo she has 50 + 45 = 95 dollars.\n",
        "\nFinal Answer: 5",
    ],
    [
        (
            [
                "Parents give $15 and grandparents give 2 × 15 = $30.",
                "The gifts are 15 + 2 · 15 = $45 in total.",
            ],
            "The gifts add up to $45.",
        ),
        (["She needs 100 − 95 = 5 more.", "Check: 95 + 5 = 100, so 5 is right."], "She needs $5 more."),
    ],
)
CHAT_EVENTS = record(*CHAT_PARTS)
CHAT_TEXT = layout(*CHAT_PARTS)


class ReplayGenerator:
    """Plays recorded events as if a model generated them. `pause_at`: wait at that event until
    `resume` is set (or the stop event), to look at a generation in the middle. `loaded`: `load` waits
    for it (a model that takes a while to load); `notice`: what `load` returns."""

    name = "replay (recorded events)"

    def __init__(
        self,
        events: list[Event],
        *,
        delay: float = 0.0,
        pause_at: int | None = None,
        loaded: threading.Event | None = None,
        notice: str | None = None,
    ):
        self.events, self.delay, self.pause_at = events, delay, pause_at
        self.loaded, self.notice = loaded, notice
        self.resume = threading.Event()
        self.paused = threading.Event()

    def load(self) -> str | None:
        if self.loaded is not None:
            assert self.loaded.wait(10)
        return self.notice

    def generate(self, problem, settings, on_event, stop):  # noqa: ANN001
        from pr1.tui.chat_session import Generation

        for i, ev in enumerate(self.events):
            if i == self.pause_at:
                self.paused.set()
                while not (self.resume.is_set() or stop.is_set()):
                    time.sleep(0.01)
            if stop.is_set():
                return Generation(stopped=True)
            on_event(ev)
            if self.delay:
                time.sleep(self.delay)
        return Generation()
