import errno
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pr1.errors import Pr1Error
from pr1.jsonl import (
    JsonlTail,
    JsonlWriter,
    iter_jsonl,
    read_jsonl,
    write_json_atomic,
    write_jsonl_atomic,
    write_text_atomic,
)
from pr1.run_status import live_status
from pr1.runs import (
    LOCK_FILE,
    Run,
    read_metrics,
    read_run_info,
    redact,
)


def test_run_folder_layout_and_streams(tmp_path):
    run = Run.create(
        tmp_path / "r", "rl", {"lr": 1e-6, "api_key": "sk-secret", "nested": {"hf_token": "hf_x"}}
    )
    run.log_metrics(1, reward_mean=0.5, phase="accuracy")
    run.log_rollouts(1, [{"completion": "x", "reward": 1.0}])
    run.finish(accuracy=0.5)
    info = read_run_info(tmp_path / "r")
    assert info["kind"] == "rl" and info["status"] == "finished" and info["summary"] == {"accuracy": 0.5}
    assert info["config"]["lr"] == 1e-6
    text = (tmp_path / "r" / "run.json").read_text()
    assert "sk-secret" not in text and "hf_x" not in text
    assert {"torch", "transformers", "python"} <= set(info["versions"])
    m = read_metrics(tmp_path / "r")
    assert m[0]["step"] == 1 and m[0]["phase"] == "accuracy" and "time" in m[0]
    events = [json.loads(line)["event"] for line in (tmp_path / "r" / "events.jsonl").open()]
    assert events == ["start", "end"]


def test_existing_run_needs_resume(tmp_path):
    Run.create(tmp_path, "sft", {}).finish()
    with pytest.raises(Pr1Error, match="--resume"):
        Run.create(tmp_path, "sft", {})
    with pytest.raises(Pr1Error, match="holds a 'sft' run"):
        Run.create(tmp_path, "rl", {}, resume=True)
    run = Run.create(tmp_path, "sft", {}, resume=True)
    assert run.info["status"] == "running" and len(run.info["resumed_at"]) == 1


def test_writer_repairs_a_partial_last_line(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"step": 1}\n{"step": 2, "lo')  # a writer killed mid-line
    with JsonlWriter(p) as w:
        w.write({"step": 2})
    assert [r["step"] for _, r in iter_jsonl(p)] == [1, 2]


def test_tail_follows_a_growing_file_and_reports_bad_lines(tmp_path):
    p = tmp_path / "m.jsonl"
    tail = JsonlTail(p)
    assert tail.poll() == ([], [])  # not there yet
    p.write_text('{"step": 1}\n{"step": 2')
    rows, problems = tail.poll()
    assert rows == [{"step": 1}] and problems == []  # the partial line waits
    with p.open("a") as f:
        f.write('}\nnot json\n[1]\n{"step": 3}\n')
    rows, problems = tail.poll()
    assert rows == [{"step": 2}, {"step": 3}]
    assert problems == ["m.jsonl:3: malformed line skipped", "m.jsonl:4: not a JSON object, skipped"]
    p.write_text('{"step": 9}\n')  # replaced by a shorter file
    assert tail.poll()[0] == [{"step": 9}]


def test_atomic_json(tmp_path):
    write_json_atomic(tmp_path / "a.json", {"x": 1})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_redact_lists_and_dataclasses():
    from dataclasses import dataclass

    @dataclass
    class C:
        api_key: str = "k"
        lr: float = 1.0

    assert redact(C()) == {"api_key": "<redacted>", "lr": 1.0}
    assert redact([{"password": "p"}]) == [{"password": "<redacted>"}]
    kept = {"max_tokens": 3000, "max_path_tokens": 4096, "api_key_env": "OPENAI_API_KEY", "tokenizer": "x"}
    assert redact(kept) == kept
    secret = {"hf_token": "a", "OPENAI_API_KEY": "b", "apikey": "c", "client_secret": "d"}
    assert set(redact(secret).values()) == {"<redacted>"}


def test_recording_marks_interrupted_and_failed_runs(tmp_path):
    run = Run.create(tmp_path / "a", "eval", {})
    with pytest.raises(KeyboardInterrupt), run.recording():
        raise KeyboardInterrupt
    assert read_run_info(tmp_path / "a")["status"] == "interrupted"
    run = Run.create(tmp_path / "b", "eval", {})
    with pytest.raises(ValueError), run.recording():
        raise ValueError("bad value\nmore detail")
    info = read_run_info(tmp_path / "b")
    assert info["status"] == "failed" and info["summary"] == {"error": "bad value"}
    run = Run.create(tmp_path / "d", "eval", {})
    with pytest.raises(RuntimeError), run.recording():
        raise RuntimeError("\n  ")
    assert read_run_info(tmp_path / "d")["summary"] == {"error": "RuntimeError"}  # never an empty error
    run = Run.create(tmp_path / "c", "eval", {})
    with run.recording():
        pass
    assert read_run_info(tmp_path / "c")["status"] == "running"  # success is the caller's to record


def test_a_run_that_failed_before_its_first_step_may_be_replaced(tmp_path, capsys):
    run = Run.create(tmp_path, "rl", {"lr": 1.0})
    run.finish("failed", error="bad data")
    again = Run.create(tmp_path, "rl", {"lr": 2.0})  # no --resume needed: nothing was logged
    assert "replacing a run that failed before its first step" in capsys.readouterr().err
    assert read_run_info(tmp_path)["config"] == {"lr": 2.0}
    again.log_metrics(1, loss=1.0)
    again.finish("failed", error="later")
    with pytest.raises(Pr1Error, match="pass --resume"):  # this one logged a step: it is kept
        Run.create(tmp_path, "rl", {"lr": 3.0})


def test_a_resumed_run_keeps_the_first_copy_of_replayed_steps(tmp_path):
    run = Run.create(tmp_path, "rl", {})
    for step in (1, 2, 3):
        run.log_metrics(step, loss=float(step))
        run.log_rollouts(step, [{"completion": f"c{step}"}])
    run.finish("interrupted")
    again = Run.create(tmp_path, "rl", {}, resume=True)  # resumed from a step-1 checkpoint: replays 2 and 3
    for step in (2, 3, 4):
        again.log_metrics(step, loss=10.0 * step)
        again.log_rollouts(step, [{"completion": f"again {step}"}])
    again.log_metrics(0, note="step 0 rows (jobs without steps) are always written")
    again.finish()
    assert [(r["step"], r.get("loss")) for r in read_metrics(tmp_path)] == [
        (1, 1.0),
        (2, 2.0),
        (3, 3.0),
        (4, 40.0),
        (0, None),
    ]
    rollouts = [r["completion"] for _, r in iter_jsonl(tmp_path / "rollouts.jsonl")]
    assert rollouts == ["c1", "c2", "c3", "again 4"]


# ------------------------------------------------------------------------- reading and writing (issue 20)


def test_the_reader_names_each_bad_line_and_skip_bad_skips_it(tmp_path):
    p = tmp_path / "x.jsonl"
    bad = {
        b'{"a": "caf\xe9"}': "not UTF-8 text (byte 0xe9 at column 11)",
        b"\x00\x89PNG\xff": "not UTF-8 text (byte 0x89 at column 2)",
        b"[" * 100_000: "invalid JSON (nested too deeply)",
        b'{"n": ' + b"1" * 5000 + b"}": "a number with more than 4300 digits",
        b"[1]": "expected a JSON object, got list",
    }
    for line, message in bad.items():
        p.write_bytes(b'\xef\xbb\xbf{"a": 1}\n' + line + b'\n{"a": 2}\n')  # a byte-order mark is fine
        with pytest.raises(Pr1Error) as err:
            list(iter_jsonl(p))
        assert str(err.value) == f"{p}:2: {message}"
        assert [row for _, row in iter_jsonl(p, skip_bad=True)] == [{"a": 1}, {"a": 2}]
    with pytest.raises(Pr1Error, match="is a folder, expected a JSON Lines file"):
        list(iter_jsonl(tmp_path))


class FullDisk:
    """A file whose disk fills up after `room` more bytes (writes are partial, then ENOSPC)."""

    def __init__(self, f, room: int):
        self.f, self.room = f, room

    def fileno(self) -> int:
        return self.f.fileno()

    def write(self, data) -> int:  # noqa: ANN001
        if self.room == 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = min(len(data), self.room)
        self.room -= n
        return self.f.write(bytes(data[:n]))

    def close(self) -> None:
        self.f.close()


def test_a_write_that_fills_the_disk_leaves_the_last_complete_line(tmp_path):
    p = tmp_path / "m.jsonl"
    w = JsonlWriter(p)
    w.write({"step": 1})
    w._f = FullDisk(w._f, room=7)  # the next row gets 7 of its bytes onto the disk, then ENOSPC
    with pytest.raises(
        Pr1Error, match=r"m.jsonl: cannot write \(no space left on the device\); the file ends at"
    ):
        w.write({"step": 2, "loss": 0.5})
    with pytest.raises(Pr1Error):
        w.write_many([{"step": 3}, {"step": 4}])  # all the rows or none
    w.close()
    assert p.read_text() == '{"step": 1}\n'


def test_an_atomic_write_that_fails_changes_nothing(tmp_path, monkeypatch):
    target = tmp_path / "summary.json"
    write_json_atomic(target, {"old": True})
    fdopen = os.fdopen

    class Full:  # a buffered file on a disk that fills up after a few bytes
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[:3])
            self.f.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fdopen", lambda fd, *args, **kwargs: Full(fdopen(fd, *args, **kwargs)))
    with pytest.raises(Pr1Error, match=r"summary.json: cannot write \(no space left on the device\)"):
        write_json_atomic(target, {"new": True})
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temporary file left


def test_written_files_get_the_users_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_json_atomic(tmp_path / "a.json", {})
        write_jsonl_atomic(tmp_path / "b.jsonl", [{"x": 1}])
        Run.create(tmp_path / "run", "eval", {}).finish()
        modes = {
            p.name: stat.S_IMODE(p.stat().st_mode)
            for p in [*tmp_path.iterdir(), *(tmp_path / "run").iterdir()]
        }
        assert modes.pop("run") == 0o755 and set(modes.values()) == {0o644}, modes
        os.umask(0o002)
        write_text_atomic(tmp_path / "c.md", "x")
        assert stat.S_IMODE((tmp_path / "c.md").stat().st_mode) == 0o664
    finally:
        os.umask(old)


def test_a_row_with_a_lone_surrogate_is_written_and_read_back(tmp_path):
    row = json.loads('{"completion": "a\\ud800b"}')  # valid JSON input; UTF-8 cannot encode it
    with JsonlWriter(tmp_path / "r.jsonl") as w:
        w.write(row)
    write_json_atomic(tmp_path / "r.json", row)
    assert read_jsonl(tmp_path / "r.jsonl") == [row]
    assert json.loads((tmp_path / "r.json").read_text()) == row


# ----------------------------------------------------------------------------- one writer per run folder


def test_one_writer_per_run_folder(tmp_path):
    run = Run.create(tmp_path / "r", "sft", {})
    assert json.loads((tmp_path / "r" / LOCK_FILE).read_text())["pid"] == os.getpid()
    with pytest.raises(Pr1Error, match=rf"another pr1 process is writing it \(pid {os.getpid()} on host "):
        Run.create(tmp_path / "r", "sft", {}, resume=True)
    run.finish()
    assert not (tmp_path / "r" / LOCK_FILE).exists()  # released with the run
    Run.create(tmp_path / "r", "sft", {}, resume=True).finish()


def test_a_lock_left_by_a_killed_writer_is_taken_over_and_the_run_says_stopped(tmp_path):
    code = (
        "import sys, time; from pr1.runs import Run\n"
        "run = Run.create(sys.argv[1], 'eval', {}); print('ready', flush=True); time.sleep(60)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path / "r")], stdout=subprocess.PIPE, text=True, env=env
    )
    assert child.stdout.readline().strip() == "ready"
    with pytest.raises(Pr1Error, match=rf"\(pid {child.pid} on host"):
        Run.create(tmp_path / "r", "eval", {}, resume=None)
    assert live_status(read_run_info(tmp_path / "r")) == "running"
    child.kill()  # SIGKILL: no cleanup, the lock file stays
    child.wait()
    assert (tmp_path / "r" / LOCK_FILE).exists() and live_status(read_run_info(tmp_path / "r")) == "stopped"
    run = Run.create(tmp_path / "r", "eval", {}, resume=None)  # taken over
    assert run.info["pid"] == os.getpid() and len(run.info["resumed_at"]) == 1
    assert live_status(read_run_info(tmp_path / "r")) == "running"  # this process resumed it
    run.finish()


def test_a_failure_leaves_its_traceback_in_the_run_folder(tmp_path):
    run = Run.create(tmp_path, "eval", {})
    with pytest.raises(ValueError), run.recording():
        raise ValueError("bad value")
    log = (tmp_path / "errors.log").read_text()
    assert "Traceback (most recent call last)" in log and log.rstrip().endswith("ValueError: bad value")
