"""`pr1 eval`: benchmarks sampled with the rollout engine, scored, and summarised (METHOD.md §8).

`pr1.eval.run` is the job (settings, the resumable run folder, progress); `pr1.eval.metrics` computes the
figures from scored rows.
"""

from pr1.eval.run import EvalConfig, run_eval

__all__ = ["EvalConfig", "run_eval"]
