"""`pr1 bench`: run the project's benchmarks and write their tables into a folder.

The folder gets `bench.jsonl` (one line per finished benchmark: its table, settings, raw figures, the device
and library versions, the date) and `BENCH.md` (the same as Markdown, for docs/BENCHMARKS.md). Each benchmark
is appended as soon as it finishes, so an interrupted run keeps what it measured; a rerun into the same folder
reuses the benchmarks already measured with the same model, settings and device (`force` measures them again).
One `pr1 bench` at a time writes a folder (its writer.lock), and never a run folder of another job. The
training benchmarks work in a temporary folder that is removed on every exit (Ctrl-C and SIGTERM included);
one left by a killed process (SIGKILL) is removed by the next `pr1 bench`.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import torch

from pr1.bench import grpo, rollout, sft, vllm
from pr1.bench.common import default_model, environment, load_bench_model, saved_bench_model, settings_for
from pr1.bench.config import BACKENDS, BENCHMARKS, RESULTS_FILE, TABLES_FILE, BenchConfig
from pr1.bench.report import Report
from pr1.errors import Pr1Error
from pr1.files import WriterLock, make_folder
from pr1.jsonl import JsonlWriter, dumps, iter_jsonl, write_text_atomic
from pr1.runs import LOCK_FILE, RUN_FILE, read_run_info

WORKDIR_PREFIX = "pr1-bench-"  # temporary folders of the training benchmarks

_SETTINGS = {
    "rollout": rollout.ROLLOUT_SETTINGS,
    "structured": rollout.STRUCTURED_SETTINGS,
    "sft": sft.SETTINGS,
    "grpo": grpo.SETTINGS,
    "engines": vllm.VLLM_SETTINGS,
}


def check_overrides(config: BenchConfig) -> None:
    """Each `--set` key is a setting of a selected benchmark, and its value parses (before anything runs)."""
    known = {k for name in config.names for table in _SETTINGS[name].values() for k in table}
    for key in config.overrides:
        if key not in known:
            raise Pr1Error(
                f"--set {key}: not a setting of {', '.join(config.names)} (known: {', '.join(sorted(known))})"
            )
    for name in config.names:
        bench_settings(config, name)


def bench_settings(config: BenchConfig, name: str) -> dict[str, Any]:
    """The settings of benchmark `name` on this machine, with the `--set` values that apply to it."""
    settings = settings_for(_SETTINGS[name], config.quick)
    for key, text in config.overrides.items():
        if key in settings:
            settings[key] = _parse(key, text, settings[key])
    return settings


def command_line(config: BenchConfig, out: Path) -> str:
    """The `pr1 bench` command line that runs this config (recorded with every table)."""
    parts = ["pr1", "bench", *config.names, "--out", str(out)]
    parts += ["--model", config.model] if config.model else []
    parts += ["--backends", ",".join(config.backends)] if tuple(config.backends) != BACKENDS else []
    for key, value in config.overrides.items():
        parts += ["--set", f"{key}={value}"]
    parts += ["--quick"] if config.quick else []
    return shlex.join(parts)


def _parse(key: str, text: str, default: Any) -> Any:
    """A `--set` value, typed like the setting's default (a tuple of ints is comma-separated); counts are at
    least 1 and numbers finite, like every benchmark setting's default."""
    try:
        if isinstance(default, bool):
            if text.lower() not in ("true", "false"):
                raise ValueError
            return text.lower() == "true"
        if isinstance(default, tuple):
            value: Any = tuple(int(part) for part in text.split(","))
            counts = value
        else:
            value = type(default)(text)
            counts = (value,) if isinstance(value, int) else ()
        if any(n < 1 for n in counts) or (isinstance(value, float) and not math.isfinite(value)):
            raise ValueError
        return value
    except ValueError:
        raise Pr1Error(f"--set {key}={text}: expected {_kind(default)}") from None


def _kind(default: Any) -> str:
    if isinstance(default, tuple):
        return "comma-separated whole numbers of at least 1"
    kinds = {bool: "true or false", int: "a whole number of at least 1", float: "a finite number"}
    return kinds.get(type(default), "a value")


def run_bench(config: BenchConfig, out: Path, *, log: Callable[[str], None] = print) -> list[Report]:
    """Run the benchmarks of `config` (reusing those `out` already holds) and return their reports in order."""
    check_overrides(config)
    if (out / RUN_FILE).is_file():
        kind = read_run_info(out).get("kind")
        raise Pr1Error(f"--out {out}: holds a '{kind}' run, not benchmarks; choose another --out")
    with WriterLock.acquire(make_folder(out) / LOCK_FILE, str(out)):
        _remove_abandoned_workdirs()
        return _run_bench(config, out, log)


def _remove_abandoned_workdirs() -> None:
    """Remove the temporary folders of `pr1 bench` processes that ended without removing them (killed with
    SIGKILL): a live one holds the writer lock of its folder."""
    for folder in Path(tempfile.gettempdir()).glob(WORKDIR_PREFIX + "*"):
        if not (folder / LOCK_FILE).is_file():
            continue  # just made (its lock comes next), or not pr1's
        try:
            lock = WriterLock.acquire(folder / LOCK_FILE, str(folder))
        except Pr1Error:
            continue  # its process is alive
        shutil.rmtree(folder, ignore_errors=True)
        lock.release()


def _run_bench(config: BenchConfig, out: Path, log: Callable[[str], None]) -> list[Report]:
    model_name = config.model or default_model()
    env = environment()
    results_path = out / RESULTS_FILE
    done: dict[str, dict[str, Any]] = {}
    if results_path.is_file() and not config.force:
        done = _measured(results_path)
    reports: list[Report] = []
    loaded: list[Any] = []  # the in-process model, loaded once for rollout and structured
    with (
        tempfile.TemporaryDirectory(prefix=WORKDIR_PREFIX) as tmp,
        WriterLock.acquire(Path(tmp) / LOCK_FILE, tmp),  # says "in use" to `_remove_abandoned_workdirs`
        JsonlWriter(results_path) as writer,
    ):
        for name in config.names:
            settings = bench_settings(config, name)
            key = {
                "model": model_name,
                "settings": settings,
                "device": env["device"],
                "backends": list(config.backends) if name in ("sft", "grpo") else None,
            }
            previous = done.get(name)
            if previous is not None and previous["key"] == _jsonable(key) and not previous["failed"]:
                log(f"{name}: measured on {previous['date']} (reused; --force measures it again)")
                reports.append(_report(previous))
                continue
            log(f"{name}: measuring")
            start, load_before = time.perf_counter(), os.getloadavg()[0]
            if name == "engines":
                report = _engines_report(model_name, Path(tmp), settings, loaded, log)
            elif name in ("rollout", "structured"):
                if not loaded:
                    loaded.extend(load_bench_model(model_name))
                run = rollout.rollout_report if name == "rollout" else rollout.structured_report
                report = run(*loaded, settings, log=log)
            else:
                loaded.clear()  # the training children get the whole GPU
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                # saved once with the tags (the forced trajectory shapes need their ids in the tokenizer)
                child_model = saved_bench_model(model_name, Path(tmp) / "model")
                run = sft.sft_report if name == "sft" else grpo.grpo_report
                report = run(child_model, Path(tmp), settings, config.backends, log)
            row = {
                "name": name,
                "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                "command": command_line(config, out),
                "seconds": round(time.perf_counter() - start, 1),
                # the machine's 1-minute load average before and after: how busy it was (not a target)
                "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                "environment": env,
                "key": _jsonable(key),
                **asdict(report),
            }
            writer.write(row)
            done[name] = row
            reports.append(report)
            write_text_atomic(out / TABLES_FILE, tables_markdown([done[n] for n in BENCHMARKS if n in done]))
    return reports


def _engines_report(
    model_name: str, tmp: Path, settings: dict[str, Any], loaded: list[Any], log: Callable[[str], None]
) -> Report:
    """vLLM and the hf engine side by side on the same prompts (skipped, with the reason, without vLLM)."""
    from pr1.rollout.engines import NOT_INSTALLED, vllm_available

    if not vllm_available():
        return Report(
            "engines", "Rollout engines: vLLM and hf side by side", [], [], [f"skipped: {NOT_INSTALLED}"]
        )
    loaded.clear()  # vLLM takes its share of the memory
    return vllm.engines_report(saved_bench_model(model_name, tmp / "model"), settings, log=log)


def _measured(path: Path) -> dict[str, dict[str, Any]]:
    """The benchmarks bench.jsonl holds, by name. A line that is not a whole row of `pr1 bench` (torn by a
    kill, edited by hand) is no measurement: that benchmark is measured again."""
    needed = {"name", "date", "command", "seconds", "environment", "key", *(f.name for f in fields(Report))}
    rows = (row for _, row in iter_jsonl(path, skip_bad=True))
    return {row["name"]: row for row in rows if needed <= row.keys() and isinstance(row["name"], str)}


def _jsonable(value: Any) -> Any:
    """`value` as it reads back from JSON (tuples become lists), to compare a stored key with a new one."""
    return json.loads(dumps(value))


def _report(row: dict[str, Any]) -> Report:
    return Report(**{f.name: row[f.name] for f in fields(Report)})


def tables_markdown(rows: list[dict[str, Any]]) -> str:
    """BENCH.md: per benchmark its date, device and versions, command and table."""
    parts = ["# pr1 bench\n"]
    for row in rows:
        env = row["environment"]
        versions = ", ".join(f"{k} {v}" for k, v in env.items() if k != "device")
        load = row.get("load_average")
        busy = f", load average {load[0]:g} → {load[1]:g}" if load else ""
        measured = (
            f"**{row['date'][:10]}, {env['device']}, {versions}, model {row['key']['model']}** "
            f"({row['seconds']:.0f} s{busy}): `{row['command']}`"
        )
        parts.append(_report(row).markdown(measured))
    return "\n".join(parts)
