"""The trace writer: the part of the synthetic teacher that writes the format (METHOD.md §1).

A trace restates the problem, explores 2–3 routes in a `<Parallel>` block (sometimes a second block, or
computes first and then verifies in parallel), compares them in the `<Summary>`, and ends with
`Final Answer: N`. Tags come from `pr1.format`'s nodes, so the format is defined there only.
"""

from __future__ import annotations

import random
import re

from pr1.coldstart.synthetic.model import Draw, Problem, Route, Stage
from pr1.coldstart.synthetic.vocabulary import cap
from pr1.format import Block, PathNode, SummaryNode, Trace

_SUMMARY_TWO = [
    "Both paths give {v}: {l0} and {l1} agree.",
    "{L0} and {l1} lead to the same result: {q} is {v}.",
    "Whether by {l0} or by {l1}, {q} comes out as {v}.",
    "The two routes match: {q} is {v}. {L0} is the most direct, and {l1} confirms it.",
    "{L1} gives {v}, and so does {l0}, so {q} is {v}.",
    "Both paths give {v}, so {q} is {v}.",
    "The paths agree: {q} is {v}.",
]
_SUMMARY_THREE = [
    "All three routes ({l0}, {l1} and {l2}) give {v}.",
    "{L0}, {l1} and {l2} all reach {v}, so {q} is {v}.",
    "Three independent ways, one answer: {q} is {v}.",
    "All three paths agree on {v}.",
]
_SUMMARY_CHECK = [
    "{L0} gives {v} again, and the check by {c} holds, so {q} is {v}.",
    "The recomputation by {l0} agrees, and {c} confirms it: {q} is {v}.",
    "Both confirm {v}: {l0} reproduces it and {c} works out exactly.",
    "Both checks pass, so {q} is {v}.",
]
_THEN = ["So {q} is {v}.", "That makes {q} {v}.", "{Q} is {v}."]
_VERIFY_INTRO = [
    "Let me verify this.",
    "Check it two ways.",
    "To be sure, verify {v}.",
    "Now double-check {v}.",
]


def _fill(template: str, **kw: str) -> str:
    caps = {k.upper() if len(k) == 1 else k[0].upper() + k[1:]: cap(v) for k, v in kw.items()}
    return template.format(**kw, **caps)


def _block(routes: list[Route], summary: str) -> Block:
    """One path per route, nothing between the paths, the summary on the line after `</Parallel>`; the text
    of each path and of the summary on lines of its own."""
    return Block(
        inner=[PathNode(f"\n{' '.join(r.steps)}\n", closed=True) for r in routes],
        closed=True,
        gap="\n",
        summary=SummaryNode(f"\n{summary}\n", closed=True),
    )


def _explore(d: Draw, stage: Stage, max_paths: int) -> Block:
    """A block of 2 (sometimes 3) different computing routes to the stage's value."""
    routes = [r for r in stage.routes if not r.check]
    k = 3 if min(len(routes), max_paths) >= 3 and d.chance(0.3) else 2
    chosen = d.rng.sample(routes, k)
    labels = {f"l{i}": r.label for i, r in enumerate(chosen)}
    summary = _fill(
        d.one(_SUMMARY_THREE if k == 3 else _SUMMARY_TWO), v=stage.shown, q=stage.quantity, **labels
    )
    return _block(chosen, summary)


def _verify(d: Draw, stage: Stage) -> list[str | Block]:
    """Compute the value in the main text, then check it in parallel: another route and the inverse
    operation, or two other routes (only called for stages where `_can_verify` holds)."""
    computing = [r for r in stage.routes if not r.check]
    checks = [r for r in stage.routes if r.check]
    first = d.one(computing)
    others = [r for r in computing if r is not first]
    main = " ".join(first.steps) + " " + _fill(d.one(_THEN), q=stage.quantity, v=stage.shown)
    intro = [_fill(d.one(_VERIFY_INTRO), v=stage.shown)] if d.chance(0.6) else []
    if checks:
        pair = [d.one(others), d.one(checks)]
        d.rng.shuffle(pair)
        again, check = sorted(pair, key=lambda r: r.check)
        summary = _fill(d.one(_SUMMARY_CHECK), l0=again.label, c=check.label, q=stage.quantity, v=stage.shown)
    else:
        pair = d.rng.sample(others, 2)
        summary = _fill(
            d.one(_SUMMARY_TWO), l0=pair[0].label, l1=pair[1].label, q=stage.quantity, v=stage.shown
        )
    return [main, *intro, _block(pair, summary)]


def _plain(d: Draw, stage: Stage) -> str:
    route = d.one([r for r in stage.routes if not r.check])
    return " ".join(route.steps) + " " + _fill(d.one(_THEN), q=stage.quantity, v=stage.shown)


def _computing(stage: Stage) -> int:
    return sum(not r.check for r in stage.routes)


def _can_verify(stage: Stage) -> bool:
    has_check = any(r.check for r in stage.routes)
    return _computing(stage) >= 3 or (_computing(stage) >= 2 and has_check)


def write_trace(problem: Problem, sample: int = 0) -> str:
    """A parallel-thinking trace for `problem`; each `sample` number gives another (deterministic) variant."""
    d = Draw(random.Random(f"pr1-trace:{problem.id}:{sample}"))
    # one block in most traces, a second one in 60% of those with two stages that allow one;
    # a block explores 2-3 routes, or (less often) verifies a value computed just before it
    candidates = [s for s in problem.stages if _computing(s) >= 2]
    blocks = d.rng.sample(candidates, 2 if len(candidates) == 2 and d.chance(0.6) else 1)
    verify = blocks[0] if len(blocks) == 1 and _can_verify(blocks[0]) and d.chance(0.35) else None
    parts: list[str | Block] = [d.one(problem.opening)]
    for stage in problem.stages:
        if stage is verify:
            parts.extend(_verify(d, stage))
        elif any(stage is b for b in blocks):
            parts.append(_explore(d, stage, max_paths=3 if len(blocks) == 1 else 2))
        else:
            parts.append(_plain(d, stage))
    if d.chance(0.5):
        parts.append(problem.closing)
    parts.append(f"Final Answer: {problem.answer}")
    text = _lines(parts).render()
    return _notation(d, _ALTERNATIVE.sub(lambda m: d.one(m.group(1).split("|")), text))


def _lines(parts: list[str | Block]) -> Trace:
    """`parts` one per line, as the Trace that `pr1.format.parse` reads from the result (runs of main text
    merged into one part)."""
    trace = Trace()
    for i, part in enumerate(parts):
        for piece in (part,) if i == 0 else ("\n", part):
            if isinstance(piece, str) and trace.parts and isinstance(trace.parts[-1], str):
                trace.parts[-1] += piece
            else:
                trace.parts.append(piece)
    return trace


_ALTERNATIVE = re.compile(r"\[\[(.*?)\]\]")  # "[[a|b]]" in a step: one of the phrasings, per trace


def _notation(d: Draw, text: str) -> str:
    """Write ×, ÷ and − the way this trace prefers (teachers differ)."""
    for sign, options in (("×", ["×", "*"]), ("÷", ["÷", "/"]), ("−", ["−", "-"])):
        text = text.replace(f" {sign} ", f" {d.one(options)} ")
    return text
