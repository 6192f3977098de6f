"""Which wheels the target lacks, by pip's own resolver, and downloading them for the target's platform.

pip resolves pr1's requirements inside a scratch environment of the target's Python version that holds an
empty stand-in (a dist-info folder with a name and a version, nothing else) for every package the target has:
pip keeps what is "installed" when it satisfies the requirements, so its report lists exactly what is missing.
pip runs under that interpreter (`pip --python`) because it evaluates environment markers with the interpreter
it runs in, whatever `--python-version` says (pypa/pip#13296).
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from gpukit import KitError
from gpukit.target import Target, canonical
from gpukit.wheels import file_sha256

# The target runs PyPI's torch, whose wheels are manylinux_2_28, so its glibc is at least 2.28; pip matches a
# manylinux_2_N tag only when N is listed, hence every N up to 28 (and the legacy aliases).
PLATFORMS = [f"manylinux_2_{n}_x86_64" for n in range(28, 4, -1)] + [
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
]
_PIP_AT_LEAST = (23, 3)  # --dry-run with --platform/--python-version (pypa/pip#12215)


@dataclass
class Resolved:
    """One distribution of pip's installation report."""

    name: str
    version: str
    filename: str
    sha256: str
    requires: list[str]  # its Requires-Dist lines
    requested: bool  # named by pr1's requirements, not only by another package

    @property
    def key(self) -> str:
        return canonical(self.name)


def platform_args(python: str) -> list[str]:
    args = ["--only-binary=:all:", "--implementation", "cp", "--python-version", python]
    for tag in PLATFORMS:
        args += ["--platform", tag]
    return args


def find_python(version: str) -> str:
    """An interpreter of Python `version` (e.g. "3.12") on this machine: this one, `pythonX.Y` on PATH, or one
    of pyenv's. Raises KitError when there is none."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return sys.executable
    pyenv = Path(os.environ.get("PYENV_ROOT") or "~/.pyenv").expanduser()
    candidates = [
        shutil.which(f"python{version}"),
        f"/usr/bin/python{version}",
        f"/usr/local/bin/python{version}",
        *sorted(
            glob.glob(str(pyenv / "versions" / f"{version}.*" / "bin" / f"python{version}")), reverse=True
        ),
    ]
    for candidate in candidates:
        if candidate and _python_version(candidate) == version:
            return candidate
    raise KitError(
        f"no Python {version} here to run pip's resolver under (pip evaluates environment markers with the "
        f"interpreter it runs in): put python{version} on PATH, or run gpu-kit with a Python {version}"
    )


def _python_version(python: str) -> str | None:
    try:
        proc = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def check_pip() -> None:
    """This interpreter's pip must be recent enough for a cross-platform dry run."""
    proc = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True, text=True)
    match = re.match(r"pip (\d+)\.(\d+)", proc.stdout)
    if proc.returncode != 0 or not match:
        raise KitError(f"gpu-kit build needs pip in {sys.executable}: {sys.executable} -m ensurepip")
    if tuple(int(g) for g in match.groups()) < _PIP_AT_LEAST:
        raise KitError(
            f"gpu-kit build needs pip >= {'.'.join(map(str, _PIP_AT_LEAST))} (this is {proc.stdout.split()[1]}): "
            f"{sys.executable} -m pip install -U pip"
        )


def stand_in_environment(python: str, target: Target, folder: Path) -> str:
    """A scratch environment of `python` holding a stand-in for each package of `target` with a known version
    (installed or left out). Returns its interpreter."""
    subprocess.run([python, "-m", "venv", "--without-pip", str(folder)], check=True)
    env_python = str(folder / "bin" / "python")
    site = subprocess.run(
        [env_python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    known = {name: version for name, version in target.installed.items() if version}
    known.update({name: version for name, (version, _) in target.left_out.items()})
    for name, version in known.items():
        info = Path(site) / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        (info / "INSTALLER").write_text("gpu-kit stand-in\n")
        (info / "RECORD").write_text("")
    return env_python


def resolve(requirements: list[str], target: Target, python: str, workdir: Path) -> list[Resolved]:
    """pip's resolution of `requirements` for Python `python` on the target: what it would install there."""
    check_pip()
    env_python = stand_in_environment(find_python(python), target, workdir / "resolver-env")
    report = workdir / "resolution.json"
    cmd = [sys.executable, "-m", "pip", "--python", env_python, "install", "--dry-run", "--quiet"]
    cmd += ["--report", str(report), *platform_args(python), *requirements]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip() and "Location" not in line]
        raise KitError("pip could not resolve pr1's requirements for the target: " + " / ".join(lines[-6:]))
    rows = json.loads(report.read_text(encoding="utf-8"))["install"]
    return [
        Resolved(
            name=row["metadata"]["name"],
            version=row["metadata"]["version"],
            filename=row["download_info"]["url"].rsplit("/", 1)[-1],
            sha256=row["download_info"]["archive_info"]["hashes"]["sha256"],
            requires=row["metadata"].get("requires_dist", []),
            requested=bool(row.get("requested")),
        )
        for row in rows
    ]


def required_by(name: str, resolved: list[Resolved], requirements: list[str]) -> list[str]:
    """Who names distribution `name` among its requirements: "pr1" and/or resolved distributions. A requirement
    of an extra counts only when something asks for that extra (`math-verify[antlr4_13_2]`)."""
    key = canonical(name)
    active = [req for r in resolved for req in r.requires if "extra" not in req] + requirements
    extras = {(_requirement_name(line), extra) for line in active for extra in _extras(line)}
    who = ["pr1"] if any(_requirement_name(r) == key for r in requirements) else []
    for r in resolved:
        if r.key == key:
            continue
        for req in r.requires:
            extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", req)
            if _requirement_name(req) == key and (not extra or (r.key, extra.group(1)) in extras):
                who.append(r.name)
                break
    return who


def _requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return canonical(match.group(1)) if match else ""


def _extras(requirement: str) -> list[str]:
    match = re.match(r"\s*[A-Za-z0-9][A-Za-z0-9._-]*\s*\[([^\]]*)\]", requirement)
    return [e.strip() for e in match.group(1).split(",") if e.strip()] if match else []


def download(items: list[Resolved], python: str, folder: Path) -> dict[str, Path]:
    """Download the wheels of `items` (pip download, no dependencies, for the target's Python and platform)
    into `folder`, each checked against the sha256 pip's resolver chose. Returns {canonical name: path}."""
    if not items:
        return {}
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(folder)]
    cmd += [*platform_args(python), *(f"{item.name}=={item.version}" for item in items)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip() and "Location" not in line]
        raise KitError("pip download failed: " + " / ".join(lines[-4:]))
    by_hash = {file_sha256(path): path for path in folder.glob("*.whl")}
    found = {}
    for item in items:
        path = by_hash.get(item.sha256)
        if path is None:
            raise KitError(
                f"pip download did not fetch {item.filename} (sha256 {item.sha256[:12]}…), the file the resolver "
                f"chose for {item.name} {item.version}"
            )
        found[item.key] = path
    return found
