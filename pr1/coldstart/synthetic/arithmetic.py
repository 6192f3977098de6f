"""Bare arithmetic on single digits, the easiest difficulties: one operation ("What is 3 + 5?") or two
("What is 3 + 5 - 2?"). Each problem has one stage, its answer, with two or more routes that compute it
differently (another order, counting on or back, making ten, splitting a number) and a check by the
inverse operation, so that the trace writer treats it as it treats a word problem."""

from __future__ import annotations

from pr1.coldstart.synthetic.model import Draw, Family, Problem, Route, Stage, distinct

# the problem as it is asked, {e} being e.g. "3 + 5" (the plain question twice as often as the others)
_ASK = ["What is {e}?", "What is {e}?", "Compute {e}.", "Work out {e}.", "Find the value of {e}."]
_COUNT = 5  # counting on or back is a route for this many steps at most (nobody counts on 8)
_SIGN = {"+": "+", "-": "−"}  # as written in the problem / in a trace (which `write_trace` may re-notate)


def _problem(
    d: Draw, expression: str, quantity: str, value: int, routes: list[Route], opening: list[str]
) -> Problem:
    """A one-stage problem asking for `expression` (written with ASCII signs, as a user would type it);
    `quantity` names the value in the summary ("the sum")."""
    return Problem(
        "",
        d.one(_ASK).format(e=expression),
        value,
        opening,
        [Stage(quantity, value, str(value), routes)],
        closing=f"{expression.replace(' - ', ' − ')} = {value}.",
    )


def _counted(start: int, step: int, n: int) -> str:
    return ", ".join(str(start + step * i) for i in range(1, n + 1))


def addition(d: Draw) -> Problem:
    a, b = d.num(1, 9), d.num(1, 9)
    s = a + b
    small, big = sorted((a, b))
    routes = [
        Route(f"adding {b} to {a}", [f"{a} + {b} = {s}."], s),
        Route(f"doubling {a}", [f"Double {a} is {a} + {a} = {s}."], 2 * a)
        if a == b
        else Route("adding in the other order", [f"{b} + {a} = {a + b}."], b + a),
    ]
    if small <= _COUNT:
        routes.append(
            Route(
                f"counting on from {big}",
                [f"Start at {big} and count on {small}: {_counted(big, 1, small)}."],
                big + small,
            )
        )
    if s > 10:
        rest = small - (10 - big)
        routes.append(
            Route(
                "making ten first",
                [f"{big} + {10 - big} = 10, and the {rest} left of the {small} make 10 + {rest} = {s}."],
                10 + rest,
            )
        )
    routes.append(Route("subtracting back", [f"{s} − {b} = {a}, so {a} + {b} = {s}."], s, check=True))
    opening = [f"We need {a} + {b}.", f"Add {a} and {b}.", f"The sum of {a} and {b}."]
    return _problem(d, f"{a} + {b}", "the sum", s, routes, opening)


def subtraction(d: Draw) -> Problem:
    a = d.num(2, 9)
    b = d.num(1, a)
    r = a - b
    routes = [Route(f"subtracting {b} from {a}", [f"{a} − {b} = {r}."], r)]
    if b <= _COUNT:
        routes.append(
            Route(f"counting back {b} from {a}", [f"Count back {b} from {a}: {_counted(a, -1, b)}."], a - b)
        )
    if 1 <= r <= _COUNT:
        routes.append(
            Route(
                f"counting up from {b} to {a}",
                [f"Count up from {b} to {a}: {_counted(b, 1, r)}, that is {r} step{'s' if r > 1 else ''}."],
                r,
            )
        )
    if b >= 2:  # (always so when b is too large to count back)
        b1 = b // 2
        routes.append(
            Route(
                f"taking the {b} away in two parts",
                [f"{a} − {b1} = {a - b1}, then {a - b1} − {b - b1} = {r}."],
                a - b1 - (b - b1),
            )
        )
    routes.append(Route("adding back", [f"{r} + {b} = {a}, so {a} − {b} = {r}."], r, check=True))
    opening = [f"We need {a} − {b}.", f"Take {b} away from {a}.", f"The difference of {a} and {b}."]
    return _problem(d, f"{a} - {b}", "the difference", r, routes, opening)


def _apply(x: int, op: str, y: int) -> int:
    return x + y if op == "+" else x - y


def chain(d: Draw) -> Problem:
    """a ± b ± c, worked left to right; every number on the way is 0 or more."""
    while True:
        a, b, c = d.num(1, 9), d.num(1, 9), d.num(1, 9)
        o1, o2 = d.one("+-"), d.one("+-")
        x = _apply(a, o1, b)
        r = _apply(x, o2, c)
        if x >= 0 and r >= 0:
            break
    s1, s2 = _SIGN[o1], _SIGN[o2]
    expression = f"{a} {o1} {b} {o2} {c}"
    shown = f"{a} {s1} {b} {s2} {c}"
    routes = [Route("working left to right", [f"{a} {s1} {b} = {x}.", f"{x} {s2} {c} = {r}."], r)]
    # b and c first: their net effect on a
    net = (b if o1 == "+" else -b) + (c if o2 == "+" else -c)
    if o1 == o2:
        join = f"{b} + {c} = {b + c}."
    else:
        big, small = (b, c) if b >= c else (c, b)
        join = f"{big} − {small} = {big - small}."
    routes.append(
        Route(
            f"combining {b} and {c} first",
            [join, f"{a} {'+' if net >= 0 else '−'} {abs(net)} = {a + net}."],
            a + net,
        )
    )
    y = _apply(a, o2, c)
    if y >= 0:  # the same two steps in the other order
        routes.append(
            Route(
                f"{'adding' if o2 == '+' else 'subtracting'} {c} first",
                [f"{a} {s2} {c} = {y}.", f"{y} {s1} {b} = {_apply(y, o1, b)}."],
                _apply(y, o1, b),
            )
        )
    back = {"+": "−", "−": "+"}
    routes.append(
        Route(
            "working backwards",
            [f"{r} {back[s2]} {c} = {x}, and {x} {back[s1]} {b} = {a}, the first number."],
            r,
            check=True,
        )
    )
    opening = [
        f"We need {shown}.",
        f"Work out {shown} from left to right.",
        f"Three numbers: {a}, {b} and {c}.",
    ]
    return _problem(d, expression, "the result", r, distinct(routes), opening)


ONE_STEP: list[Family] = [addition, subtraction]
TWO_STEP: list[Family] = [chain]
