"""How many CPU threads torch uses, picked from the machine's load when the user has not said.

On a busy 2-core machine two spinning OpenMP threads per process are several times slower than one: the same
`pr1 eval` took 134 s with 2 threads and 29 s with 1 (load average 2.5-3.5 from other jobs), while on a quiet
machine 2 threads are 1.57x faster than 1 (docs/BENCHMARKS.md, "CPU threads", 2026-12-02). So, unless
OMP_NUM_THREADS is set, pr1 gives torch the cores the load leaves free (at least one) and says so on the
console when that is fewer than the machine has: when a model is loaded on the CPU (`pr1.models.load_model`
calls `announce`), not at start, so an argument error stays one line.
"""

from __future__ import annotations

import os
import sys

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
_note: str | None = None  # the line choose_threads left for announce, said once


def free_cores() -> tuple[int, int, float]:
    """(cores this process may use, threads pr1 would give torch, the 1-minute load average)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    load = os.getloadavg()[0]
    return cores, max(1, min(cores, round(cores - load))), load


def choose_threads() -> int | None:
    """Set the thread count before torch is imported (it reads the variables once), unless the user did;
    returns the count set, or None."""
    if any(v in os.environ for v in THREAD_VARIABLES):
        return None
    cores, threads, load = free_cores()
    for variable in THREAD_VARIABLES:
        os.environ[variable] = str(threads)
    if threads < cores:
        global _note
        _note = (
            f"torch threads: {threads} of {cores} cores (load average {load:.1f} from other processes; "
            "set OMP_NUM_THREADS to choose)"
        )
    return threads


def announce() -> None:
    """Say on stderr, once, that choose_threads gave torch fewer threads than the machine has."""
    global _note
    if _note is not None:
        print(_note, file=sys.stderr)
        _note = None
