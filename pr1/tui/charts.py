"""What the dashboard's charts show, as data: the chart groups, the series each run contributes to a chart
(smoothed, cut to the visible steps), their numbers (last, smoothed, min, max, the value at the cursor)
and the CSV of a chart. No drawing here: `widgets/metric_chart.py` draws these lines, and the export
writes them, so what is exported is what is seen."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from pr1.formatting import is_number
from pr1.formatting import label as metric_label
from pr1.tui.run_state import RunState

# run colours, in the order the runs were given (Okabe–Ito: told apart also by colour-blind readers)
PALETTE = (
    (230, 159, 0),
    (86, 180, 233),
    (0, 158, 115),
    (240, 228, 66),
    (0, 114, 178),
    (213, 94, 0),
    (204, 121, 167),
    (160, 160, 160),
)


def run_colour(index: int) -> str:
    """The colour of the run given `index`-th, as a Textual style ("#e69f00")."""
    return "#{:02x}{:02x}{:02x}".format(*PALETTE[index % len(PALETTE)])


# one marker per line of a chart, so that lines differ without colour; "braille" draws a thin line
MARKERS = ("braille", "•", "×", "+", "▪", "◦", "*", "#")
LEGEND_GLYPH = {"braille": "─"}
SMOOTHING = (0.0, 0.6, 0.8, 0.9, 0.95, 0.99)  # the EMA weights `s` cycles through
DEFAULT_SMOOTHING = 0.6
MIN_SPAN = 4  # the narrowest zoom, in steps
MAX_POINTS = 300  # points drawn per line (bucket means beyond)
PHASE_MARKERS = {"tiered": "◆", "parallel-accuracy": "▲"}


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    series: tuple[tuple[str, str], ...] = ()  # (metrics key, label)
    # (prefix, suffix): also every key prefix<name>suffix, labelled <name> (+ pattern_label)
    pattern: tuple[str, str] | None = None
    pattern_label: str = ""
    spare: bool = False  # shown only beside few other charts (tokens/s is in the header anyway)
    phases: bool = False  # mark the steps of the alternating schedule's other rewards on the first line


CURVES = (
    Chart("reward", "reward (mean)", (("reward_mean", "active"),), ("rewards/", "/mean"), phases=True),
    Chart(
        "rates",
        "accuracy · parallel · format",
        (("accuracy", "accuracy"), ("parallel_ratio", "parallel"), ("format_valid_rate", "format")),
    ),
    Chart(
        "lengths",
        "length (tokens)",
        (("response_tokens_mean", "response"), ("critical_path_tokens_mean", "critical")),
    ),
    Chart("position", "mean relative <Parallel> position", (("parallel_position_mean", "position"),)),
    Chart("loss", "loss", (("loss", "loss"),)),
    Chart("lr", "learning rate", (("lr", "lr"),)),
    Chart("eval", "evaluation accuracy", pattern=("eval/", "/accuracy")),
    Chart("throughput", "tokens / s", (("tokens_per_s", "tok/s"),), spare=True),
)
HEALTH = (
    Chart("zero-std", "groups with equal rewards (no signal)", (("frac_reward_zero_std", "share"),)),
    Chart("reward-std", "reward std", (("reward_std", "std"),)),
    Chart("entropy", "entropy", (("entropy", "entropy"),)),
    Chart("grad-norm", "grad norm", (("grad_norm", "grad norm"),)),
    Chart("clip", "clipped tokens", (("clip_ratio_low", "low"), ("clip_ratio_high", "high"))),
    Chart("truncated", "truncated responses", (("truncated_rate", "truncated"),)),
    Chart(
        "logprob-gap",
        "log-prob gap (sampling − training)",
        (("logprob_gap_mean", "mean"), ("logprob_gap_max", "max")),
    ),
    Chart(
        "time",
        "seconds per step",
        (("time_rollout", "rollout"), ("time_scoring", "scoring"), ("time_update", "update")),
    ),
)


def metric_chart(key: str) -> Chart:
    """A chart of one metric (the "all metrics" view), titled with the key as logged."""
    return Chart("metric", key, ((key, metric_label(key)),))


def series_keys(chart: Chart, keys: Sequence[str]) -> list[tuple[str, str]]:
    """The (key, label) pairs of `chart` among `keys` (the keys a run logs)."""
    present = set(keys)
    out = [(k, lab) for k, lab in chart.series if k in present]
    if chart.pattern:
        prefix, suffix = chart.pattern
        out += [
            (k, k[len(prefix) : len(k) - len(suffix)] + chart.pattern_label)
            for k in keys
            if k.startswith(prefix) and k.endswith(suffix) and len(k) > len(prefix) + len(suffix)
        ]
    return out


def points(metrics: Sequence[dict], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of `key`, skipping rows without a finite number there."""
    xs, ys = [], []
    for row in metrics:
        v = row.get(key)
        if is_number(v):
            xs.append(float(row["step"]))
            ys.append(float(v))
    return xs, ys


def ema(ys: Sequence[float], weight: float) -> list[float]:
    """Exponential moving average with TensorBoard's debiasing (the first points are not pulled to 0)."""
    if weight <= 0:
        return list(ys)
    out, acc = [], 0.0
    for i, y in enumerate(ys, 1):
        acc = weight * acc + (1 - weight) * y
        out.append(acc / (1 - weight**i))
    return out


def thin(
    xs: Sequence[float], ys: Sequence[float], max_points: int = MAX_POINTS
) -> tuple[list[float], list[float]]:
    """Bucket means, so that a long run draws as fast as a short one (a chart is at most a few hundred
    braille dots wide anyway)."""
    if len(xs) <= max_points:
        return list(xs), list(ys)
    k = -(-len(xs) // max_points)
    buckets = range(0, len(xs), k)
    return [sum(xs[i : i + k]) / len(xs[i : i + k]) for i in buckets], [
        sum(ys[i : i + k]) / len(ys[i : i + k]) for i in buckets
    ]


def step_ticks(first: int, last: int, n: int = 5) -> list[int]:
    """About `n` round integer ticks from `first` to `last`."""
    span = max(last - first, 1)
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    unit = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    start = -(-first // unit) * unit
    return list(range(int(start), last + 1, int(unit))) or [first]


def step_range(runs: Sequence[RunState]) -> tuple[int, int]:
    """(first, last) step over the metrics rows of `runs` ((0, 0) without rows)."""
    steps = [row["step"] for run in runs for row in run.metrics[:1] + run.metrics[-1:]]
    return (min(steps), max(steps)) if steps else (0, 0)


@dataclass
class ChartView:
    """How every chart is drawn now: smoothing, the visible steps, log scale, cursor, hidden runs."""

    smoothing: float = DEFAULT_SMOOTHING
    span: int | None = None  # steps shown; None: all
    end: int | None = None  # the last step shown when pinned; None: follow the latest step
    log: bool = False
    cursor: int | None = None  # the step whose values the legends show
    hidden: set[int] = field(default_factory=set)  # indices of hidden runs

    def window(self, first: int, last: int) -> tuple[int, int]:
        hi = last if self.end is None else max(first, min(self.end, last))
        lo = first if self.span is None else max(first, hi - self.span + 1)
        return lo, hi

    def next_smoothing(self) -> None:
        i = min(range(len(SMOOTHING)), key=lambda j: abs(SMOOTHING[j] - self.smoothing))
        self.smoothing = SMOOTHING[(i + 1) % len(SMOOTHING)]

    def zoom(self, factor: float, first: int, last: int) -> None:
        """factor < 1 zooms in (fewer steps), > 1 out; the right edge stays (the latest step when
        following), so zooming in keeps the latest points in view."""
        lo, hi = self.window(first, last)
        span = max(MIN_SPAN, round((hi - lo + 1) * factor))
        self.span = None if span >= last - first + 1 else span

    def toggle_follow(self, first: int, last: int) -> None:
        self.end = self.window(first, last)[1] if self.end is None else None

    def move_cursor(self, delta: int, first: int, last: int) -> None:
        lo, hi = self.window(first, last)
        self.cursor = hi if self.cursor is None else max(lo, min(hi, self.cursor + delta))

    def describe(self, first: int, last: int) -> str:
        lo, hi = self.window(first, last)
        parts = [
            f"smoothing {self.smoothing:g}" if self.smoothing else "smoothing off",
            f"steps {lo}–{hi}" + (" (all)" if (lo, hi) == (first, last) else ""),
            "following latest" if self.end is None else "pinned",
            "log y" if self.log else "linear y",
        ]
        if self.cursor is not None:
            parts.append(f"cursor at step {self.cursor}")
        return " · ".join(parts) + "   (s z x t y , . c e h)"


@dataclass
class Line:
    """One run's series on a chart, cut to the visible steps."""

    run: int
    run_name: str
    key: str
    label: str
    xs: list[float]
    ys: list[float]
    smooth: list[float]
    colour: tuple[int, int, int]
    marker: str

    def at(self, step: float | None) -> tuple[float | None, float | None]:
        """(value, smoothed value) at `step` (the last point at or before it), or at the last point."""
        if not self.xs:
            return None, None
        if step is None:
            return self.ys[-1], self.smooth[-1]
        i = next((j for j in range(len(self.xs) - 1, -1, -1) if self.xs[j] <= step), None)
        return (None, None) if i is None else (self.ys[i], self.smooth[i])

    def numbers(self, cursor: int | None) -> tuple[float | None, float | None, float | None, float | None]:
        """(value, smoothed, min, max): the value at the cursor (or the last), over the visible steps."""
        value, smoothed = self.at(cursor)
        return value, smoothed, min(self.ys, default=None), max(self.ys, default=None)


def chart_lines(chart: Chart, runs: Sequence[RunState], view: ChartView, first: int, last: int) -> list[Line]:
    """The lines of `chart` for each visible run of `runs` (in the order given): colour by run when there
    are several runs (else by series), a marker per line."""
    lo, hi = view.window(first, last)
    lines: list[Line] = []
    for r, run in enumerate(runs):
        if r in view.hidden:
            continue
        for key, lab in series_keys(chart, run.numeric_keys):
            xs, ys = points(run.metrics, key)
            smooth = ema(ys, view.smoothing)
            keep = [i for i, x in enumerate(xs) if lo <= x <= hi]
            if not keep:
                continue
            n = len(lines)
            lines.append(
                Line(
                    r,
                    run.name,
                    key,
                    lab,
                    [xs[i] for i in keep],
                    [ys[i] for i in keep],
                    [smooth[i] for i in keep],
                    PALETTE[(r if len(runs) > 1 else n) % len(PALETTE)],
                    MARKERS[n % len(MARKERS)],
                )
            )
    return lines


def phase_points(metrics: Sequence[dict], key: str, lo: float, hi: float) -> dict[str, tuple[list, list]]:
    """phase -> (steps, values of `key`) of the visible steps whose active reward was not accuracy."""
    out: dict[str, tuple[list, list]] = {}
    for phase in PHASE_MARKERS:
        rows = [
            r for r in metrics if r.get("phase") == phase and is_number(r.get(key)) and lo <= r["step"] <= hi
        ]
        rows = rows[:: -(-len(rows) // MAX_POINTS)] if rows else rows
        if rows:
            out[phase] = ([r["step"] for r in rows], [float(r[key]) for r in rows])
    return out


def uses_log(lines: Sequence[Line], view: ChartView) -> bool:
    """Log scale when asked for and every drawn value is positive (a log axis cannot show the rest)."""
    return view.log and bool(lines) and all(y > 0 for ln in lines for y in ln.ys + ln.smooth)


CSV_HEADER = ("run", "key", "label", "step", "value", "smoothed")


def lines_csv(lines: Sequence[Line]) -> str:
    """The lines as CSV (one row per point: run, key, label, step, value, smoothed value)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_HEADER)
    for ln in lines:
        for x, y, s in zip(ln.xs, ln.ys, ln.smooth, strict=True):
            w.writerow((ln.run_name, ln.key, ln.label, int(x), repr(y), repr(s)))
    return out.getvalue()
