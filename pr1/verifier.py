"""math-verify in a helper process with a hard time limit, from any thread.

math-verify (sympy) can take unbounded time on hostile input: `$9^{9^{9}}$` asks for a 370-million-digit
integer, computed in one C call that no signal or thread can interrupt. So every comparison that reaches
math-verify runs in one long-lived helper process (`python -m pr1.verifier`): a request is a JSON line on its
stdin, the answer a JSON line on its stdout. A comparison that takes longer than its timeout kills the
helper (SIGKILL); the next one starts a new helper (its start-up, ~1.5 s of imports, is not counted in the
next comparison's timeout). The helper dies with its parent (`pr1.processes`), caps its own memory, and is
shared by every thread of the process: comparisons take turns.

The round trip costs about a tenth of a millisecond over the comparison itself (measured in docs/RELIABILITY.md).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

STARTUP_TIMEOUT = 120.0  # seconds for a new helper to import math-verify (a slow disk, a busy machine)
MEMORY_LIMIT = (
    4 << 30
)  # bytes of address space for the helper: a runaway sympy expression ends in MemoryError


class VerifyTimeout(Exception):
    """The comparison took longer than its timeout (the helper was killed)."""


class VerifyFailed(Exception):
    """math-verify raised (`kind`: the exception's type name), or the helper ended unexpectedly."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


class _Helper:
    """One helper process and the pipe to it."""

    def __init__(self) -> None:
        self.proc = _spawn()
        self._buffer = b""
        if self._read_line(time.monotonic() + STARTUP_TIMEOUT) != {"ready": True}:
            self.kill()
            raise VerifyFailed("the math-verify helper did not start")

    def ask(self, gold: str, pred: str, timeout: float) -> bool:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(
                (json.dumps({"gold": gold, "pred": pred}) + "\n").encode("utf-8", "replace")
            )
            self.proc.stdin.flush()
        except OSError:
            raise VerifyFailed("the math-verify helper ended") from None
        reply = self._read_line(time.monotonic() + timeout)
        if "ok" in reply:
            return bool(reply["ok"])
        raise VerifyFailed(str(reply.get("error", "the math-verify helper ended")))

    def _read_line(self, deadline: float) -> dict:
        """The helper's next reply; VerifyTimeout at `deadline`, {} when the helper ended."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise VerifyTimeout
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return {}
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            reply = json.loads(line)
        except ValueError:
            return {}
        return reply if isinstance(reply, dict) else {}

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        for pipe in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                pipe.close()  # type: ignore[union-attr]


def _spawn() -> subprocess.Popen:
    """Start `python -m pr1.verifier` from a thread of its own that then waits for it: the kernel's
    parent-death signal follows the thread that started a child, and this one lives as long as the helper
    (the thread that asked may end first: a worker, a UI job)."""
    from pr1.processes import child_env

    root = str(Path(__file__).resolve().parents[1])  # the folder holding the pr1 package
    env = child_env()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    started: dict[str, object] = {}
    ready = threading.Event()

    def start_and_wait() -> None:
        try:
            started["proc"] = subprocess.Popen(
                [sys.executable, "-m", "pr1.verifier"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
            )
        except OSError as e:
            started["error"] = e
        ready.set()
        if "proc" in started:
            started["proc"].wait()  # type: ignore[attr-defined]

    threading.Thread(target=start_and_wait, name="pr1-verifier", daemon=True).start()
    ready.wait()
    if "error" in started:
        raise VerifyFailed(f"the math-verify helper did not start ({started['error']})")
    return started["proc"]  # type: ignore[return-value]


_lock = threading.Lock()
_helper: _Helper | None = None


def verify(gold: str, pred: str, *, timeout: float) -> bool:
    """math-verify's `verify(parse(gold), parse(pred))` (each as LaTeX), within `timeout` seconds from any
    thread: VerifyTimeout past it, VerifyFailed when math-verify raises."""
    global _helper
    with _lock:
        if _helper is None or not _helper.alive():
            _helper = _Helper()
        try:
            return _helper.ask(gold, pred, timeout)
        except BaseException as e:  # a timeout, a dead helper, Ctrl-C while waiting: start afresh next time
            if not isinstance(e, VerifyFailed) or not _helper.alive():
                _helper.kill()
                _helper = None
            raise


def shutdown() -> None:
    """Stop the helper (it also ends on its own when this process ends)."""
    global _helper
    with _lock:
        if _helper is not None:
            _helper.kill()
            _helper = None


atexit.register(shutdown)


# ------------------------------------------------------------------------------------------ the helper


def _as_latex(s: str) -> str:
    return s if "$" in s or "\\boxed" in s else f"${s}$"


def _compare(gold: str, pred: str) -> bool:
    from math_verify import parse
    from math_verify import verify as mv_verify

    # math-verify's own timeouts use signals in the main thread; this process is killed from outside instead
    g = parse(_as_latex(gold), parsing_timeout=None)
    p = parse(_as_latex(pred), parsing_timeout=None)
    return bool(g) and bool(p) and mv_verify(g, p, timeout_seconds=None)


def _serve() -> None:
    """The helper's loop: one JSON request per stdin line, one JSON reply per stdout line."""
    import logging
    import resource
    import signal
    import warnings

    from pr1.processes import follow_parent

    follow_parent(signal.SIGKILL)
    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)  # math-verify logs a warning per call when its timeouts are off
    import math_verify  # noqa: F401  (imported before "ready": start-up is not part of a comparison)

    with contextlib.suppress(ValueError, OSError):  # after the imports, which the cap must not break
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    out = sys.stdout.buffer
    out.write(b'{"ready": true}\n')
    out.flush()
    for line in sys.stdin.buffer:
        try:
            request = json.loads(line)
            reply = {"ok": _compare(str(request["gold"]), str(request["pred"]))}
        except Exception as e:  # math-verify raises on some malformed LaTeX; MemoryError is an Exception
            reply = {"error": type(e).__name__}
        out.write((json.dumps(reply) + "\n").encode())
        out.flush()


if __name__ == "__main__":
    _serve()
