"""What `pr1 chat` generates with: its sampling settings, the model behind it, and its saved sessions."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pr1.grading import extract_answer, grade
from pr1.jsonl import JsonlWriter
from pr1.prompts import PARALLEL_TEMPLATE, build_messages
from pr1.rollout.config import RolloutConfig
from pr1.settings import invalid, setting


@dataclass
class ChatSettings(RolloutConfig):
    """The sampling settings of a turn (the engine's, with the chat's own default temperature); the side panel
    edits them, and a bad value raises a `SettingError` naming it."""

    temperature: float = setting(0.7, "Sampling temperature (0 = greedy).", min=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_paths < 2:
            raise invalid("num_paths", self.num_paths, "a block needs at least 2 paths")


@dataclass
class Generation:
    text: str
    tokens: int
    critical_path_tokens: int | None = None
    truncated: bool = False


class Generator(Protocol):
    """What the chat generates with: a model behind the rollout engine, or a replay in tests."""

    name: str

    def generate(
        self,
        problem: str,
        settings: ChatSettings,
        on_event: Callable[[Any], None],
        stop: threading.Event,
    ) -> Generation: ...


class EngineGenerator:
    """Generates with `pr1.rollout.RolloutEngine` (one trajectory per problem)."""

    def __init__(self, model: Any, tokenizer: Any, name: str, template: str = PARALLEL_TEMPLATE):
        self.model, self.tokenizer, self.name, self.template = model, tokenizer, name, template

    def generate(
        self, problem: str, settings: ChatSettings, on_event: Callable[[Any], None], stop: threading.Event
    ) -> Generation:
        from pr1.rollout import RolloutEngine

        engine = RolloutEngine(self.model, self.tokenizer, RolloutConfig.of(settings))
        (traj,) = engine.generate([build_messages(problem, self.template)], n=1, on_event=on_event, stop=stop)
        return Generation(traj.text, traj.generated_tokens, traj.critical_path_tokens, traj.truncated)


@dataclass
class Turn:
    """One problem and its answer; `answer` is the gold answer the user gave ("" when none)."""

    problem: str
    answer: str
    settings: ChatSettings
    text: str = ""
    result: Generation | None = None
    stopped: bool = False
    error: str | None = None
    pred: str | None = None
    correct: bool | None = None
    created: float = field(default_factory=time.time)

    @property
    def finished(self) -> bool:
        return self.result is not None or self.error is not None

    def score(self) -> None:
        """Extract the answer, and grade it when the user gave a gold answer."""
        if self.result is None:
            return
        if self.answer:
            g = grade(self.result.text, self.answer)
            self.pred, self.correct = g.pred, g.correct
        else:
            self.pred = extract_answer(self.result.text)[0]

    def row(self, model: str) -> dict:
        """The saved JSONL row: `completion` and `answer` are what `pr1 score` reads."""
        r = self.result
        return {
            "problem": self.problem,
            "answer": self.answer,
            "completion": r.text if r else self.text,
            "model": model,
            **asdict(self.settings),
            "tokens": r.tokens if r else None,
            "critical_path_tokens": r.critical_path_tokens if r else None,
            "truncated": r.truncated if r else None,
            "stopped": self.stopped,
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
