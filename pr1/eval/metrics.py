"""Evaluation metrics (METHOD.md §8): mean@k, unbiased pass@k, maj@k and the parallel-thinking behaviour
metrics, computed from scored completion rows (the rows `pr1 eval` writes to rollouts.jsonl)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from pr1.grading import answers_match


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct: 1 - C(n-c, k) / C(n, k) (Chen et al., 2021)."""
    if not 0 < k <= n:
        raise ValueError(f"pass@{k} needs 1 <= k <= n={n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def pass_ks(n: int) -> list[int]:
    """The k reported for n samples: 1, the powers of 2 below n, and n."""
    return sorted({*(2**i for i in range(n.bit_length()) if 2**i < n), n})


def majority_correct(preds: Sequence[str | None], correct: Sequence[bool]) -> bool:
    """Whether the most common answer is correct. Answers are grouped by equivalence (`answers_match`); the
    largest group wins, ties go to the group seen first; missing answers never win."""
    groups: list[list[int]] = []  # indices of equivalent answers, in order of first appearance
    for i, pred in enumerate(preds):
        if pred is None:
            continue
        for group in groups:
            rep = preds[group[0]]
            if rep == pred or answers_match(rep, pred)[0]:  # type: ignore[arg-type]
                group.append(i)
                break
        else:
            groups.append([i])
    if not groups:
        return False
    best = max(groups, key=len)  # max keeps the first of equal-length groups
    return bool(correct[best[0]])


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def bench_metrics(rows: Sequence[dict]) -> dict:
    """Metrics of one benchmark's rows (keys of `pr1 score --json` plus `id`, `sample`, `tokens`,
    `critical_path_tokens`, `truncated`, `parallel_positions`). Problems with fewer samples than the most
    sampled one are left out of pass@k beyond their own sample count."""
    by_problem: dict[str, list[dict]] = {}
    for row in rows:
        by_problem.setdefault(str(row["id"]), []).append(row)
    k = max((len(g) for g in by_problem.values()), default=0)
    pass_at = {}
    for kk in pass_ks(k) if k else []:
        scores = [
            pass_at_k(len(g), sum(r["correct"] for r in g), kk) for g in by_problem.values() if len(g) >= kk
        ]
        pass_at[str(kk)] = _mean(scores)
    maj = [majority_correct([r["pred"] for r in g], [r["correct"] for r in g]) for g in by_problem.values()]
    per_problem_acc = [sum(r["correct"] for r in g) / len(g) for g in by_problem.values()]
    blocks = [b for r in rows for b in r["paths_per_block"]]
    positions = [p for r in rows for p in r.get("parallel_positions", [])]
    return {
        "problems": len(by_problem),
        "samples": k,
        "rows": len(rows),
        "mean_at_k": _mean(per_problem_acc),
        "pass_at_k": pass_at,
        "maj_at_k": _mean([float(m) for m in maj]),
        "parallel_ratio": _mean([float(r["parallel"]) for r in rows]),
        "format_valid_rate": _mean([float(r["format_valid"]) for r in rows]),
        "blocks_mean": _mean([r["n_blocks"] for r in rows]),
        "paths_per_block_mean": _mean(blocks),
        "parallel_position_mean": _mean(positions),
        "response_tokens_mean": _mean([r["tokens"] for r in rows if "tokens" in r]),
        "critical_path_tokens_mean": _mean(
            [r["critical_path_tokens"] for r in rows if "critical_path_tokens" in r]
        ),
        "truncation_rate": _mean([float(r["truncated"]) for r in rows if "truncated" in r]),
        "no_answer_rate": _mean([float(r["pred"] is None) for r in rows]),
    }
