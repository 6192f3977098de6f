"""Answer extraction and equivalence.

Extraction: from the text outside the paths (main text and summaries, `pr1.format.answer_text`), the last
`Final Answer:` line, else the last `\\boxed{…}`; the source used is reported.
Equivalence: plain numeric comparison first (`"025"` = 25, `27.0` = 27, `"1,080"` = 1080, `$18`, `50%`,
`18 dollars`), then math-verify for everything symbolic. A comparison never takes more than
`timeout` seconds: a timeout counts as incorrect, with the reason.
"""

from __future__ import annotations

import re
import signal
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from fractions import Fraction

from pr1.format import answer_text

FINAL_ANSWER_RE = re.compile(r"final\s+answer\s*[:：]\s*(.*)", re.IGNORECASE)
DEFAULT_TIMEOUT = 5.0


@dataclass
class Grade:
    correct: bool
    pred: str | None
    answer_source: str | None  # "final_answer", "boxed" or None
    reason: str | None = None  # why it is incorrect, when that is known ("no answer", "timeout", ...)


# -------------------------------------------------------------------------------------------- extraction


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{…}` (or `\\fbox{…}`), with nested braces handled."""
    starts = [m.end() for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text)]
    for start in reversed(starts):
        depth = 1
        for i in range(start, len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    return text[start:i].strip()
    return None


def extract_answer(text: str) -> tuple[str | None, str | None]:
    """(answer, source) from the text outside the paths (`pr1.format.answer_text`: a path is exploration,
    not the answer; tags never reach the answer): the last `Final Answer:` line wins; else the last
    `\\boxed{}`; else (None, None)."""
    text = answer_text(text)
    matches = list(FINAL_ANSWER_RE.finditer(text))
    for m in reversed(matches):
        ans = m.group(1).strip()
        boxed = last_boxed(ans)
        if boxed is not None:
            ans = boxed
        ans = _strip_wrappers(ans)
        if ans:
            return ans, "final_answer"
    boxed = last_boxed(text)
    if boxed:
        return boxed, "boxed"
    return None, None


def _strip_wrappers(ans: str) -> str:
    ans = ans.strip(" \t*").rstrip(".").strip(" \t*")  # markdown bold, a closing full stop
    if len(ans) >= 2 and ans[0] == ans[-1] == "$":
        ans = ans[1:-1].strip()
    for left, right in (("\\(", "\\)"), ("\\[", "\\]")):
        if ans.startswith(left) and ans.endswith(right):
            ans = ans[len(left) : -len(right)].strip()
    return ans


# ------------------------------------------------------------------------------------------ numeric path

_NUMBER_RE = re.compile(
    r"""^\s*
    (?:\\\$|\$|\\text\{\s*\$\s*\})?\s*      # a leading dollar sign
    (?P<num>[-+−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-+−]?\.\d+)
    \s*(?P<tail>.*?)\s*\.?\s*$""",
    re.VERBOSE,
)
_FRACTION_RE = re.compile(r"^\s*(?P<sign>-?)\s*\\d?frac\{\s*(-?\d+)\s*\}\{\s*(-?\d+)\s*\}\s*$")
# what may follow a number without changing its value: percent, degrees, a unit or currency word
_SAFE_TAIL_RE = re.compile(
    r"^(?:\\?%|\\%|percent|\^\\circ|\^\{\\circ\}|°|degrees?|"
    r"\\(?:text|mbox|mathrm)\{\s*[a-zA-Z][a-zA-Z .]*\}|[a-zA-Z]{2,}[a-zA-Z .]*)?$"
)


def to_number(s: str | int | float) -> Fraction | None:
    """A plain number, if `s` is one (with `$`, commas, leading zeros, `.0`, a trailing unit or `%`)."""
    if isinstance(s, bool):
        return None
    if isinstance(s, int):
        return Fraction(s)
    if isinstance(s, float):
        return Fraction(s).limit_denominator(10**9) if s == s and abs(s) != float("inf") else None
    s = s.strip().replace("\\!", "").replace("{,}", ",").replace("\\,", "")
    if m := _FRACTION_RE.match(s):
        num, den = int(m.group(2)), int(m.group(3))
        if den == 0:
            return None
        return Fraction(-num if m.group("sign") else num, den)
    m = _NUMBER_RE.match(s)
    if not m or not _SAFE_TAIL_RE.match(m.group("tail")):
        return None
    return Fraction(m.group("num").replace(",", "").replace("−", "-"))


# ----------------------------------------------------------------------------------------- math-verify


def _math_verify(gold: str, pred: str) -> bool:
    from math_verify import parse, verify

    g = parse(_as_latex(gold), parsing_timeout=None)
    p = parse(_as_latex(pred), parsing_timeout=None)
    return bool(g) and bool(p) and verify(g, p, timeout_seconds=None)


def _as_latex(s: str) -> str:
    return s if "$" in s or "\\boxed" in s else f"${s}$"


class _Timeout(Exception):
    pass


def _raise_timeout(signum: int, frame: object) -> None:
    raise _Timeout


_pool: ProcessPoolExecutor | None = None


def _bounded(fn, *args, timeout: float) -> bool:  # noqa: ANN001
    """Run fn(*args) for at most `timeout` seconds. In the main thread a timer signal interrupts it;
    elsewhere (workers, UI threads) it runs in a helper process that is killed on timeout."""
    global _pool
    if threading.current_thread() is threading.main_thread():
        old = signal.signal(signal.SIGALRM, _raise_timeout)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            return fn(*args)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
    if _pool is None:
        _pool = ProcessPoolExecutor(max_workers=1)
    future = _pool.submit(fn, *args)
    try:
        return future.result(timeout=timeout)
    except FutureTimeout:
        for p in list(getattr(_pool, "_processes", {}).values()):
            p.kill()
        _pool.shutdown(wait=False, cancel_futures=True)
        _pool = None
        raise _Timeout from None


def answers_match(
    gold: str | int | float, pred: str, *, timeout: float = DEFAULT_TIMEOUT
) -> tuple[bool, str | None]:
    """(equal, reason-if-not). Numeric comparison first, then math-verify within `timeout` seconds."""
    g_num, p_num = to_number(gold), to_number(pred)
    if g_num is not None and p_num is not None:
        return (True, None) if g_num == p_num else (False, "wrong answer")
    gold_s = _format_gold(gold)
    if _normalise_text(gold_s) == _normalise_text(pred):
        return True, None
    try:
        ok = _bounded(_math_verify, gold_s, pred, timeout=timeout)
    except _Timeout:
        return False, f"timeout: comparison took over {timeout:g}s"
    except Exception as e:  # math-verify raises on some malformed LaTeX
        return False, f"unparseable answer ({type(e).__name__})"
    return (True, None) if ok else (False, "wrong answer")


def _format_gold(gold: str | int | float) -> str:
    if isinstance(gold, float) and gold.is_integer():
        return str(int(gold))
    return str(gold)


def _normalise_text(s: str) -> str:
    s = re.sub(r"\\(?:left|right|displaystyle|,|!|;|:)", "", s)
    s = re.sub(r"\\text\{([^{}]*)\}", r"\1", s)
    return re.sub(r"\s+", "", s).replace("dfrac", "frac").replace("tfrac", "frac")


def grade(text: str, gold: str | int | float, *, timeout: float = DEFAULT_TIMEOUT) -> Grade:
    """Extract the answer from a response and compare it with the gold answer."""
    pred, source = extract_answer(text)
    if pred is None:
        return Grade(False, None, None, "no answer")
    ok, reason = answers_match(gold, pred, timeout=timeout)
    return Grade(ok, pred, source, reason)
