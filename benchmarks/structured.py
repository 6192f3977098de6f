"""Structured mode: latency of a response with parallel blocks vs the same tokens as one causal stream, and
the RL diagnostic `logprob_gap` (sampling vs structured scoring) for structured and fork sampling.

    OMP_NUM_THREADS=1 python benchmarks/structured.py [--model smollm2-135m] [--blocks 2] [--paths 4]
        [--path-tokens 32] [--gaps]

The measuring code is `pr1.rollout.bench.structured_benchmark` and `logprob_gaps`; figures go to
docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import platform

import torch
import transformers

from pr1.models import EMBEDDED_MODEL, load_model
from pr1.rollout.bench import logprob_gaps, structured_benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=EMBEDDED_MODEL)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--paths", type=int, default=4)
    parser.add_argument("--path-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gaps", action="store_true", help="also measure logprob_gap for structured vs fork")
    parser.add_argument("--no-latency", action="store_true", help="skip the latency benchmark")
    args = parser.parse_args()
    model, tokenizer = load_model(args.model, dtype=args.dtype)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"{platform.processor()} CPU"
    print(
        f"{args.model} on {device}, {torch.get_num_threads()} threads, {next(model.parameters()).dtype}, "
        f"torch {torch.__version__}, transformers {transformers.__version__}"
    )
    if not args.no_latency:
        structured_benchmark(
            model,
            tokenizer,
            blocks=args.blocks,
            paths=args.paths,
            path_tokens=args.path_tokens,
            repeats=args.repeats,
        )
    if args.gaps:
        for mode, (mean, worst) in logprob_gaps(model, tokenizer).items():
            print(f"logprob_gap under structured scoring, {mode} sampling: mean {mean:.2e}, max {worst:.2e}")


if __name__ == "__main__":
    main()
