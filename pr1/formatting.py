"""How pr1 writes its figures for people: one formatter for the console tables and the dashboard.

Light on purpose (no torch, no rich, no textual), so that every command can use it. Rates (fractions in
0–1: accuracy, parallel ratio, pass@k …) read as percentages, other figures as plain numbers, and metric
keys (`parallel_ratio`, `pass_at_k`) as the labels the tables show ("parallel ratio", "pass@4")."""

from __future__ import annotations

import math
from collections.abc import Mapping

# old spelling -> the one vocabulary of docs/RUN_FOLDER.md (eval summaries written before the rename)
ALIASES = {"truncation_rate": "truncated_rate", "mean_blocks": "blocks_mean"}

# keys whose value is a fraction in 0–1 that reads best as a percentage
RATE_KEYS = {"accuracy", "mean_at_k", "maj_at_k", "frac_reward_zero_std", "clip_ratio_low", "clip_ratio_high"}
RATE_SUFFIXES = ("_rate", "_ratio", "_at_k")

LABELS = {
    "accuracy": "accuracy",
    "mean_at_k": "mean@k",
    "maj_at_k": "maj@k",
    "parallel_ratio": "parallel ratio",
    "format_valid_rate": "format valid",
    "blocks_mean": "blocks / response",
    "paths_per_block_mean": "paths / block",
    "parallel_position_mean": "<Parallel> position",
    "response_tokens_mean": "tokens / response",
    "critical_path_tokens_mean": "tokens (critical path)",
    "truncated_rate": "truncated",
    "no_answer_rate": "no answer",
    "wall_time_s": "wall time (s)",
    "tokens_per_s": "tokens / s",
    "frac_reward_zero_std": "groups with equal rewards",
    "reward_mean": "reward",
    "reward_std": "reward std",
    "grad_norm": "grad norm",
    "lr": "learning rate",
    "memory_gb": "peak memory (GB)",
}


def canonical(key: str) -> str:
    """A metric key in today's vocabulary (`truncation_rate` -> `truncated_rate`)."""
    return ALIASES.get(key, key)


def canonical_figures(figures: Mapping[str, object]) -> dict[str, object]:
    """`figures` with old key spellings renamed (a key given in both spellings keeps the new one)."""
    out: dict[str, object] = {}
    for k, v in figures.items():
        new = canonical(k)
        if new not in out or new == k:
            out[new] = v
    return out


def at_k(name: str, k: object | None = None) -> str:
    """`pass_at_k`, 4 -> "pass@4"; `mean_at_k` -> "mean@k"."""
    return f"{name.removesuffix('_at_k')}@{'k' if k is None else k}"


def is_rate(key: str) -> bool:
    base = canonical(key.replace(".", "/").rsplit("/", 1)[-1])  # eval/gsm8k/accuracy, base.accuracy
    return base in RATE_KEYS or base.endswith(RATE_SUFFIXES) or "@" in base


def label(key: str) -> str:
    """The label a table shows for a metric key (unknown keys: underscores become spaces)."""
    key = canonical(key)
    if key in LABELS:
        return LABELS[key]
    if key.endswith("_at_k"):
        return at_k(key)
    return key.replace("_", " ")


def is_number(x: object) -> bool:
    """A finite int or float, not a bool: a value that can be plotted or averaged."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def percent(x: object, digits: int = 1) -> str:
    """0.9375 -> "93.8%"; None -> "-"."""
    if x is None:
        return "-"
    if not is_number(x):
        return str(x)
    return f"{100 * float(x):.{digits}f}%"


def number(x: object, digits: int | None = None, significant: int = 4) -> str:
    """A figure as a person reads it: integers with thousands separators, floats with `digits` decimals, or
    (digits None) `significant` digits without exponent between 1e-3 and 1e6; None -> "-"."""
    if x is None:
        return "-"
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    if not math.isfinite(x):
        return "nan" if x != x else ("inf" if x > 0 else "-inf")
    if digits is not None:
        return f"{x:,.{digits}f}"
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e6:
        if abs(x) >= 10 ** (significant - 1):
            return f"{x:,.0f}"
        decimals = max(0, significant - 1 - math.floor(math.log10(abs(x))))
        return f"{x:.{decimals}f}".rstrip("0").rstrip(".")
    return f"{x:.{significant - 1}g}"


def figure(key: str, value: object, *, short: bool = False) -> str:
    """A metric value under its key's convention: rates as percentages, the rest as numbers; `short`:
    three significant digits (a chart's legend)."""
    if is_number(value) and is_rate(key):
        return percent(value, 0 if short and abs(float(value)) >= 0.995 else 1)  # type: ignore[arg-type]
    return number(value, significant=3 if short else 4)


def flatten(figures: Mapping[str, object]) -> dict[str, object]:
    """{"pass_at_k": {"1": .5, "4": .7}, "mean_at_k": .4} -> {"pass@1": .5, "pass@4": .7, "mean@k": .4};
    other nested dicts -> "a.b"; old key spellings renamed."""
    out: dict[str, object] = {}
    for k, v in canonical_figures(figures).items():
        if isinstance(v, Mapping):
            for kk, vv in v.items():
                out[at_k(k, kk) if k.endswith("_at_k") else f"{k}.{kk}"] = vv
        else:
            out[at_k(k) if k.endswith("_at_k") else k] = v
    return out


def pairs(figures: Mapping[str, object], sep: str = " · ") -> str:
    """Figures as one line of "label value" pairs (nested dicts flattened), as an event or a notice shows
    them: {"accuracy": .512, "pass_at_k": {"4": .7}} -> "accuracy 51.2% · pass@4 70.0%"."""
    parts = []
    for k, v in flatten(figures).items():
        if isinstance(v, (list, tuple)):
            v = ", ".join(map(str, v))
        parts.append(f"{label(k) if '.' not in k else k} {figure(k, v)}")
    return sep.join(parts)
