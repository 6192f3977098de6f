"""The run folder: what every long command writes and what the dashboard reads.

    RUN_DIR/
      run.json          kind, name, command line, resolved config, versions, git commit, status
      metrics.jsonl     one JSON object per step (always has "step" and "time")
      rollouts.jsonl    sampled traces with their rewards (always "step", "completion", "reward")
      events.jsonl      start / checkpoint / eval / end events
      checkpoints/      step-NNNNNN/ folders (safetensors)
      errors.log        the traceback of each failure (the console shows one line)
      writer.lock       held by the one process writing the folder (pid, host), removed when it ends

Streams are append-only, one complete line per row, so a reader can tail them live and an interrupted
run keeps every row it finished. The schema is documented in docs/RUN_FOLDER.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import re
import resource
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pr1.errors import Pr1Error, decode_message, os_reason
from pr1.files import WriterLock, make_folder, not_writable_reason
from pr1.jsonl import JsonlWriter, read_jsonl, write_json_atomic

RUN_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"
ROLLOUTS_FILE = "rollouts.jsonl"
EVENTS_FILE = "events.jsonl"
SUMMARY_FILE = "summary.json"  # an eval's figures
CHECKPOINTS_DIR = "checkpoints"
ERRORS_FILE = "errors.log"  # tracebacks of failures
LOCK_FILE = "writer.lock"  # pr1.files.WriterLock: one writer per run folder
# api_key, hf_token, auth_token, secret, password ... but not max_tokens or api_key_env (a variable's name)
SECRET_RE = re.compile(r"(api_?key$|(^|_)token$|secret|passw(or)?d|^authorization$)")


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("pr1", "torch", "transformers", "trl", "peft", "datasets", "unsloth", "bitsandbytes"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def redact(config: Any) -> Any:
    """Drop values whose key looks like a secret, so API keys never reach a run folder."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    if isinstance(config, dict):
        return {
            k: ("<redacted>" if SECRET_RE.search(str(k).lower()) and v else redact(v))
            for k, v in config.items()
        }
    if isinstance(config, (list, tuple)):
        return [redact(v) for v in config]
    return config


class Run:
    """A run folder opened for writing. `Run.create` starts or resumes one; the process that holds a Run is
    the folder's one writer (its `writer.lock`) until `finish` or its end."""

    def __init__(self, path: Path, info: dict, lock: WriterLock | None = None):
        self.path = path
        self.info = info
        self.lock = lock
        self.metrics = JsonlWriter(path / METRICS_FILE)
        self.rollouts = JsonlWriter(path / ROLLOUTS_FILE)
        self.events = JsonlWriter(path / EVENTS_FILE)

    @classmethod
    def create(cls, path: str | Path, kind: str, config: Any, *, resume: bool | None = False) -> Run:
        """Open RUN_DIR for a `kind` job ("sft", "rl", "eval", ...), starting or resuming it as
        `saved_settings` allows (`resume`: the same meaning). A folder that another live process is writing
        is refused; a resumed run records this process as its writer (`pid`, `host`)."""
        path = Path(path)
        saved_settings(path, kind, resume=resume)  # refuse before making anything
        lock = WriterLock.acquire(make_folder(path) / LOCK_FILE, str(path))
        try:
            run = cls._open(path, kind, config, resume, lock)
        except BaseException:
            lock.release()
            raise
        run.event("resume" if "resumed_at" in run.info else "start")
        return run

    @classmethod
    def _open(cls, path: Path, kind: str, config: Any, resume: bool | None, lock: WriterLock) -> Run:
        writer = {"host": platform.node(), "pid": os.getpid()}
        if saved_settings(path, kind, resume=resume) is not None:  # again: the folder is ours now
            info = read_run_info(path)
            resumed = info.get("resumed_at")
            info["resumed_at"] = [*(resumed if isinstance(resumed, list) else []), time.time()]
            info.update(status="running", **writer)  # pr1.run_status checks this process from now on
        else:
            info = {
                "kind": kind,
                "name": path.name,
                "created": time.time(),
                "command": redact(sys.argv),
                "config": redact(config),
                "versions": versions(),
                "git_commit": git_commit(),
                **writer,
                "status": "running",
            }
        write_json_atomic(path / RUN_FILE, info)
        return cls(path, info, lock)

    def log_metrics(self, step: int, **metrics: Any) -> None:
        self.metrics.write({"step": step, "time": time.time(), **metrics})

    def log_rollouts(self, step: int, rows: list[dict]) -> None:
        self.rollouts.write_many({"step": step, **row} for row in rows)

    def event(self, event: str, **data: Any) -> None:
        self.events.write({"event": event, "time": time.time(), **data})

    def update_info(self, **fields: Any) -> None:
        self.info.update(fields)
        write_json_atomic(self.path / RUN_FILE, self.info)

    def checkpoint_dir(self, step: int) -> Path:
        return self.path / CHECKPOINTS_DIR / f"step-{step:06d}"

    @contextmanager
    def recording(self) -> Iterator[Run]:
        """Mark the run `interrupted` (Ctrl-C, SIGTERM) or `failed` (with the error's first line, and its
        traceback in errors.log) if the block raises; the caller finishes it itself on success, with its
        summary."""
        try:
            yield self
        except KeyboardInterrupt:
            self.finish("interrupted")
            raise
        except BaseException as err:
            self.log_error(err)
            self.finish("failed", error=(str(err).strip().splitlines() or [type(err).__name__])[0])
            raise

    def log_error(self, err: BaseException) -> None:
        """Append `err`'s traceback to errors.log (best effort: the disk may be what failed)."""
        text = "".join(traceback.format_exception(err))
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with contextlib.suppress(OSError), (self.path / ERRORS_FILE).open("a", encoding="utf-8") as f:
            f.write(f"--- {stamp} pid {os.getpid()}\n{text}")

    def finish(self, status: str = "finished", **summary: Any) -> None:
        """Record the end (an `end` event, run.json's status and summary), close the streams and give up the
        folder's lock, even when recording fails (a full disk)."""
        try:
            self.event("end", status=status, **summary)
            self.update_info(status=status, finished=time.time(), **({"summary": summary} if summary else {}))
        finally:
            for w in (self.metrics, self.rollouts, self.events):
                w.close()
            if self.lock is not None:
                self.lock.release()


# ------------------------------------------------------------------------------------------- resuming


def saved_settings(path: str | Path, kind: str, *, resume: bool | None) -> dict | None:
    """The one check before a job opens its run folder; returns the settings to resume with, or None for a new
    run. A folder holding a run of another kind is refused, and so is a path that is a file or a folder this
    process cannot write in. `resume=True` (`--resume`): the folder must hold a `kind` run; False: it must hold
    none; None: resume when it holds one (jobs whose rerun resumes: `pr1 eval`, `pr1 demo`)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise Pr1Error(f"{path}: is a file, expected a run folder; choose another --out")
    if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
        raise Pr1Error(
            f"{path}: cannot write in this folder ({not_writable_reason(path)}); choose another --out"
        )
    if not (path / RUN_FILE).exists():
        if resume:
            raise Pr1Error(f"--resume: {path} holds no run to resume (no {RUN_FILE})")
        return None
    info = read_run_info(path)
    if info.get("kind") != kind:
        raise Pr1Error(f"{path}: holds a '{info.get('kind')}' run, not '{kind}'; choose another --out")
    if resume is False:
        raise Pr1Error(
            f"{path}: a run already exists here; pass --resume to continue it or choose another --out"
        )
    config = info.get("config")
    if not isinstance(config, dict):
        raise Pr1Error(f"{path / RUN_FILE}: 'config' is not a JSON object, so the run cannot be resumed")
    return config


def check_resume(
    saved: Mapping[str, Any],
    given: Mapping[str, Any],
    may_change: Collection[str],
    spell: Callable[[str, Any], tuple[str, str]],
    *,
    where: str = "this run folder",
) -> None:
    """The resume rule: a resumed run keeps the settings it started with; the flags given when resuming may
    change only the job's `may_change` keys (the steps to reach, how often to save, ...). One error names
    every other setting they change (`spell(name, value)`: the setting's name and name-with-value as the user
    gives them, e.g. ("--lr", "--lr 0.0001"))."""
    changed = [k for k, v in given.items() if k not in may_change and k in saved and saved[k] != v]
    if not changed:
        return
    what = "; ".join(f"{spell(k, given[k])[1]}: this run started with {saved[k]!r}" for k in changed)
    allowed = ", ".join(sorted(spell(k, None)[0] for k in may_change)) or "nothing"
    raise Pr1Error(
        f"{where} holds a run with other settings: {what} (a resumed run keeps its settings and may change "
        f"only {allowed}; or choose another --out)"
    )


def read_run_info(path: str | Path) -> dict:
    """run.json of the run folder `path`, as a dict; a Pr1Error (one line) when it is missing or unreadable."""
    f = Path(path) / RUN_FILE
    if not f.is_file():
        raise Pr1Error(f"{path}: not a pr1 run folder (no {RUN_FILE})")
    try:
        data = f.read_bytes()
        info = json.loads(data.decode("utf-8"))
    except OSError as e:
        raise Pr1Error(f"{f}: cannot read ({os_reason(e)})") from None
    except UnicodeDecodeError as e:
        raise Pr1Error(decode_message(e, str(f))) from None
    except json.JSONDecodeError as e:
        raise Pr1Error(f"{f}: invalid JSON ({e.msg})") from None
    except RecursionError:
        raise Pr1Error(f"{f}: invalid JSON (nested too deeply)") from None
    if not isinstance(info, dict):
        raise Pr1Error(f"{f}: expected a JSON object, got {type(info).__name__}")
    return info


def read_metrics(path: str | Path) -> list[dict]:
    f = Path(path) / METRICS_FILE
    return read_jsonl(f) if f.exists() else []


def latest_checkpoint(path: str | Path) -> Path | None:
    ckpts = sorted((Path(path) / CHECKPOINTS_DIR).glob("step-*"))
    complete = [c for c in ckpts if (c / "COMPLETE").exists()]
    return complete[-1] if complete else None


def mark_checkpoint_complete(ckpt: Path, **state: Any) -> None:
    """Written last, after every file of the checkpoint: a checkpoint without it is ignored on resume."""
    write_json_atomic(ckpt / "COMPLETE", {"time": time.time(), **state})


def peak_memory_gb() -> float:
    """The `memory_gb` metric: peak accelerator memory allocated by torch, or on CPU the process's peak
    resident memory, in GB (10^9 bytes)."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 1e9
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # Linux reports KiB
