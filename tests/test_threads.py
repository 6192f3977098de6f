"""pr1 picks torch's thread count from the machine's load unless OMP_NUM_THREADS says."""

from __future__ import annotations

import pytest

from pr1 import threads


def test_a_busy_machine_gets_fewer_threads_and_the_user_decides(monkeypatch, capsys):
    for variable in threads.THREAD_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (3.2, 3.0, 2.9))
    assert threads.choose_threads() == 1
    # nothing said yet: an argument error must stay one line
    assert threads.os.environ["OMP_NUM_THREADS"] == "1" and capsys.readouterr().err == ""
    threads.announce()
    threads.announce()
    assert capsys.readouterr().err.count("1 of 2 cores (load average 3.2") == 1  # when a model loads, once
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (0.1, 0.2, 0.2))
    for variable in threads.THREAD_VARIABLES:
        monkeypatch.delenv(variable)
    assert threads.choose_threads() == 2
    threads.announce()
    assert capsys.readouterr().err == ""  # quiet: all cores, nothing said
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    assert threads.choose_threads() is None and threads.os.environ["OMP_NUM_THREADS"] == "7"


@pytest.mark.parametrize(("load", "expected"), [(0.0, 2), (0.6, 1), (1.4, 1), (9.0, 1)])
def test_free_cores(monkeypatch, load, expected):
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (load, 0, 0))
    assert threads.free_cores()[1] == expected
