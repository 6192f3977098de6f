"""JSON Lines and JSON files: line-numbered errors on read, append-only and atomic writes (atomic writing
itself: `pr1.files`, whose `write_text_atomic` is re-exported here)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pr1.errors import Pr1Error, os_reason
from pr1.files import make_folder, write_bytes_atomic, write_text_atomic

__all__ = [
    "JsonlTail",
    "JsonlWriter",
    "dumps",
    "encode_line",
    "iter_jsonl",
    "read_jsonl",
    "write_json_atomic",
    "write_jsonl_atomic",
    "write_text_atomic",
]


def iter_jsonl(path: str | Path, *, skip_bad: bool = False) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-empty line. A bad line (not UTF-8, not JSON, not an object)
    raises a Pr1Error naming FILE:LINE, or with `skip_bad` is skipped. A UTF-8 byte-order mark is allowed."""
    path = Path(path)
    if path.is_dir():
        raise Pr1Error(f"{path}: is a folder, expected a JSON Lines file")
    if not path.is_file():
        raise Pr1Error(f"{path}: no such file")
    try:
        f = path.open("rb")
    except OSError as e:
        raise Pr1Error(f"{path}: cannot read ({os_reason(e)})") from None
    with f:
        for lineno, raw in enumerate(f, 1):
            try:
                obj = _parse_line(raw, lineno)
            except ValueError as e:
                if skip_bad:
                    continue
                raise Pr1Error(f"{path}:{lineno}: {e}") from None
            if obj is not None:
                yield lineno, obj


def _parse_line(raw: bytes, lineno: int) -> dict | None:
    """The object on one line, None for a blank line; ValueError says what is wrong with it."""
    try:
        line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(
            f"not UTF-8 text (byte 0x{raw[e.start : e.start + 1].hex()} at column {e.start + 1})"
        ) from None
    if not line.strip():
        return None
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(f"invalid JSON ({e.msg})") from None
    except ValueError:  # Python's limit on the digits of an integer (sys.get_int_max_str_digits)
        raise ValueError(f"a number with more than {sys.get_int_max_str_digits()} digits") from None
    except RecursionError:
        raise ValueError("invalid JSON (nested too deeply)") from None
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    return obj


def read_jsonl(path: str | Path) -> list[dict]:
    return [obj for _, obj in iter_jsonl(path)]


def dumps(obj: Any) -> str:
    """`obj` as one line of JSON, non-ASCII text as itself; all escaped where the text holds something UTF-8
    cannot encode (a lone surrogate, which JSON input may carry as `\\ud800`), so that writing or printing
    it never fails."""
    text = json.dumps(obj, ensure_ascii=False, default=_default)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(obj, default=_default)
    return text


def _default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def encode_line(row: dict) -> bytes:
    """One JSON Lines row, as UTF-8 bytes."""
    return (dumps(row) + "\n").encode("utf-8")


class JsonlWriter:
    """Append-only JSON Lines writer: each row is one complete line, written with one call and on disk (in
    the kernel) as soon as `write` returns, so a reader tailing the file (or a run that is killed) only ever
    sees whole rows. A write that fails (a full disk) is undone: the file is cut back to its last complete
    line, and the error is a Pr1Error naming the file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        make_folder(self.path.parent)
        if self.path.is_dir():
            raise Pr1Error(f"{self.path}: is a folder, expected a file")
        try:
            _repair_partial_last_line(self.path)
            self._f = self.path.open("ab", buffering=0)
        except OSError as e:
            raise Pr1Error(f"{self.path}: cannot write ({os_reason(e)})") from e

    def write(self, row: dict) -> None:
        self._append(encode_line(row))

    def write_many(self, rows: Iterable[dict]) -> None:
        """All `rows`, or (when the write fails) none of them."""
        self._append(b"".join(encode_line(row) for row in rows))

    def _append(self, data: bytes) -> None:
        if not data:
            return
        fd = self._f.fileno()
        size = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[self._f.write(view) :]
        except OSError as e:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise Pr1Error(
                f"{self.path}: cannot write ({os_reason(e)}); the file ends at its last complete line"
            ) from e

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
    """Write JSON atomically (`pr1.files.write_bytes_atomic`)."""
    text = json.dumps(obj, ensure_ascii=False, indent=2, default=_default) + "\n"
    write_bytes_atomic(path, text.encode("utf-8", "backslashreplace"))


def write_jsonl_atomic(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    """Write a whole JSON Lines file atomically: every row, or (on any failure) the old file unchanged."""
    write_bytes_atomic(path, b"".join(encode_line(row) for row in rows))


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
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
                problems.append(f"{self.path.name}:{self.lineno}: malformed line skipped")
                continue
            if isinstance(obj, dict):
                rows.append(obj)
            else:
                problems.append(f"{self.path.name}:{self.lineno}: not a JSON object, skipped")
        return rows, problems
