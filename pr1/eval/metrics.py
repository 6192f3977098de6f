"""Evaluation metrics (METHOD.md §8): mean@k, unbiased pass@k, maj@k and the parallel-thinking behaviour
metrics, computed from scored completion rows (the rows `pr1 eval` writes to rollouts.jsonl)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from pr1.grading import answers_match
from pr1.score import summarise


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


def bench_metrics(rows: Sequence[dict]) -> dict:
    """Metrics of one benchmark's rows (`pr1 score` records plus `id`, `sample` and the rollout keys): the
    shared figures of `pr1.score.summarise`, and per problem mean@k, unbiased pass@k and maj@k. Problems with
    fewer samples than the most sampled one are left out of pass@k beyond their own sample count."""
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
    return {
        "problems": len(by_problem),
        "samples": k,
        **summarise(rows),
        "mean_at_k": _mean(per_problem_acc),
        "mean_at_k_stderr": _stderr(per_problem_acc),
        "pass_at_k": pass_at,
        "maj_at_k": _mean([float(m) for m in maj]),
    }


def accuracy_difference(before: Sequence[dict], after: Sequence[dict], z: float = 1.96) -> dict:
    """How much mean@k moved from `before` to `after`, two evaluations of the same problems: the mean over
    problems of (after's accuracy on it - before's), and a `z` normal interval from the paired differences'
    standard error (pairing by problem removes the problems' own spread from the noise). Problems missing
    from either side are left out. Keys: difference, low, high, stderr, problems."""

    def per_problem(rows: Sequence[dict]) -> dict[str, float]:
        groups: dict[str, list[bool]] = {}
        for row in rows:
            groups.setdefault(str(row["id"]), []).append(bool(row["correct"]))
        return {i: sum(g) / len(g) for i, g in groups.items()}

    a, b = per_problem(before), per_problem(after)
    diffs = [b[i] - a[i] for i in a if i in b]
    mean, stderr = _mean(diffs), _stderr(diffs)
    half = z * stderr if stderr is not None else None
    return {
        "difference": mean,
        "low": None if half is None or mean is None else mean - half,
        "high": None if half is None or mean is None else mean + half,
        "stderr": stderr,
        "problems": len(diffs),
    }


def flat_metrics(figures: dict) -> dict[str, float]:
    """The numeric figures of a benchmark, pass@k flattened to `pass_at_<k>`: a metrics.jsonl row."""
    out = {k: v for k, v in figures.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    out.update({f"pass_at_{k}": v for k, v in (figures.get("pass_at_k") or {}).items() if v is not None})
    return out


def _stderr(values: Sequence[float]) -> float | None:
    """The standard error of the mean over problems (sample standard deviation / sqrt(n), as
    lm-evaluation-harness reports it); None for fewer than 2 problems."""
    n = len(values)
    if n < 2:
        return None
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None
