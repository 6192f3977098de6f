"""The `gpu-kit` command line: `build` and `check`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gpukit import KitError
from gpukit.build import LIMIT_MIB, REPO, BuildOptions, build
from gpukit.check import DEFAULT_MINUTES, STEPS, CheckOptions, check


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gpu-kit", description="An offline install-and-validate kit for pr1 on a CUDA machine."
    )
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser(
        "build", help="download and repack the wheels the target lacks (needs the package index)"
    )
    b.add_argument("--python", default="3.12", help="the target's Python version (default 3.12)")
    b.add_argument(
        "--cuda", default="130", help="the target torch's CUDA version, three digits (default 130 = 13.0)"
    )
    b.add_argument(
        "--out", type=Path, default=REPO / ".whl", help="kit folder to write (default .whl in the repo)"
    )
    b.add_argument(
        "--target",
        type=Path,
        default=None,
        help="the target's package list (default scripts/gpu-kit-target.txt)",
    )
    b.add_argument(
        "--limit-mib",
        type=float,
        default=LIMIT_MIB,
        help=f"fail when the kit is larger (default {LIMIT_MIB})",
    )
    c = sub.add_parser("check", help="install the kit here and run the GPU checks and benchmarks (offline)")
    c.add_argument(
        "--out",
        type=Path,
        default=REPO / "runs" / "gpu-check",
        help="results folder (default runs/gpu-check)",
    )
    c.add_argument(
        "--minutes",
        type=float,
        default=DEFAULT_MINUTES,
        help=f"time for everything (default {DEFAULT_MINUTES:g})",
    )
    c.add_argument(
        "--kit", type=Path, default=REPO / ".whl", help="the kit folder (default .whl in the repo)"
    )
    c.add_argument(
        "--steps",
        default=",".join(STEPS),
        help=f"comma-separated steps to run after the install (default all: {','.join(STEPS)})",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "build":
            build(BuildOptions(args.python, args.cuda, args.out, args.target, args.limit_mib))
            return 0
        steps = tuple(s.strip() for s in args.steps.split(",") if s.strip())
        return check(CheckOptions(out=args.out, minutes=args.minutes, kit=args.kit, steps=steps))
    except KitError as err:
        print(f"gpu-kit {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gpu-kit {args.command}: interrupted", file=sys.stderr)
        return 130
