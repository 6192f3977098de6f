"""What `pr1 chat` generates with: its sampling settings, the model behind it, and its saved sessions."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from pr1.format import validate
from pr1.grading import extract_answer, grade
from pr1.jsonl import JsonlWriter
from pr1.prompts import PARALLEL_TEMPLATE, build_messages
from pr1.rollout.config import RolloutConfig
from pr1.settings import invalid, setting
from pr1.tui.live_trace import LiveTrace

NO_PARALLEL_TRAINING = (
    "This model has no parallel training, so it will not branch: run pr1 demo, then "
    "pr1 chat --adapter runs/demo/rl/final"
)
SEED_BOUND = 2**31  # seeds drawn for a turn without one are below this (short enough to retype)


@dataclass
class ChatSettings(RolloutConfig):
    """The sampling settings of a turn (the engine's, with the chat's own default temperature); the side panel
    edits them, and a bad value raises a `SettingError` naming it."""

    temperature: float = setting(0.7, "Sampling temperature (0 = greedy).", min=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_paths < 2:
            raise invalid("num_paths", self.num_paths, "a block needs at least 2 paths")

    def with_seed(self) -> ChatSettings:
        """These settings with a seed: their own, or a new random one (so that every turn can be repeated)."""
        return self if self.seed is not None else replace(self, seed=secrets.randbelow(SEED_BOUND))


@dataclass
class Generation:
    """How a generation ended. Its text and token counts are those of its events (the app's `LiveTrace`)."""

    truncated: bool = False  # the token budget ran out
    stopped: bool = False  # the stop event cut it short (never together with `truncated`)


class Generator(Protocol):
    """What the chat generates with: a model behind the rollout engine, or a replay in tests."""

    name: str

    def load(self) -> str | None:
        """Get ready to generate; the app calls it once, in a thread, while the user may already type.
        Returns a one-line notice for the user (the model cannot branch, ...) or None."""
        ...

    def generate(
        self,
        problem: str,
        settings: ChatSettings,
        on_event: Callable[[Any], None],
        stop: threading.Event,
    ) -> Generation: ...


@dataclass
class LoadedModel:
    engine: Any  # a rollout engine (`pr1.rollout.RolloutEngine` or `VLLMRolloutEngine`); each turn sets its config
    parallel_trained: bool  # its tokenizer held the tag tokens before pr1 added them (SFT saves them)


class EngineGenerator:
    """Generates with a rollout engine (one trajectory per problem), which `load_model` builds (it runs in
    `load`)."""

    def __init__(self, load_model: Callable[[], LoadedModel], name: str, template: str = PARALLEL_TEMPLATE):
        self._load_model, self.name, self.template = load_model, name, template
        self.engine: Any = None

    def load(self) -> str | None:
        loaded = self._load_model()
        self.engine = loaded.engine
        return None if loaded.parallel_trained else NO_PARALLEL_TRAINING

    def generate(
        self, problem: str, settings: ChatSettings, on_event: Callable[[Any], None], stop: threading.Event
    ) -> Generation:
        engine = self.engine
        engine.config = RolloutConfig.of(settings)
        (traj,) = engine.generate([build_messages(problem, self.template)], n=1, on_event=on_event, stop=stop)
        # the engine ends a stopped trajectory as truncated; it was the stop unless the budget ran out
        stopped = traj.truncated and stop.is_set() and len(traj.completion_ids) < settings.max_tokens
        return Generation(truncated=traj.truncated and not stopped, stopped=stopped)


@dataclass
class Turn:
    """One problem and its answer; `answer` is the gold answer the user gave ("" when none). `settings`
    always hold the seed the turn was sampled with. Once finished, `text`, the token counts and the format
    errors are those of the trace as drawn (`LiveTrace`), which is what a saved row holds."""

    problem: str
    answer: str
    settings: ChatSettings
    text: str = ""
    tokens: int | None = None  # every completion token, inserted tags included (as `pr1 eval` counts)
    critical_path_tokens: int | None = None
    truncated: bool = False  # the token budget ran out
    stopped: bool = False  # esc cut it short
    error: str | None = None
    finished: bool = False
    pred: str | None = None
    correct: bool | None = None
    format_errors: list[str] = field(default_factory=list)  # `pr1.format.validate`'s reasons
    created: float = field(default_factory=time.time)

    def finish(self, live: LiveTrace, result: Generation | None, error: str | None) -> None:
        """Record how the generation ended and what it drew; grade and check it."""
        self.text = live.final_text()
        self.tokens, self.critical_path_tokens = live.tokens, live.critical_path_tokens
        self.truncated = result is not None and result.truncated
        self.stopped = result is not None and result.stopped
        self.error, self.finished = error, True
        if error is None:
            self.score()

    def score(self) -> None:
        """Extract the answer, grade it when the user gave a gold answer, and check the format."""
        if self.answer:
            g = grade(self.text, self.answer)
            self.pred, self.correct = g.pred, g.correct
        else:
            self.pred = extract_answer(self.text)[0]
        self.format_errors = validate(self.text)

    def row(self, model: str) -> dict:
        """The saved JSONL row: `completion` and `answer` are what `pr1 score` reads; `format_valid` and
        `format_errors` are named as in its records."""
        return {
            "problem": self.problem,
            "answer": self.answer,
            "completion": self.text,
            "model": model,
            **asdict(self.settings),
            "tokens": self.tokens,
            "critical_path_tokens": self.critical_path_tokens,
            "truncated": self.truncated,
            "stopped": self.stopped,
            "format_valid": None if self.error else not self.format_errors,
            "format_errors": self.format_errors,
            "error": self.error,
            "time": self.created,
        }


def split_answer(line: str) -> tuple[str, str]:
    """ "problem || gold answer" -> (problem, answer); without "||" the answer is ""."""
    problem, sep, answer = line.rpartition("||")
    return (problem.strip(), answer.strip()) if sep else (line.strip(), "")


class SessionFile:
    """Appends finished turns to a JSON Lines file, each once."""

    def __init__(self, path: str | Path, model: str):
        self.path = Path(path)
        self.model = model
        self.saved = 0

    def save(self, turns: list[Turn]) -> int:
        """Append the finished turns not saved yet (turns finish in order); returns how many."""
        todo = []
        for t in turns[self.saved :]:
            if not t.finished:
                break
            todo.append(t)
        if todo:
            with JsonlWriter(self.path) as w:
                w.write_many(t.row(self.model) for t in todo)
            self.saved += len(todo)
        return len(todo)
