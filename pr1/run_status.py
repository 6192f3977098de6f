"""Is the process that writes a run folder still alive? The status a reader should show for a run.

run.json says `status: running` from the start of a run until it ends; a run killed with SIGKILL (or a
machine that lost power) never rewrites it. run.json also records the writer's `host` and `pid` (a resumed
run records the process that resumed it), so on that host a reader can tell: the pid is gone (or now belongs
to a process started after the writer took the run) -> the run is "stopped". On another host nothing can be known and the recorded status stands.
Light (standard library only), beside pr1/runs.py, for any reader of run folders."""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from pathlib import Path

STOPPED = "stopped"
START_SLACK_S = 2.0  # a writer's process starts a moment before it writes run.json's `created`


def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def process_start_time(pid: int) -> float | None:
    """Unix time at which process `pid` started (Linux /proc), or None when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, starttime, in clock ticks since boot
    except (OSError, ValueError, IndexError):
        return None
    boot = _boot_time()
    return None if boot is None else boot + ticks / os.sysconf("SC_CLK_TCK")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    except OSError:
        return False
    return True


def writer_gone(info: Mapping[str, object]) -> bool:
    """Whether the process recorded in run.json (`host`, `pid`: the process that started the run, or the one
    that last resumed it) has certainly ended. False when unknown: another host, or no pid."""
    pid, host = info.get("pid"), info.get("host")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or host != platform.node():
        return False
    if not pid_alive(pid):
        return True
    started, since = process_start_time(pid), _writer_since(info)
    # the pid is alive but was reused by a process started after the writer took the run
    return started is not None and since is not None and started > since + START_SLACK_S


def _writer_since(info: Mapping[str, object]) -> float | None:
    """When the recorded writer took the run: its last resume, else the run's creation."""
    resumed = info.get("resumed_at")
    times = [resumed[-1]] if isinstance(resumed, list) and resumed else [info.get("created")]
    t = times[0]
    return float(t) if isinstance(t, (int, float)) and not isinstance(t, bool) else None


def live_status(info: Mapping[str, object]) -> str:
    """run.json's `status`, except "stopped" for a run that says "running" while its writer is gone."""
    status = str(info.get("status", "?"))
    return STOPPED if status == "running" and writer_gone(info) else status
