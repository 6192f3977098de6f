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

from pr1.checkpoints import CHECKPOINTS_DIR
from pr1.errors import Pr1Error, decode_message, os_reason
from pr1.files import WriterLock, make_folder, not_writable_reason
from pr1.jsonl import JsonlWriter, iter_jsonl, read_jsonl, write_json_atomic
from pr1.logs import log_into

RUN_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"
ROLLOUTS_FILE = "rollouts.jsonl"
EVENTS_FILE = "events.jsonl"
SUMMARY_FILE = "summary.json"  # an eval's figures
TENSORBOARD_DIR = "tensorboard"  # event files of `--report-to tensorboard`
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
        # A resumed job replays the steps after its last checkpoint; their rows are in the streams already
        # (the replay computes the same ones), so rows of the steps a stream held when it was opened are not
        # written again: each step's rows appear once (a step may have several, e.g. an evaluation's).
        self._held = {
            "metrics": _last_step(path / METRICS_FILE),
            "rollouts": _last_step(path / ROLLOUTS_FILE),
        }

    @classmethod
    def create(cls, path: str | Path, kind: str, config: Any, *, resume: bool | None = False) -> Run:
        """Open RUN_DIR for a `kind` job ("sft", "rl", "eval", ...), starting or resuming it as
        `saved_settings` allows (`resume`: the same meaning). A folder that another live process is writing
        is refused; a resumed run records this process as its writer (`pid`, `host`)."""
        path = Path(path)
        saved_settings(path, kind, resume=resume)  # refuse before making anything
        lock = WriterLock.acquire(make_folder(path) / LOCK_FILE, str(path))
        try:
            run, replaced = cls._open(path, kind, config, resume, lock)
        except BaseException:
            lock.release()
            raise
        run.event("resume" if "resumed_at" in run.info else "start")
        if replaced is not None:
            run.event("notice", message=f"replaced a run that {replaced} before its first step")
        return run

    @classmethod
    def _open(
        cls, path: Path, kind: str, config: Any, resume: bool | None, lock: WriterLock
    ) -> tuple[Run, str | None]:
        """The run, and the status of a run it replaced (one that failed before its first step), if any."""
        writer = {"host": platform.node(), "pid": os.getpid()}
        replaced = None
        if saved_settings(path, kind, resume=resume) is not None:  # again: the folder is ours now
            info = read_run_info(path)
            resumed = info.get("resumed_at")
            info["resumed_at"] = [*(resumed if isinstance(resumed, list) else []), time.time()]
            info.update(status="running", **writer)  # pr1.run_status checks this process from now on
        else:
            if (path / RUN_FILE).exists():  # a run that failed before its first step (`never_started`)
                replaced = read_run_info(path).get("status")
                for name in (RUN_FILE, METRICS_FILE, ROLLOUTS_FILE, EVENTS_FILE):
                    (path / name).unlink(missing_ok=True)
                print(f"{path}: replacing a run that {replaced} before its first step", file=sys.stderr)
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
        log_into(path)
        return cls(path, info, lock), replaced

    def log_metrics(self, step: int, **metrics: Any) -> None:
        """A metrics row of `step`, unless the stream held that step when this run was opened (a replayed
        step; step 0, the step of jobs without steps, is always written)."""
        if self._new("metrics", step):
            self.metrics.write({"step": step, "time": time.time(), **metrics})

    def log_rollouts(self, step: int, rows: list[dict]) -> None:
        """Rollout rows of `step`, unless the stream held rows of that step when opened (see `log_metrics`)."""
        if self._new("rollouts", step):
            self.rollouts.write_many({"step": step, **row} for row in rows)

    def _new(self, stream: str, step: int) -> bool:
        return not 0 < step <= self._held[stream]

    def event(self, event: str, **data: Any) -> None:
        self.events.write({"event": event, "time": time.time(), **data})

    def update_info(self, **fields: Any) -> None:
        self.info.update(fields)
        write_json_atomic(self.path / RUN_FILE, self.info)

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
        if never_started(path, info):
            return None  # Run.create replaces it, and says so
        raise Pr1Error(
            f"{path}: a run already exists here; pass --resume to continue it or choose another --out"
        )
    config = info.get("config")
    if not isinstance(config, dict):
        raise Pr1Error(f"{path / RUN_FILE}: 'config' is not a JSON object, so the run cannot be resumed")
    return config


def never_started(path: str | Path, info: dict) -> bool:
    """A run that failed (or was interrupted) before it logged anything: nothing in it is worth keeping, so a new
    run may replace it without --resume."""
    path = Path(path)
    if info.get("status") not in ("failed", "interrupted"):
        return False
    logged = any((path / f).is_file() and (path / f).stat().st_size for f in (METRICS_FILE, ROLLOUTS_FILE))
    return not logged and not any((path / CHECKPOINTS_DIR).glob("step-*"))


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


def adapter_folder(path: str | Path) -> Path:
    """What `--adapter` names: an adapter folder as given, or a `pr1 sft` / `pr1 rl` run folder's `final/`."""
    path = Path(path)
    if not (path / RUN_FILE).is_file():
        return path
    final = path / "final"
    if not (final / "adapter_config.json").is_file():
        raise Pr1Error(f"--adapter {path}: this run folder holds no adapter in final/ (yet)")
    return final


def _last_step(path: Path) -> int:
    """The highest `step` in a stream (0 when there is none)."""
    if not path.is_file():
        return 0
    steps = [row.get("step") for _, row in iter_jsonl(path, skip_bad=True)]
    return max((s for s in steps if isinstance(s, int) and not isinstance(s, bool)), default=0)


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


def log_trackers_into(run_dir: str | Path) -> None:
    """Have the trackers that write files (TensorBoard) write them into RUN_DIR/tensorboard: transformers
    reads the folder from the environment (its default is under the trainer's output_dir, checkpoints/)."""
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(Path(run_dir) / TENSORBOARD_DIR)


def peak_memory_gb() -> float:
    """The `memory_gb` metric: peak accelerator memory allocated by torch, or on CPU the process's peak
    resident memory, in GB (10^9 bytes)."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 1e9
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # Linux reports KiB
