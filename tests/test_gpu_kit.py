"""scripts/gpu-kit without a GPU.

Offline: the target file, wheel repacking (the result verifies and pip installs it), the kit's integrity
check, the time budget. With the package index (marked `network`; `-m "not network"` deselects them offline):
`gpu-kit build` for this Python into a temporary folder (resolution, download, repack, size limit), built once
per session, and `gpu-kit check` run from a Python environment that holds only the target's packages (those of
this environment the target file lists, the CPU torch among them) beside the kit: it installs the kit and pr1
with --no-index --no-deps, imports everything, runs the gpu-marked tests (all skipped) and says which parts
need CUDA. The kit for the real target (Python 3.12) is built too when a Python 3.12 is at hand.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.metadata
import io
import json
import os
import subprocess
import sys
import time
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GPU_KIT = REPO / "scripts" / "gpu-kit"
sys.path.insert(0, str(REPO / "scripts"))

from gpukit import KitError  # noqa: E402  (scripts/ is not a package on the path)
from gpukit.build import MIB, check_size, slim_bitsandbytes, slim_unsloth  # noqa: E402
from gpukit.check import (  # noqa: E402
    SHARES,
    STEP_FUNCTIONS,
    Check,
    CheckOptions,
    StepResult,
    _compose_bench,
    exit_status,
    read_kit,
)
from gpukit.resolve import find_python  # noqa: E402
from gpukit.target import DEFAULT_TARGET, canonical, read_target  # noqa: E402
from gpukit.wheels import record_hash, repack, verify_wheel  # noqa: E402

HERE = f"{sys.version_info.major}.{sys.version_info.minor}"


def _wheel(path: Path, files: dict[str, bytes], *, name: str = "demo", version: str = "1.0") -> Path:
    """A wheel written by hand: `files` plus its dist-info (METADATA, WHEEL, entry points, RECORD)."""
    info = f"{name}-{version}.dist-info"
    files = {
        **files,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/entry_points.txt": b"[console_scripts]\ndemo = demo:main\ntool = demo_cli:app\n",
        f"{info}/top_level.txt": b"demo\ndemo_cli\n",
    }
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    wheel = path / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for member, data in files.items():
            z.writestr(member, data)
            writer.writerow([member, record_hash(data), len(data)])
        writer.writerow([f"{info}/RECORD", "", ""])
        z.writestr(f"{info}/RECORD", record.getvalue())
    return wheel


def test_target_file_is_read_and_bad_lines_are_named(tmp_path):
    target = read_target(DEFAULT_TARGET)
    assert target.installed["torch"] == "2.11.0" and target.installed["transformers"] == "5.17.0"
    assert "peft" in target.installed and target.installed["peft"] is None  # version unknown there
    assert "xformers" in target.left_out and target.left_out["xformers"][1]  # with its reason
    bad = tmp_path / "t.txt"
    bad.write_text("[installed]\ntorch==2.11.0\n[left out]\nxformers\n")
    with pytest.raises(
        KitError, match=r"t.txt:4: a \[left out\] line is NAME==VERSION followed by the reason"
    ):
        read_target(bad)
    bad.write_text("[installed]\nnumpy\n")
    with pytest.raises(KitError, match="must have torch"):
        read_target(bad)


def test_repacked_wheel_is_valid_and_installs(tmp_path):
    lib = bytes(range(256)) * 64
    wheel = _wheel(
        tmp_path,
        {
            "demo/__init__.py": b"def main(): pass\n",
            "demo/lib_a.so": lib,
            "demo/lib_b.so": lib,
            "demo_cli/app.py": b"x = 1\n",
        },
    )
    slim = repack(
        wheel,
        drop=lambda name: name == "demo/lib_b.so" or name.startswith("demo_cli/"),
        build_tag="1slim",
        edits={"entry_points.txt": lambda data: data.replace(b"tool = demo_cli:app\n", b"")},
    )
    assert slim.name == "demo-1.0-1slim-py3-none-any.whl" and wheel.exists()
    assert verify_wheel(slim) == 7  # __init__.py, lib_a.so and the dist-info's five files
    with zipfile.ZipFile(slim) as z:
        names = z.namelist()
        assert "demo/lib_b.so" not in names and not any(n.startswith("demo_cli/") for n in names)
        assert names[-1] == "demo-1.0.dist-info/RECORD"  # dist-info last
        assert b"Build: 1slim" in z.read("demo-1.0.dist-info/WHEEL")
        assert b"tool" not in z.read("demo-1.0.dist-info/entry_points.txt")
        record = z.read("demo-1.0.dist-info/RECORD").decode()
    digest = base64.urlsafe_b64encode(hashlib.sha256(lib).digest()).rstrip(b"=").decode()
    assert f"demo/lib_a.so,sha256={digest},{len(lib)}" in record and "lib_b" not in record
    target = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--quiet"]
    subprocess.run([*pip, "--target", target, slim], check=True)
    assert (target / "demo" / "lib_a.so").read_bytes() == lib and not (target / "demo" / "lib_b.so").exists()
    assert (target / "bin" / "demo").exists() and not (target / "bin" / "tool").exists()


def test_verify_wheel_finds_a_file_that_differs_from_its_record(tmp_path):
    wheel = _wheel(tmp_path, {"demo/__init__.py": b"x = 1\n"})
    with zipfile.ZipFile(wheel, "a") as z:
        z.writestr("demo/extra.py", b"y = 2\n")
    with pytest.raises(KitError, match="demo/extra.py is not in its RECORD"):
        verify_wheel(wheel)


def test_slim_bitsandbytes_refuses_a_cuda_version_it_lacks(tmp_path):
    wheel = _wheel(
        tmp_path,
        {"bitsandbytes/__init__.py": b"", "bitsandbytes/libbitsandbytes_cuda128.so": b"a"},
        name="bitsandbytes",
    )
    with pytest.raises(KitError, match=r"no library for CUDA 130 \(it has 128\): use --cuda"):
        slim_bitsandbytes(wheel, "130")


def test_slim_unsloth_refuses_when_unsloth_imports_a_dropped_package(tmp_path):
    wheel = _wheel(
        tmp_path, {"unsloth/__init__.py": b"from studio import app\n", "studio/app.py": b""}, name="unsloth"
    )
    with pytest.raises(KitError, match="unsloth/__init__.py imports studio"):
        slim_unsloth(wheel)


def test_size_limit():
    check_size(39 * MIB, 40)
    with pytest.raises(KitError, match="over the limit of 40 MiB"):
        check_size(41 * MIB, 40)


def test_each_step_gets_its_share_of_the_time_left(tmp_path):
    run = Check(CheckOptions(out=tmp_path, minutes=8))
    steps = ["tests", "bench", "sft"]
    left = 8 * 60 - 10
    assert run.budget("tests", steps) == pytest.approx(
        left * SHARES["tests"] / sum(SHARES[s] for s in steps), abs=1
    )
    assert run.budget("sft", ["sft"]) == pytest.approx(left, abs=1)  # the last step gets all that is left


def test_a_step_over_its_time_is_stopped_with_its_children(tmp_path):
    run = Check(CheckOptions(out=tmp_path))
    code = (
        "import subprocess, sys, time; "
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print(child.pid, flush=True); time.sleep(60)"
    )
    status, tail = run.run([sys.executable, "-c", code], timeout=3, cwd=tmp_path)
    assert status is None
    grandchild = int(tail[0])  # it goes with its parent's process group
    for _ in range(50):
        if not _alive(grandchild):
            break
        time.sleep(0.1)
    assert not _alive(grandchild)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


def test_a_benchmark_cut_short_keeps_what_it_measured(tmp_path):
    run = Check(CheckOptions(out=tmp_path))

    def stopped_after_rollout(cmd, timeout, cwd=None):  # what pr1 bench leaves when stopped mid-way
        folder = Path(cmd[cmd.index("--out") + 1])
        folder.mkdir(parents=True)
        row = {
            "name": "rollout",
            "key": {"model": "qwen3-0.6b"},
            "failed": False,
            "notes": ["fork/join: 1.2x"],
        }
        (folder / "bench.jsonl").write_text(json.dumps(row) + "\n" + '{"name": "struct')  # a torn last line
        (folder / "BENCH.md").write_text("# pr1 bench\n\n### Rollout engine throughput\n")
        return None, []

    run.run = stopped_after_rollout
    result = STEP_FUNCTIONS["bench"](run, 60)
    assert result.status == "out of time"
    assert result.detail == "measured rollout; not structured, sft, grpo"
    assert result.figures["notes"] == ["rollout: fork/join: 1.2x"]
    _compose_bench(run)
    tables = (tmp_path / "BENCH.md").read_text()
    assert (
        "## qwen3-0.6b" in tables
        and "### Rollout engine throughput" in tables
        and "# pr1 bench\n" not in tables
    )
    assert len((tmp_path / "bench.jsonl").read_text().splitlines()) == 2  # copied as pr1 bench wrote it


def test_exit_status_tells_a_failure_from_a_step_out_of_time():
    skipped, passed = StepResult("bench", "skipped", detail="needs a CUDA GPU"), StepResult("setup", "passed")
    assert exit_status([passed, skipped]) == 0
    assert exit_status([passed, StepResult("bench", "out of time")]) == 3
    assert exit_status([StepResult("setup", "failed"), StepResult("bench", "out of time")]) == 1


def test_check_refuses_a_kit_that_differs_from_its_manifest(tmp_path):
    with pytest.raises(KitError, match="no kit at"):
        read_kit(tmp_path)
    wheel = _wheel(tmp_path, {"demo/__init__.py": b""})
    manifest = {"python": HERE, "wheels": [{"file": wheel.name, "sha256": "0" * 64}], "assets": []}
    (tmp_path / "kit.json").write_text(json.dumps(manifest))
    with pytest.raises(KitError, match="differs from the kit that was built"):
        read_kit(tmp_path)
    (tmp_path / "kit.json").write_text(json.dumps({**manifest, "python": "2.7"}))
    with pytest.raises(KitError, match=f"for Python 2.7, this is {HERE}"):
        read_kit(tmp_path)


# -- with the package index ----------------------------------------------------------------------------------
def _build(python: str, out: Path, data: Path) -> dict:
    """`gpu-kit build` with the shared data as the kit's datasets (a session fixture runs before the autouse
    one that sets PR1_DATA_DIR)."""
    proc = subprocess.run(
        [sys.executable, GPU_KIT, "build", "--python", python, "--out", out],
        capture_output=True,
        text=True,
        env={**os.environ, "PR1_DATA_DIR": str(data)},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "total: " in proc.stdout
    return json.loads((out / "kit.json").read_text())


@pytest.fixture(scope="session")
def kit(tmp_path_factory, shared_data) -> Path:
    """The kit for this Python, built once per session (pip's HTTP cache serves a rebuild)."""
    out = tmp_path_factory.mktemp("gpu-kit") / "kit"
    _build(HERE, out, shared_data)
    return out


def _assert_kit(kit: Path, manifest: dict) -> None:
    names = {canonical(w["name"]) for w in manifest["wheels"]}
    wanted = {"trl", "datasets", "dill", "multiprocess", "math-verify", "latex2sympy2-extended",
              "antlr4-python3-runtime", "textual", "textual-plotext", "plotext", "gguf", "bitsandbytes",
              "unsloth", "unsloth-zoo"}  # fmt: skip
    assert wanted <= names, wanted - names
    target = read_target(DEFAULT_TARGET)
    assert not names & (set(target.installed) | set(target.left_out) | {"vllm"})
    antlr = next(w for w in manifest["wheels"] if w["name"].startswith("antlr4"))
    assert antlr["version"] == "4.13.2"
    for wheel in manifest["wheels"]:
        verify_wheel(kit / wheel["file"])
    bnb = next(w for w in manifest["wheels"] if w["name"] == "bitsandbytes")
    with zipfile.ZipFile(kit / bnb["file"]) as z:
        libs = sorted(n for n in z.namelist() if "libbitsandbytes_" in n)
    assert libs == ["bitsandbytes/libbitsandbytes_cpu.so", "bitsandbytes/libbitsandbytes_cuda130.so"]
    unsloth = next(w for w in manifest["wheels"] if w["name"] == "unsloth")
    with zipfile.ZipFile(kit / unsloth["file"]) as z:
        tops = {n.split("/", 1)[0] for n in z.namelist()}
    assert tops == {"unsloth", unsloth["file"].split("-")[0] + "-" + unsloth["version"] + ".dist-info"}
    for slim in (bnb, unsloth):  # the two large ones, a fraction of their released size
        assert slim["bytes"] < slim["released_as"]["bytes"] / 5
    assert manifest["bytes"] < 40 * MIB
    assert manifest["bytes"] == sum(w["bytes"] for w in manifest["wheels"]) + sum(
        a["bytes"] for a in manifest["assets"]
    )
    assets = {a["path"] for a in manifest["assets"]}
    assert (
        "smollm2-135m-tokenizer/tokenizer.json" in assets
        and len([a for a in assets if a.startswith("data/")]) == 2
    )


@pytest.mark.network
def test_build_makes_a_small_kit_of_what_the_target_lacks(kit):
    _assert_kit(kit, json.loads((kit / "kit.json").read_text()))


@pytest.mark.network
def test_build_for_the_target_python(tmp_path, shared_data):
    try:
        find_python("3.12")
    except KitError:
        pytest.skip("no Python 3.12 here to resolve for the target's Python")
    manifest = _build("3.12", tmp_path / "kit", shared_data)
    _assert_kit(tmp_path / "kit", manifest)
    multiprocess = next(w for w in manifest["wheels"] if w["name"] == "multiprocess")
    assert "-py312-" in multiprocess["file"]  # markers and tags evaluated for 3.12, not for this Python


def _target_like_python(folder: Path, kit: Path) -> Path:
    """A Python environment holding, of this environment's packages, those the target file lists and what
    they require (a consistent environment, as the target's is), except what the kit brings; linked, not
    copied. The target machine, with this machine's CPU torch."""
    from packaging.requirements import Requirement

    venv.EnvBuilder(with_pip=False, symlinks=True).create(folder)
    python = folder / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    installed: dict[str, importlib.metadata.Distribution] = {}
    for d in importlib.metadata.distributions():  # in sys.path order: the first is the one Python imports
        # (a later one can be a vendored copy, e.g. setuptools/_vendor's old typing_extensions, which
        # setuptools puts on sys.path once imported: linking that one broke `pr1 score` in the stand-in)
        installed.setdefault(canonical(d.metadata["Name"]), d)
    carried = {canonical(w["name"]) for w in json.loads((kit / "kit.json").read_text())["wheels"]}
    wanted, seen = [n for n in read_target(DEFAULT_TARGET).installed if n in installed], set()
    while wanted:
        name = wanted.pop()
        if name in seen or name in carried or name not in installed:
            continue
        seen.add(name)
        dist = installed[name]
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                wanted.append(canonical(req.name))
        tops = {Path(f).parts[0] for f in dist.files or [] if not str(f).startswith("..")} - {"__pycache__"}
        for top in tops:
            source, link = Path(dist.locate_file(top)), Path(site) / top
            if source.exists() and not link.exists():
                link.symlink_to(source)
    return python


@pytest.mark.network
def test_check_installs_the_kit_beside_the_cpu_torch_and_says_what_needs_cuda(kit, tmp_path):
    python = _target_like_python(tmp_path / "env", kit)
    probe = subprocess.run([python, "-c", "import trl"], capture_output=True, text=True)
    assert probe.returncode != 0  # the stand-in target really lacks what the kit brings
    out = tmp_path / "check"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PR1_CACHE")}
    env["HOME"] = str(tmp_path)  # no pr1 cache with the embedded model's weights: the tokenizer-only path
    proc = subprocess.run(
        [python, GPU_KIT, "check", "--kit", kit, "--out", out, "--minutes", "6"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    state = json.loads((out / "check.json").read_text())
    steps = {s["name"]: s for s in state["steps"]}
    assert steps["setup"]["status"] == "passed", steps["setup"]
    imports = state["environment"]["imports"]
    site = str((out / "site").resolve())
    assert imports["pr1.cli"].startswith(site) and imports["trl"].startswith(site), imports
    assert (
        state["environment"]["executable"] == str(python) and state["environment"]["cuda_available"] is False
    )
    assert state["environment"]["torch"] == importlib.metadata.version("torch")
    assert state["embedded_model"] == "tokenizer only"
    tests = steps["tests"]
    assert tests["status"] == "skipped" and tests["figures"]["counts"]["skipped"] > 0
    assert set(tests["figures"]["skip_reasons"]) == {"needs a CUDA GPU"}
    for name in ("bench", "bench-4b", "sft", "rl"):
        assert steps[name]["status"] == "skipped" and "needs a CUDA GPU" in steps[name]["detail"]
    summary = (out / "summary.txt").read_text()
    assert "skipped: bench, bench-4b, sft, rl: needs a CUDA GPU" in summary and "exit status 0" in summary
    assert (out / "pytest.xml").is_file() and (out / "check.log").is_file()
