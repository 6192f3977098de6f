"""Wheel files: checking one against its RECORD, and repacking one without some of its files.

A repacked wheel stays a valid wheel (PEP 427): every file it holds is in its RECORD with its sha256 and
size, the RECORD itself is listed without a hash, and the dist-info folder comes last. It gets a build tag
(the optional part of a wheel's file name, and `Build:` in its WHEEL file) saying how it differs from the
release, so the two are never confused.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

from gpukit import KitError

_WHEEL_NAME = re.compile(
    r"^(?P<name>[^-]+)-(?P<version>[^-]+)(?:-(?P<build>\d[^-]*))?-(?P<tags>[^-]+-[^-]+-[^-]+)\.whl$"
)
_SIGNATURES = ("RECORD.jws", "RECORD.p7s")


def record_hash(data: bytes) -> str:
    """A RECORD hash: `sha256=` and the urlsafe base64 digest without padding."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def parse_name(filename: str) -> dict[str, str | None]:
    """The parts of a wheel file name: name, version, build (or None), tags."""
    match = _WHEEL_NAME.match(filename)
    if not match:
        raise KitError(f"{filename}: not a wheel file name (NAME-VERSION[-BUILD]-PY-ABI-PLATFORM.whl)")
    return match.groupdict()


def dist_info(names: list[str], wheel: Path) -> str:
    """The wheel's `NAME-VERSION.dist-info` folder."""
    folders = {n.split("/", 1)[0] for n in names if n.split("/", 1)[0].endswith(".dist-info")}
    if len(folders) != 1:
        raise KitError(f"{wheel.name}: expected one .dist-info folder, found {sorted(folders) or 'none'}")
    return folders.pop()


def verify_wheel(wheel: Path) -> int:
    """Check that every file in `wheel` is in its RECORD with the right sha256 and size, and every RECORD
    entry is in the wheel. Returns the number of files; raises KitError on the first mismatch."""
    with zipfile.ZipFile(wheel) as z:
        names = [i.filename for i in z.infolist() if not i.is_dir()]
        record_name = f"{dist_info(names, wheel)}/RECORD"
        if record_name not in names:
            raise KitError(f"{wheel.name}: no {record_name}")
        rows = list(csv.reader(io.StringIO(z.read(record_name).decode("utf-8"))))
        listed = {row[0]: row for row in rows if row}
        for name in names:
            row = listed.get(name)
            if row is None:
                raise KitError(f"{wheel.name}: {name} is not in its RECORD")
            if name == record_name or name.endswith(_SIGNATURES):
                continue
            data = z.read(name)
            if row[1] != record_hash(data) or row[2] != str(len(data)):
                raise KitError(f"{wheel.name}: {name} does not match its RECORD entry")
        missing = sorted(set(listed) - set(names))
        if missing:
            raise KitError(f"{wheel.name}: its RECORD lists {missing[0]}, which the wheel does not hold")
    return len(names)


def repack(
    wheel: Path,
    *,
    drop: Callable[[str], bool],
    build_tag: str,
    edits: dict[str, Callable[[bytes], bytes]] | None = None,
) -> Path:
    """Write a copy of `wheel` beside it without the files `drop(path)` selects, with `edits` applied to the
    files they name (relative to the dist-info folder, e.g. `entry_points.txt`), a fresh RECORD and the build
    tag `build_tag` (starting with a digit). Returns the new wheel's path; the original is left in place."""
    parts = parse_name(wheel.name)
    if not re.fullmatch(r"\d[A-Za-z0-9_.]*", build_tag):
        raise KitError(f"build tag {build_tag!r}: must start with a digit and hold no '-'")
    out = wheel.with_name(f"{parts['name']}-{parts['version']}-{build_tag}-{parts['tags']}.whl")
    edits = dict(edits or {})
    with zipfile.ZipFile(wheel) as src:
        infos = [i for i in src.infolist() if not i.is_dir()]
        info_dir = dist_info([i.filename for i in infos], wheel)
        record_name = f"{info_dir}/RECORD"
        edits.setdefault("WHEEL", lambda data: _with_build(data, build_tag))
        kept = []
        for info in infos:
            name = info.filename
            if name == record_name or name.endswith(_SIGNATURES):
                continue  # rewritten below; a signature would sign the old RECORD
            if not name.startswith(info_dir + "/") and drop(name):
                continue
            data = src.read(name)
            edit = (
                edits.pop(name.removeprefix(info_dir + "/"), None)
                if name.startswith(info_dir + "/")
                else None
            )
            kept.append((info, edit(data) if edit else data))
        if edits:
            raise KitError(f"{wheel.name}: no {', '.join(sorted(edits))} in {info_dir} to edit")
    # dist-info last, as PEP 427 recommends (installers may read it first or last)
    kept.sort(key=lambda item: item[0].filename.startswith(info_dir + "/"))
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    tmp = out.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info, data in kept:
            copy = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            copy.external_attr = info.external_attr  # keeps the .so files' permissions
            copy.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(copy, data)
            writer.writerow([info.filename, record_hash(data), len(data)])
        writer.writerow([record_name, "", ""])
        record_info = zipfile.ZipInfo(record_name, date_time=kept[-1][0].date_time)
        record_info.compress_type = zipfile.ZIP_DEFLATED
        dst.writestr(record_info, record.getvalue())
    tmp.replace(out)
    verify_wheel(out)
    return out


def _with_build(wheel_file: bytes, build_tag: str) -> bytes:
    """The WHEEL metadata file with `Build: <tag>` (replacing any earlier one)."""
    lines = [line for line in wheel_file.decode("utf-8").splitlines() if not line.startswith("Build:")]
    return ("\n".join([*lines, f"Build: {build_tag}"]) + "\n").encode("utf-8")
