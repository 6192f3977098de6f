"""JSON Lines and JSON files: line-numbered errors on read, append-only and atomic writes."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pr1.errors import Pr1Error


def iter_jsonl(path: str | Path, *, skip_bad: bool = False) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-empty line; a bad line raises a Pr1Error naming it."""
    path = Path(path)
    if not path.is_file():
        raise Pr1Error(f"{path}: no such file")
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                if skip_bad:
                    continue
                raise Pr1Error(f"{path}:{lineno}: invalid JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                if skip_bad:
                    continue
                raise Pr1Error(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            yield lineno, obj


def read_jsonl(path: str | Path) -> list[dict]:
    return [obj for _, obj in iter_jsonl(path)]


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=_default)


def _default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


class JsonlWriter:
    """Append-only JSON Lines writer: each row is one complete line, flushed as soon as it is written,
    so a reader tailing the file (or a run that is killed) only ever sees whole rows."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _repair_partial_last_line(self.path)
        self._f = self.path.open("a", encoding="utf-8")

    def write(self, row: dict) -> None:
        self._f.write(dumps(row) + "\n")
        self._f.flush()

    def write_many(self, rows: Iterable[dict]) -> None:
        for row in rows:
            self._f.write(dumps(row) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _repair_partial_last_line(path: Path) -> None:
    """Drop an unterminated last line left by a killed writer, so that appending stays line-aligned."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return
        data = path.read_bytes()
        f.truncate(data.rfind(b"\n") + 1)


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Write JSON atomically (see `write_text_atomic`)."""
    write_text_atomic(path, json.dumps(obj, ensure_ascii=False, indent=2, default=_default) + "\n")


def write_jsonl_atomic(path: str | Path, rows: Iterable[dict]) -> None:
    """Write all rows as JSON Lines atomically (see `write_text_atomic`)."""
    write_text_atomic(path, "".join(dumps(row) + "\n" for row in rows))


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write to a temporary file beside `path`, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


class JsonlTail:
    """Incremental reader of a growing JSON Lines file (what the dashboard uses to follow a run).

    `poll()` returns the complete new rows since the last call and the problems met on the way
    (a malformed line becomes a message, never an exception); a partial last line is kept for later."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.offset = 0
        self.lineno = 0
        self._pending = b""

    def poll(self) -> tuple[list[dict], list[str]]:
        rows: list[dict] = []
        problems: list[str] = []
        if not self.path.exists():
            return rows, problems
        if self.path.stat().st_size < self.offset:  # file was truncated or replaced: start again
            self.offset, self.lineno, self._pending = 0, 0, b""
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        data = self._pending + data
        *lines, self._pending = data.split(b"\n")
        for raw in lines:
            self.lineno += 1
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                problems.append(f"{self.path.name}:{self.lineno}: malformed line skipped")
                continue
            if isinstance(obj, dict):
                rows.append(obj)
            else:
                problems.append(f"{self.path.name}:{self.lineno}: not a JSON object, skipped")
        return rows, problems
