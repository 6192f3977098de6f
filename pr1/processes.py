"""Child processes that die with their parent.

A parent that is killed (SIGKILL, a lost terminal) runs no cleanup, so its children (a benchmark's training
process, the grader's math-verify helper) would run on. A child started with `child_env()` calls
`follow_parent()` first thing: on Linux the kernel then sends it `sig` when its parent ends
(`prctl(PR_SET_PDEATHSIG)`), and a parent that ended before the call is noticed at once. Elsewhere this is a
no-op. Standard library only.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Mapping

PARENT_ENV = "PR1_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child that should die with this process (`follow_parent` reads it)."""
    return {**(os.environ if env is None else env), PARENT_ENV: str(os.getpid())}


def follow_parent(sig: int = signal.SIGTERM) -> None:
    """In a child started with `child_env()`: receive `sig` when the parent ends. Call it early."""
    parent = os.environ.pop(PARENT_ENV, None)
    if not parent or not parent.isdigit():
        return
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        except (OSError, AttributeError):  # no libc to call: nothing to follow with
            return
    else:  # pragma: no cover
        return
    if os.getppid() != int(parent):  # the parent ended before the call above
        os.kill(os.getpid(), sig)
