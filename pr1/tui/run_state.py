"""What the dashboard knows about a run folder, refreshed by polling its files. It only reads."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pr1.formatting import is_number
from pr1.jsonl import JsonlTail
from pr1.run_status import live_status
from pr1.runs import EVENTS_FILE, METRICS_FILE, ROLLOUTS_FILE, RUN_FILE, SUMMARY_FILE

STAGED = ("demo", "ablation")  # kinds whose metrics rows are evaluated stages (pr1.demo, pr1.ablation)


def short_names(paths: list[Path]) -> list[str]:
    """A label per run folder: its name, or parent/name where two folders share a name."""
    names = [p.name or str(p) for p in paths]
    return [
        f"{p.parent.name}/{p.name}" if names.count(p.name) > 1 else n
        for p, n in zip(paths, names, strict=True)
    ]


@dataclass
class Update:
    """What one poll found: the new rows of each stream, and problems to show as notices."""

    metrics: list[dict] = field(default_factory=list)
    rollouts: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    info_changed: bool = False
    summary_changed: bool = False
    problems: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.metrics or self.rollouts or self.events or self.info_changed or self.summary_changed)


class RunState:
    """run.json, summary.json and the three streams of RUN_DIR, as read so far. `name`: how the
    dashboard labels the run (the folder's name unless two runs share one)."""

    def __init__(self, path: str | Path, name: str | None = None):
        self.path = Path(path)
        self.name = name or self.path.name
        self.numeric_keys: list[str] = []  # every metrics key that held a number, in first-seen order
        self._numeric: set[str] = set()
        self.info: dict = {}
        self.summary: dict | None = None
        self.metrics: list[dict] = []
        self.rollouts: list[dict] = []
        self.events: list[dict] = []
        self._tails = {
            name: JsonlTail(self.path / f)
            for name, f in (("metrics", METRICS_FILE), ("rollouts", ROLLOUTS_FILE), ("events", EVENTS_FILE))
        }
        self._stamps: dict[str, tuple[int, int, int]] = {}

    @property
    def kind(self) -> str:
        return str(self.info.get("kind", ""))

    @property
    def status(self) -> str:
        """run.json's status, or "stopped" for a "running" run whose process is gone (pr1.run_status)."""
        return live_status(self.info) if self.info else "?"

    @property
    def last_step(self) -> int | None:
        return self.metrics[-1]["step"] if self.metrics else None

    def poll(self) -> Update:
        up = Update()
        info = self._read_json_if_changed(RUN_FILE, up.problems)
        if isinstance(info, dict):
            self.info, up.info_changed = info, True
        summary = self._read_json_if_changed(SUMMARY_FILE, up.problems)
        if isinstance(summary, dict):
            self.summary, up.summary_changed = summary, True
        for name, tail in self._tails.items():
            rows, problems = tail.poll()
            up.problems += problems
            if name == "metrics":
                rows = self._with_step(rows, tail.path.name, up.problems)
                self._note_keys(rows)
            getattr(up, name).extend(rows)
            getattr(self, name).extend(rows)
        return up

    def _note_keys(self, rows: list[dict]) -> None:
        for row in rows:
            for k, v in row.items():
                if k not in self._numeric and k not in ("step", "time") and is_number(v):
                    self._numeric.add(k)
                    self.numeric_keys.append(k)

    def _read_json_if_changed(self, name: str, problems: list[str]) -> object:
        f = self.path / name
        try:
            st = f.stat()
        except OSError:
            return None
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)  # run.json is replaced atomically: a new inode
        if self._stamps.get(name) == stamp:
            return None
        self._stamps[name] = stamp
        try:
            obj = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            problems.append(f"{name}: unreadable ({getattr(e, 'msg', e)})")
            return None
        if not isinstance(obj, dict):
            problems.append(f"{name}: expected a JSON object")
            return None
        return obj

    @staticmethod
    def _with_step(rows: list[dict], fname: str, problems: list[str]) -> list[dict]:
        good = [r for r in rows if isinstance(r.get("step"), int) and not isinstance(r.get("step"), bool)]
        if len(good) < len(rows):
            problems.append(f"{fname}: {len(rows) - len(good)} row(s) without an integer 'step' skipped")
        return good
