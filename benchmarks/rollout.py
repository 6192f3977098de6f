"""Rollout engine throughput: fork/join vs plain `model.generate`, batched vs one at a time.

    PR1_DATA_DIR=../shared/data python benchmarks/rollout.py [--model smollm2-135m] [--tokens 256]

The measuring code is `pr1.rollout.bench.rollout_benchmark`; figures go to docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import platform

import torch
import transformers

from pr1.models import EMBEDDED_MODEL, load_model
from pr1.rollout.bench import rollout_benchmark, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=EMBEDDED_MODEL)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--trajectories", type=int, default=16)
    parser.add_argument("--sequential", type=int, default=4, help="trajectories run one at a time")
    parser.add_argument("--tokens", type=int, default=256, help="tokens per trajectory")
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    model, tokenizer = load_model(args.model, dtype=args.dtype)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"{platform.processor()} CPU"
    print(
        f"{args.model} on {device}, {torch.get_num_threads()} threads, {next(model.parameters()).dtype}, "
        f"torch {torch.__version__}, transformers {transformers.__version__}"
    )
    results = rollout_benchmark(
        model,
        tokenizer,
        trajectories=args.trajectories,
        sequential=args.sequential,
        max_tokens=args.tokens,
        compile=args.compile,
    )
    print(json.dumps({k: round(v, 3) for k, v in summary(results).items()}))


if __name__ == "__main__":
    main()
