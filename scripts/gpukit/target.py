"""The target machine's package list (scripts/gpu-kit-target.txt): what is installed there, and what the kit
deliberately leaves out."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from gpukit import KitError

DEFAULT_TARGET = Path(__file__).resolve().parents[1] / "gpu-kit-target.txt"
_SECTIONS = ("installed", "left out")
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_LINE = re.compile(rf"^(?P<name>{_NAME})(?:==(?P<version>[^\s#]+))?(?:\s+(?P<rest>.*))?$")


def canonical(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Target:
    installed: dict[str, str | None] = field(
        default_factory=dict
    )  # canonical name -> version (None: unknown)
    left_out: dict[str, tuple[str, str]] = field(default_factory=dict)  # canonical name -> (version, reason)

    def has(self, name: str) -> bool:
        key = canonical(name)
        return key in self.installed or key in self.left_out


def read_target(path: Path) -> Target:
    """Parse a target file; a malformed line raises KitError naming it."""
    if not path.is_file():
        raise KitError(f"no target file at {path}")
    target = Target()
    section = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        where = f"{path}:{number}"
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]").strip()
            if section not in _SECTIONS:
                raise KitError(f"{where}: unknown section [{section}]; expected [installed] or [left out]")
            continue
        match = _LINE.match(line)
        if section is None or not match:
            raise KitError(
                f"{where}: expected NAME or NAME==VERSION under [installed] or [left out]: {raw!r}"
            )
        name, version, rest = match["name"], match["version"], (match["rest"] or "").strip()
        key = canonical(name)
        if target.has(key):
            raise KitError(f"{where}: {name} is listed twice")
        if section == "installed":
            if rest and not rest.startswith("#"):
                raise KitError(f"{where}: unexpected text after {name}: {rest!r}")
            target.installed[key] = version
        else:
            if not version or not rest:
                raise KitError(f"{where}: a [left out] line is NAME==VERSION followed by the reason")
            target.left_out[key] = (version, rest)
    if "torch" not in target.installed:
        raise KitError(f"{path}: the target must have torch under [installed] (the kit never carries it)")
    return target
