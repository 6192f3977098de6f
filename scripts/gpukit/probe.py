"""Run by `gpu-kit check` inside the installed kit's environment: what this machine is, and whether pr1 and
everything it imports load from the kit and the machine's own packages.

Usage: python probe.py KIT_MANIFEST SITE OUT_JSON. Writes OUT_JSON (and prints one line per finding);
exits 1 when an import or a functional check fails.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

# What pr1 imports, beyond torch and the target's own packages (unsloth is probed in its own process: it must
# be imported before trl, transformers and peft, and needs a GPU).
MODULES = ("pr1.cli", "trl", "datasets", "math_verify", "textual", "textual_plotext", "gguf", "bitsandbytes")


def main(manifest_path: str, site: str, out: str) -> int:
    manifest = json.loads(Path(manifest_path).read_text(encoding="utf-8"))
    info: dict = {
        "python": platform.python_version(),
        "executable": sys.executable,
        "failures": [],
        "warnings": [],
    }
    import torch

    cuda = torch.cuda.is_available()
    info["torch"] = torch.__version__
    info["torch_cuda"] = torch.version.cuda
    info["cuda_available"] = cuda
    info["device"] = torch.cuda.get_device_name(0) if cuda else f"CPU ({platform.machine()})"
    if cuda:
        free, total = torch.cuda.mem_get_info()
        info["gpu_memory_gb"] = round(total / 1e9, 1)
        info["capability"] = ".".join(map(str, torch.cuda.get_device_capability(0)))
        wanted = f"{manifest['cuda'][:-1]}.{manifest['cuda'][-1]}"
        if torch.version.cuda != wanted:
            info["failures"].append(
                f"torch is built for CUDA {torch.version.cuda}, the kit's bitsandbytes for {wanted}: "
                f"rebuild the kit with --cuda {torch.version.cuda.replace('.', '')}"
            )
    info["imports"] = {}
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except Exception as err:  # any import error is a finding, not a crash
            info["failures"].append(f"import {name}: {type(err).__name__}: {err}")
            continue
        where = str(Path(module.__file__).resolve())
        info["imports"][name] = where
    pr1_file = info["imports"].get("pr1.cli", "")
    if pr1_file and not pr1_file.startswith(str(Path(site).resolve())):
        info["warnings"].append(f"pr1 was imported from {pr1_file}, not from the kit's install in {site}")
    _functional(info, cuda)
    _requirements(info, manifest)
    info["unsloth"] = _unsloth(info) if cuda else None
    Path(out).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    for line in info["failures"]:
        print(f"FAILED: {line}")
    for line in info["warnings"]:
        print(f"warning: {line}")
    return 1 if info["failures"] else 0


def _functional(info: dict, cuda: bool) -> None:
    """The native and generated parts load and work: the ANTLR LaTeX parser, the embedded tokenizer (from the
    kit), and on a GPU bitsandbytes' 4-bit quantization with its CUDA library."""
    checks = []
    try:
        from math_verify import parse, verify

        if not verify(parse("$\\frac{1}{2}$"), parse("$0.5$")):
            raise ValueError("\\frac{1}{2} and 0.5 graded as different")
        checks.append("math-verify parses LaTeX")
    except Exception as err:
        info["failures"].append(f"math-verify: {type(err).__name__}: {err}")
    try:
        from pr1.models import EMBEDDED_MODEL, load_tokenizer

        checks.append(f"embedded tokenizer: {len(load_tokenizer(EMBEDDED_MODEL))} tokens")
    except Exception as err:
        info["failures"].append(f"the embedded tokenizer: {type(err).__name__}: {err}")
    try:
        checks.append(_cli_score())
    except Exception as err:
        info["failures"].append(f"pr1 score: {type(err).__name__}: {err}")
    if cuda:
        try:
            import bitsandbytes.functional as bnbf
            import torch

            weight = torch.randn(256, 256, device="cuda", dtype=torch.bfloat16)
            packed, state = bnbf.quantize_4bit(weight, quant_type="nf4")
            error = (bnbf.dequantize_4bit(packed, state) - weight).abs().mean().item()
            if not error < 0.2:
                raise ValueError(f"mean 4-bit round-trip error {error:.3f}")
            checks.append(f"bitsandbytes 4-bit on CUDA (round-trip error {error:.3f})")
        except Exception as err:
            info["failures"].append(f"bitsandbytes on CUDA: {type(err).__name__}: {err}")
    info["checks"] = checks


def _cli_score() -> str:
    """The `pr1` command end to end on one row (typer parses its options lazily, at the first call)."""
    with tempfile.TemporaryDirectory() as tmp:
        rows = Path(tmp) / "rows.jsonl"
        rows.write_text(json.dumps({"completion": "2 + 2 = 4, so \\boxed{4}.", "answer": "4"}) + "\n")
        cmd = [sys.executable, "-m", "pr1", "score", str(rows), "--json", "--reward", "accuracy"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError((proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1])
    if not json.loads(proc.stdout.splitlines()[-1])["correct"]:
        raise ValueError(f"graded a correct row as wrong: {proc.stdout.strip()}")
    return "pr1 score grades a row"


def _requirements(info: dict, manifest: dict) -> None:
    """Each kit package's requirements against what is installed (the kit and the machine's own packages),
    leaving out what the kit leaves out on purpose: a missing package or a version outside the range is a
    warning (pip would refuse; the imports and runs tell whether it matters)."""
    try:
        from packaging.requirements import Requirement
    except ImportError:
        info["warnings"].append("packaging is not installed: the kit's requirements were not compared")
        return
    left_out = {name.lower().replace("_", "-") for name in manifest["left_out"]}
    problems = []
    for wheel in manifest["wheels"]:
        try:
            requires = metadata.requires(wheel["name"]) or []
        except metadata.PackageNotFoundError:
            problems.append(f"{wheel['name']} is not installed")
            continue
        for line in requires:
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            key = req.name.lower().replace("_", "-").replace(".", "-")
            if key in left_out:
                continue
            try:
                have = metadata.version(req.name)
            except metadata.PackageNotFoundError:
                problems.append(f"{wheel['name']} needs {req}, which is not installed")
                continue
            if req.specifier and not req.specifier.contains(have, prereleases=True):
                problems.append(f"{wheel['name']} needs {req}; installed: {have}")
    info["requirement_problems"] = problems
    info["warnings"] += problems


def _unsloth(info: dict) -> str | None:
    """Import unsloth in a process of its own, first, as pr1 does; its version, or None (a failure)."""
    code = "import unsloth, unsloth_zoo; print(unsloth.__version__)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        info["failures"].append(f"import unsloth: {tail}")
        return None
    return proc.stdout.strip().splitlines()[-1]


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
