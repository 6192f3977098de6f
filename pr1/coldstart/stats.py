"""`pr1 data stats`: acceptance, rejection reasons and the shape of the kept traces of a generated file."""

from __future__ import annotations

import re
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from pr1.coldstart.generate import rejected_path
from pr1.errors import Pr1Error
from pr1.format import stats
from pr1.jsonl import iter_jsonl

CATEGORIES = {  # reason prefix -> category
    "no answer": "answer",
    "wrong answer": "answer",
    "too long": "length",
    "truncated": "length",
    "teacher error": "teacher",
}


def reason_kind(reason: str) -> str:
    """ "wrong answer: got 17" -> "wrong answer"; a format error with its numbers masked ("block N: ...")."""
    for prefix in CATEGORIES:
        if reason.startswith(prefix):
            return prefix
    return "format: " + re.sub(r"\d+", "N", reason)


def reason_category(reason: str) -> str:
    return CATEGORIES.get(reason_kind(reason), "format")


def describe(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    return {
        "min": ordered[0],
        "median": statistics.median(ordered),
        "mean": round(statistics.fmean(ordered), 1),
        "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
        "max": ordered[-1],
    }


TRACE_KEYS = ("trace", "solution")  # pr1's files, the Parallel-R1 sample


def trace_column(path: str | Path) -> str:
    """The key of the trace text in a file's rows: the first of TRACE_KEYS its first row has (else "trace",
    so that the error names the usual key)."""
    first = next((row for _, row in iter_jsonl(path)), {})
    return next((k for k in TRACE_KEYS if isinstance(first.get(k), str)), TRACE_KEYS[0])


def summarise(path: str | Path, *, trace_key: str | None = None) -> dict[str, Any]:
    """Counts for FILE and its FILE.rejected.jsonl (if any). Trace shapes are computed from the text, so any
    file with a trace column works (`trace_key`; None = `trace_column(path)`)."""
    path = Path(path)
    trace_key = trace_key or trace_column(path)
    blocks: Counter[int] = Counter()
    paths: Counter[int] = Counter()
    teachers: Counter[str] = Counter()
    chars: list[int] = []
    tokens: list[int] = []
    kept = 0
    for lineno, row in iter_jsonl(path):
        trace = row.get(trace_key)
        if not isinstance(trace, str):
            raise Pr1Error(
                f"{path}:{lineno}: no {trace_key!r} text in this row (choose the key with --trace-key)"
            )
        s = stats(trace)
        kept += 1
        blocks[s.n_blocks] += 1
        paths.update(s.paths_per_block)
        chars.append(len(trace))
        if isinstance(row.get("trace_tokens"), int) and not isinstance(row["trace_tokens"], bool):
            tokens.append(row["trace_tokens"])
        teachers[str(row.get("teacher", "?"))] += 1
    kinds: Counter[str] = Counter()
    rows_by: Counter[str] = Counter()
    rejected = 0
    rej = rejected_path(path)
    if rej.exists():
        for lineno, row in iter_jsonl(rej):
            reasons = row.get("reasons")
            if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
                raise Pr1Error(f"{rej}:{lineno}: expected a 'reasons' list of strings")
            rejected += 1
            teachers[str(row.get("teacher", "?"))] += 1
            kinds.update(reason_kind(r) for r in reasons)
            rows_by.update({reason_category(r) for r in reasons})
    attempted = kept + rejected
    return {
        "file": str(path),
        "kept": kept,
        "rejected": rejected,
        "attempted": attempted,
        "acceptance_rate": kept / attempted if attempted else None,
        "rejected_rows_by_category": dict(rows_by.most_common()),
        "reasons": dict(kinds.most_common()),
        "blocks_per_trace": {str(k): blocks[k] for k in sorted(blocks)},
        "paths_per_block": {str(k): paths[k] for k in sorted(paths)},
        "trace_chars": describe(chars),
        "trace_tokens": describe(tokens),
        "teachers": dict(teachers.most_common()),
    }
