"""Answer extraction and equivalence.

Extraction: from the text outside the paths (main text and summaries, `pr1.format.answer_text`), the last
`Final Answer:` line, else the last `\\boxed{…}`; the source used is reported.
Equivalence: plain numeric comparison first (`"025"` = 25, `27.0` = 27, `"1,080"` = 1080, `$18`, `50%`,
`18 dollars`), then math-verify for everything symbolic. A comparison never takes more than `timeout`
seconds, whatever the input and whichever thread asks: extraction and the numeric path are linear in the
input (a number of more than MAX_DIGITS digits is left to math-verify), and math-verify runs in a helper
process that is killed at the timeout (`pr1.verifier`). A timeout counts as incorrect, with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from pr1 import verifier
from pr1.format import answer_text

FINAL_ANSWER_RE = re.compile(r"final\s+answer\s*[:：]\s*(.*)", re.IGNORECASE)
DEFAULT_TIMEOUT = 5.0
MAX_DIGITS = 4000  # longer numbers are left to math-verify (int() refuses over 4,300 digits)


@dataclass
class Grade:
    correct: bool
    pred: str | None
    answer_source: str | None  # "final_answer", "boxed" or None
    reason: str | None = None  # why it is incorrect, when that is known ("no answer", "timeout", ...)


# -------------------------------------------------------------------------------------------- extraction


_BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
_BRACE_RE = re.compile(r"[{}]")


def last_boxed(text: str) -> str | None:
    """Content of the last closed `\\boxed{…}` (or `\\fbox{…}`), with nested braces handled. One pass over
    the braces, however many boxes the text opens (an unclosed one does not count)."""
    starts = {m.end() for m in _BOX_RE.finditer(text)}
    if not starts:
        return None
    best: tuple[int, int] | None = None  # (start, end) of the closed box that starts last
    stack: list[int] = []  # where the content of each open brace starts
    for m in _BRACE_RE.finditer(text, min(starts) - 1):
        if m.group() == "{":
            stack.append(m.end())
        elif stack:
            start = stack.pop()
            if start in starts and (best is None or start > best[0]):
                best = (start, m.start())
    return None if best is None else text[best[0] : best[1]].strip()


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
    """A plain number, if `s` is one (with `$`, commas, leading zeros, `.0`, a trailing unit or `%`) of at
    most MAX_DIGITS digits."""
    if isinstance(s, bool):
        return None
    if isinstance(s, int):
        return Fraction(s)
    if isinstance(s, float):
        return Fraction(s).limit_denominator(10**9) if s == s and abs(s) != float("inf") else None
    if len(s) > 2 * MAX_DIGITS:  # no plain number of at most MAX_DIGITS digits is this long
        return None
    s = s.strip().replace("\\!", "").replace("{,}", ",").replace("\\,", "")
    if m := _FRACTION_RE.match(s):
        if max(len(m.group(2)), len(m.group(3))) > MAX_DIGITS:
            return None
        num, den = int(m.group(2)), int(m.group(3))
        if den == 0:
            return None
        return Fraction(-num if m.group("sign") else num, den)
    m = _NUMBER_RE.match(s)
    if not m or not _SAFE_TAIL_RE.match(m.group("tail")):
        return None
    number = m.group("num").replace(",", "").replace("−", "-")
    return Fraction(number) if len(number) <= MAX_DIGITS else None


# ----------------------------------------------------------------------------------------- math-verify


def answers_match(
    gold: str | int | float, pred: str, *, timeout: float | None = None
) -> tuple[bool, str | None]:
    """(equal, reason-if-not). Numeric comparison first, then math-verify within `timeout` seconds (default
    DEFAULT_TIMEOUT), in the helper process of `pr1.verifier`, from any thread."""
    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    g_num, p_num = to_number(gold), to_number(pred)
    if g_num is not None and p_num is not None:
        return (True, None) if g_num == p_num else (False, "wrong answer")
    gold_s = _format_gold(gold)
    if _normalise_text(gold_s) == _normalise_text(pred):
        return True, None
    try:
        ok = verifier.verify(gold_s, pred, timeout=timeout)
    except verifier.VerifyTimeout:
        return False, f"timeout: comparison took over {timeout:g}s"
    except verifier.VerifyFailed as e:  # math-verify raises on some malformed LaTeX
        return False, f"unparseable answer ({e.kind})"
    return (True, None) if ok else (False, "wrong answer")


def _format_gold(gold: str | int | float) -> str:
    if isinstance(gold, float) and gold.is_integer():
        return str(int(gold))
    return str(gold)


def _normalise_text(s: str) -> str:
    s = re.sub(r"\\(?:left|right|displaystyle|,|!|;|:)", "", s)
    s = re.sub(r"\\text\{([^{}]*)\}", r"\1", s)
    return re.sub(r"\s+", "", s).replace("dfrac", "frac").replace("tfrac", "frac")


def grade(text: str, gold: str | int | float, *, timeout: float | None = None) -> Grade:
    """Extract the answer from a response and compare it with the gold answer."""
    pred, source = extract_answer(text)
    if pred is None:
        return Grade(False, None, None, "no answer")
    ok, reason = answers_match(gold, pred, timeout=timeout)
    return Grade(ok, pred, source, reason)
