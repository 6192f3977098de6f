"""Hostile but fair input (issue 20): what a user can get wrong is one line on stderr (`error: <file:line, flag
or key>: <what was expected>`) with exit status 2, never a traceback; values are checked where they enter;
outputs are refused before anything is written. Through `pr1.cli.run`, the `pr1` command in-process (the
few subprocess tests are the ones about processes)."""

from __future__ import annotations

import errno
import json
import os
import signal
import threading
from pathlib import Path
from typing import NamedTuple

import pytest

from pr1.cli import run
from pr1.errors import Pr1Error, user_message
from pr1.files import WriterLock
from pr1.runs import LOCK_FILE, Run

LATIN1 = '{"id": "b", "problem": "Un caf\xe9?", "answer": "1"}\n'.encode("latin-1")  # not UTF-8
BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\xff\xfe\x00"
PROBLEM = {"id": "a", "problem": "What is 1 + 1?", "answer": "2"}


class Result(NamedTuple):
    status: int
    err: str
    out: str


def pr1(capsys: pytest.CaptureFixture, *args: object) -> Result:
    """Exit status, stderr and stdout of `pr1 ARGS`."""
    status = run([str(a) for a in args])
    captured = capsys.readouterr()
    return Result(status, captured.err, captured.out)


def one_line(result: Result, *parts: str) -> str:
    """The one error line of a failed command, which holds each of `parts`."""
    status, err, _ = result
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


def write(path: Path, *lines: dict | bytes) -> Path:
    path.write_bytes(b"".join(x if isinstance(x, bytes) else json.dumps(x).encode() + b"\n" for x in lines))
    return path


# the commands that read a JSONL file, each with a row it accepts
READERS = {
    "score": (lambda f, tmp: ["score", f], {"completion": "Final Answer: 2", "answer": "2"}),
    "data stats": (lambda f, tmp: ["data", "stats", f], {"trace": "Final Answer: 2"}),
    "data build": (
        lambda f, tmp: ["data", "build", f, "--out", tmp / "built"],
        {**PROBLEM, "trace": "Final Answer: 2"},
    ),
    "data generate --source": (
        lambda f, tmp: [
            "data",
            "generate",
            "--teacher",
            "synthetic",
            "--source",
            f,
            "--out",
            tmp / "g.jsonl",
        ],
        PROBLEM,
    ),
    "sft --data": (
        lambda f, tmp: ["sft", "--model", "m", "--data", f, "--out", tmp / "s"],
        {"problem": "What is 1 + 1?", "trace": "Final Answer: 2"},
    ),
    "rl --data": (lambda f, tmp: ["rl", "--model", "m", "--data", f, "--out", tmp / "r"], PROBLEM),
    "eval": (lambda f, tmp: ["eval", f, "--model", "m", "--out", tmp / "e"], PROBLEM),
}


@pytest.mark.parametrize("command", list(READERS))
@pytest.mark.parametrize("bad", [LATIN1, BINARY], ids=["latin-1", "binary"])
def test_a_line_that_is_not_utf8_is_named_by_every_reader(command, bad, tmp_path, capsys):
    args, good = READERS[command]
    f = write(tmp_path / "in.jsonl", good, bad)
    one_line(pr1(capsys, *args(f, tmp_path)), f"{f}:2: not UTF-8 text (byte 0x")


def test_skip_bad_skips_a_line_that_is_not_utf8(tmp_path, capsys):
    f = write(tmp_path / "in.jsonl", {"completion": "Final Answer: 2", "answer": "2"}, LATIN1, BINARY)
    result = pr1(capsys, "score", f, "--json", "--skip-bad")
    assert result.status == 0 and [json.loads(line)["correct"] for line in result.out.splitlines()] == [True]


def test_debug_shows_the_traceback_and_the_one_line(tmp_path, capsys):
    status, err, _ = pr1(capsys, "--debug", "score", tmp_path / "missing.jsonl")
    assert status == 2 and "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1] == f"error: {tmp_path / 'missing.jsonl'}: no such file"


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (OSError(errno.ENOENT, "No such file", "/d/f"), "/d/f: no such file or folder"),
        (IsADirectoryError(errno.EISDIR, "Is a directory", "/d"), "/d: is a folder, expected a file"),
        (PermissionError(errno.EACCES, "Permission denied", "/d/f"), "/d/f: permission denied"),
        (OSError(errno.ENOSPC, "No space left on device", "/d/f"), "/d/f: no space left on the device"),
        (OSError(errno.EROFS, "Read-only file system", "/a", None, "/b"), "/a -> /b: read-only file system"),
        (
            UnicodeDecodeError("utf-8", b"ab\xff", 2, 3, "invalid start byte"),
            "input: not UTF-8 text (byte 0xff at position 2)",
        ),
    ],
)
def test_io_and_decoding_errors_are_user_errors(error, message):
    assert user_message(error) == message
    assert user_message(RuntimeError("a bug")) is None and user_message(OSError("no errno")) is None


def test_an_io_error_reported_by_safetensors_is_a_user_error():
    from safetensors import SafetensorError  # `pr1 export --merge` onto a full disk

    err = SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
    assert user_message(err) == "safetensors could not read or write a file: no space left on the device"
    assert user_message(ValueError("I/O error (os error 28)")) is None  # only the Rust-backed libraries'


def test_an_io_error_anywhere_under_a_command_is_one_line(tmp_path, capsys, monkeypatch):
    import pr1.commands.score as score_command

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x"))

    one_line(pr1(capsys, "score", tmp_path), f"{tmp_path}: is a folder, expected a JSON Lines file")
    monkeypatch.setattr(score_command, "score_file", full)
    one_line(pr1(capsys, "score", tmp_path / "in.jsonl"), f"{tmp_path / 'x'}: no space left on the device")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_traceback_in_another_thread_is_never_followed_by_exit_status_0(tmp_path, capsys, monkeypatch):
    import pr1.commands.score as score_command

    summarise = score_command.summarise

    def crashing_thread(records):
        worker = threading.Thread(target=lambda: 1 / 0)
        worker.start()
        worker.join()
        return summarise(records)

    monkeypatch.setattr(score_command, "summarise", crashing_thread)
    f = write(tmp_path / "in.jsonl", {"completion": "Final Answer: 2", "answer": "2"})
    assert pr1(capsys, "score", f).status == 1  # (pytest collects the thread's traceback itself)


def test_sigterm_ends_a_command_as_interrupted(tmp_path, capsys, monkeypatch):
    import pr1.commands.score as score_command

    def terminated(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM did not interrupt")

    monkeypatch.setattr(score_command, "score_file", terminated)
    status, err, _ = pr1(capsys, "score", tmp_path / "in.jsonl")
    assert status == 143 and err.strip() == "interrupted"


# --------------------------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sft", "--model", "m", "--data", "d", "--lr", "nan"], "--lr nan: expected a finite number"),
        (["sft", "--model", "m", "--data", "d", "--epochs", "nan"], "--epochs nan: expected a finite number"),
        (["sft", "--model", "m", "--data", "d", "--lora-alpha", "-3"], "--lora-alpha -3: must be at least 1"),
        (["rl", "--model", "m", "--clip-high", "nan"], "--clip-high nan: expected a finite number"),
        (["rl", "--model", "m", "--limit", "-2"], "--limit -2: must be at least 1"),
        (["eval", "gsm8k", "--model", "m", "--top-p", "inf"], "--top-p inf: expected a finite number"),
        (
            ["data", "generate", "--teacher", "synthetic", "--out", "x.jsonl", "--temperature", "inf"],
            "--temperature inf: expected a finite number",
        ),
        (["watch", ".", "--interval", "nan"], "--interval nan: expected a finite number of seconds"),
        (["watch", ".", "--interval", "inf"], "--interval inf: expected a finite number of seconds"),
        (["bench", "sft", "--set", "steps=-1"], "--set steps=-1: expected a whole number of at least 1"),
    ],
)
def test_nan_inf_and_out_of_range_flags_are_refused(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if args[0] in ("sft", "rl"):
        args = [*args, "--out", tmp_path / "run"]
    one_line(pr1(capsys, *args), message)
    assert not (tmp_path / "run").exists()  # refused before anything was written


@pytest.mark.parametrize(
    ("command", "toml", "message"),
    [
        ("sft", "lr = nan\n", "--lr nan: expected a finite number"),
        ("sft", "epochs = inf\n", "--epochs inf: expected a finite number"),
        ("rl", "temperature = inf\n", "config key temperature=inf: expected a finite number"),
        ("rl", "lr = -inf\n", "--lr -inf: expected a finite number"),
    ],
)
def test_nan_and_inf_in_a_config_file_are_refused(command, toml, message, tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text(toml)
    args = [command, "--model", "m", "--data", "d", "--config", config, "--out", tmp_path / "run"]
    one_line(pr1(capsys, *args), message)
    assert not (tmp_path / "run").exists()


# a gold answer is a string or a number: nothing else is graded against "None" or "{...}"
BAD_ANSWERS = {"null": None, "object": {"value": 2}, "bool": True, "list": [2], "NaN": float("nan")}
ANSWER_READERS = {
    "score": (lambda f, tmp: ["score", f], {"completion": "Final Answer: 2"}),
    "data build": (
        lambda f, tmp: ["data", "build", f, "--out", tmp / "built"],
        {"problem": "1+1?", "trace": "x"},
    ),
    "eval": (lambda f, tmp: ["eval", f, "--model", "m", "--out", tmp / "e"], {"problem": "1+1?"}),
    "rl": (lambda f, tmp: ["rl", "--model", "m", "--data", f, "--out", tmp / "r"], {"problem": "1+1?"}),
}


@pytest.mark.parametrize("command", list(ANSWER_READERS))
@pytest.mark.parametrize("kind", list(BAD_ANSWERS))
def test_a_gold_answer_that_is_not_a_string_or_number_is_refused(command, kind, tmp_path, capsys):
    args, row = ANSWER_READERS[command]
    f = write(
        tmp_path / "in.jsonl",
        {"id": "a", **row, "answer": "2"},
        {"id": "b", **row, "answer": BAD_ANSWERS[kind]},
    )
    message = one_line(pr1(capsys, *args(f, tmp_path)), f"{f}:2: 'answer' must be a")
    assert ("finite number" in message) == (kind == "NaN")


@pytest.mark.parametrize("content", [b"[1, 2]\n", b'{"kind": "sft", "name": "caf\xe9"}', b"\x00\x01\x02"])
def test_a_run_json_that_is_a_list_or_not_utf8_is_one_line(content, tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_bytes(content)
    for args in (["watch", run_dir], ["sft", "--model", "m", "--data", "d", "--out", run_dir, "--resume"]):
        one_line(pr1(capsys, *args), f"{run_dir / 'run.json'}: ")


def test_watch_export_survives_infinite_and_huge_metrics(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps({"kind": "sft", "name": "run", "status": "finished"}))
    (run_dir / "metrics.jsonl").write_text(
        '{"step": 1, "time": 1, "loss": 1.0}\n{"step": 2, "time": 2, "loss": Infinity}\n'
        '{"step": 3, "time": 3, "loss": 1e308}\n{"step": 4, "time": 4, "loss": -1e308, "lr": NaN}\n'
    )
    status, err, _ = pr1(capsys, "watch", run_dir, "--export", tmp_path / "x")
    assert status == 0 and "Traceback" not in err
    assert (tmp_path / "x" / "metrics.csv").is_file()


def test_a_dashboard_that_stops_on_an_error_does_not_exit_0(tmp_path, capsys, monkeypatch):
    from pr1.tui.watch_app import WatchApp

    def crashed_run(self, *args, **kwargs):
        self._return_code = 1  # what textual records after printing the traceback of a crash

    monkeypatch.setattr(WatchApp, "run", crashed_run)
    run_dir = tmp_path / "run"
    Run.create(run_dir, "sft", {}).finish()
    assert pr1(capsys, "watch", run_dir).status == 1


# -------------------------------------------------------------------------------------------- outputs


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (lambda f, tmp: ["data", "build", tmp / "in.jsonl", "--out", f], "{f}: is a file, expected a folder"),
        (
            lambda f, tmp: ["data", "build", tmp / "in.jsonl", "--sft-out", tmp],
            "--sft-out {tmp}: is a folder",
        ),
        (
            lambda f, tmp: ["sft", "--model", "m", "--data", "d", "--out", f],
            "{f}: is a file, expected a run folder",
        ),
        (lambda f, tmp: ["rl", "--model", "m", "--out", f], "{f}: is a file, expected a run folder"),
        (
            lambda f, tmp: ["eval", "gsm8k", "--model", "m", "--out", f],
            "{f}: is a file, expected a run folder",
        ),
        (
            lambda f, tmp: ["data", "generate", "--teacher", "synthetic", "--out", tmp / "d.jsonl"],
            "--out {tmp}/d.jsonl: is a folder",
        ),
    ],
)
def test_an_out_that_is_a_file_or_a_folder_is_refused(args, message, tmp_path, capsys):
    f = tmp_path / "a-file"
    f.write_text("keep me\n")
    (tmp_path / "d.jsonl").mkdir()
    write(tmp_path / "in.jsonl", {**PROBLEM, "trace": "Final Answer: 2"})
    one_line(pr1(capsys, *args(f, tmp_path)), message.format(f=f, tmp=tmp_path))
    assert f.read_text() == "keep me\n"


@pytest.mark.parametrize("command", ["sft", "rl", "eval", "data build"])
def test_an_out_folder_that_cannot_be_written_is_refused_first(command, tmp_path, capsys, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    (tmp_path / "in.jsonl").write_text(json.dumps({**PROBLEM, "trace": "Final Answer: 2"}) + "\n")
    access = os.access

    def no_write_in_ro(path, mode, **kw) -> bool:  # as after `chmod a-w ro` (tests may run as root)
        return not (Path(path) == ro and mode & os.W_OK) and access(path, mode, **kw)

    monkeypatch.setattr(os, "access", no_write_in_ro)
    args = {
        "sft": ["sft", "--model", "m", "--data", "d", "--out", ro],
        "rl": ["rl", "--model", "m", "--out", ro],
        "eval": ["eval", "gsm8k", "--model", "m", "--out", ro],
        "data build": ["data", "build", tmp_path / "in.jsonl", "--out", ro],
    }[command]
    one_line(pr1(capsys, *args), f"{ro}", "(permission denied)")
    assert list(ro.iterdir()) == []


def test_data_build_refuses_to_overwrite_its_input(tmp_path, capsys):
    f = write(tmp_path / "in.jsonl", {**PROBLEM, "trace": "Final Answer: 2"})
    before = f.read_bytes()
    one_line(pr1(capsys, "data", "build", f, "--sft-out", f), f"--sft-out {f}: is the input file")
    one_line(
        pr1(capsys, "data", "build", f, "--sft-out", tmp_path / "a.jsonl", "--rl-out", tmp_path / "a.jsonl"),
        "--rl-out",
        "is also --sft-out",
    )
    assert f.read_bytes() == before and not (tmp_path / "a.jsonl").exists()


# ------------------------------------------------------------------------------- one writer per output


def _lock(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    return out / LOCK_FILE


def test_two_evals_on_one_out_the_second_is_refused(tmp_path, capsys):
    out = tmp_path / "e"
    with WriterLock.acquire(_lock(out), str(out)):  # a first `pr1 eval` is writing the folder
        message = one_line(pr1(capsys, "eval", "gsm8k", "--model", "m", "--limit", "1", "--out", out))
    assert f"{out}: another pr1 process is writing it (pid {os.getpid()} on host" in message
    assert sorted(p.name for p in out.iterdir()) == []  # nothing of the second run


def test_two_data_generate_on_one_out_the_second_is_refused(tmp_path, capsys):
    from pr1.coldstart.generate import lock_path

    out = tmp_path / "g.jsonl"
    args = [
        "data",
        "generate",
        *["--teacher", "synthetic", "--source", "synthetic", "--limit", "3", "--out"],
        out,
    ]
    with WriterLock.acquire(lock_path(out), str(out)):
        one_line(pr1(capsys, *args), f"{out}: another pr1 process is writing it")
    assert not out.exists()
    assert pr1(capsys, *args).status == 0  # the first one ended: its lock is free
    assert len(out.read_text().splitlines()) == 3 and not lock_path(out).exists()


def test_a_duplicate_problem_id_is_refused_with_its_line(tmp_path, capsys):
    f = write(tmp_path / "b.jsonl", PROBLEM, {**PROBLEM, "id": "c"}, {**PROBLEM, "problem": "What is 2 + 2?"})
    one_line(pr1(capsys, "eval", f, "--model", "m", "--out", tmp_path / "e"), f"{f}:3: id 'a' repeats {f}:1")
    with pytest.raises(Pr1Error, match="ids must be unique"):
        from pr1.datasets import load_problems

        load_problems(str(f))
