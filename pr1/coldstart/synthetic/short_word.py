"""Short word problems, between bare arithmetic and the word problems: one or two sentences, two
operations on small numbers (up to 20 or so), with the same kinds of routes as the word problems."""

from __future__ import annotations

from pr1.coldstart.synthetic.model import Draw, Family, Problem, Route, Stage, distinct
from pr1.coldstart.synthetic.vocabulary import COLLECTIONS, FRIENDS, PACKS, PEOPLE, cap


def gain_and_loss(d: Draw) -> Problem:
    (name, he, _), (other, _, _) = d.rng.sample(PEOPLE, 2)
    things = d.one(COLLECTIONS)
    a, b = d.num(2, 12), d.num(1, 9)
    c = d.num(1, min(9, a + b - 1))
    r = a + b - c
    text = d.one(
        [
            f"{name} has {a} {things}. {cap(he)} finds {b} more and gives {c} to {other}. "
            f"How many {things} does {name} have now?",
            f"{name} has {a} {things}, gets {b} more from {other}, then loses {c}. "
            f"How many {things} does {he} have left?",
        ]
    )
    net = b - c
    routes = [
        Route("one change at a time", [f"{a} + {b} = {a + b}.", f"{a + b} − {c} = {r}."], r),
        Route(
            "the net change first",
            [
                f"{cap(he)} gains {b} and loses {c}: {b} − {c} = {net} more."
                if net >= 0
                else f"{cap(he)} gains {b} and loses {c}: {c} − {b} = {-net} fewer.",
                f"{a} + {net} = {a + net}." if net >= 0 else f"{a} − {-net} = {a + net}.",
            ],
            a + net,
        ),
    ]
    if a >= c:
        routes.append(
            Route("giving away first", [f"{a} − {c} = {a - c}.", f"{a - c} + {b} = {a - c + b}."], a - c + b)
        )
    routes.append(
        Route(
            "working back",
            [f"{r} + {c} = {r + c}, and {r + c} − {b} = {a}, the {things} {name} started with."],
            r,
            check=True,
        )
    )
    opening = [
        f"{name} starts with {a} {things}, gains {b} and loses {c}.",
        f"Follow {name}'s {things}.",
        f"{a} {things}, then {b} more and {c} fewer.",
    ]
    return Problem(
        "",
        text,
        r,
        opening,
        [Stage(f"the number of {things}", r, str(r), distinct(routes))],
        closing=f"{name} has {r} {things}." if r > 1 else f"{name} has one left.",
    )


def groups(d: Draw) -> Problem:
    name, he, _ = d.person()
    cs, cp, item = d.one(PACKS)
    k, n, m = d.num(2, 5), d.num(2, 9), d.num(1, 9)
    r = k * n + m
    extra, more = (
        (f"{m} extra {item}", f"{m} more {item}") if m > 1 else ("one extra", "one more")
    )  # item: plural
    text = d.one(
        [
            f"{name} buys {k} {cp} of {item} with {n} {item} in each {cs}, and {extra}. "
            f"How many {item} does {he} have?",
            f"There are {k} {cp} with {n} {item} in each, and {more} next to them. "
            f"How many {item} are there in all?",
        ]
    )
    others = (k - 1) * n
    rest = f"The other {cs} holds {n}" if k == 2 else f"The other {k - 1} {cp}: {k - 1} × {n} = {others}"
    routes = [
        Route("multiplying, then adding", [f"{k} × {n} = {k * n}.", f"{k * n} + {m} = {r}."], r),
        Route(
            f"adding {cs} by {cs}",
            [f"{' + '.join([str(n)] * k)} = {n * k}.", f"With the {m} extra: {n * k} + {m} = {n * k + m}."],
            n * k + m,
        ),
        Route(
            f"starting from one {cs} and the extras",
            [
                f"One {cs} and the extras: {n} + {m} = {n + m}.",
                f"{rest}, so {n + m} + {others} = {n + m + others}.",
            ],
            n + m + others,
        ),
        Route(
            "taking the extras away and dividing",
            [f"{r} − {m} = {k * n}, and {k * n} ÷ {k} = {n} in each {cs}, as given."],
            r,
            check=True,
        ),
    ]
    opening = [
        f"{k} {cp} of {n} {item}, plus {m}.",
        f"Count the {item} in the {cp} first, then add the extra ones.",
        f"Each {cs} holds {n} {item}.",
    ]
    return Problem(
        "",
        text,
        r,
        opening,
        [Stage(f"the number of {item}", r, str(r), routes)],
        closing=f"There are {r} {item}.",
    )


def fair_shares(d: Draw) -> Problem:
    name, he, _ = d.person()
    things, friends = d.one(COLLECTIONS), d.one(FRIENDS)
    k, i, j = d.num(2, 4), d.num(1, 5), d.num(1, 4)
    a, b, each = k * i, k * j, i + j
    text = d.one(
        [
            f"{name} has {a} {things} and buys {b} more. {cap(he)} shares them all equally among {k} {friends}. "
            f"How many {things} does each get?",
            f"{name} collects {a} {things} on Monday and {b} on Tuesday, then splits them equally between {k} "
            f"{friends}. How many {things} does each of them get?",
        ]
    )
    routes = [
        Route("adding, then dividing", [f"{a} + {b} = {a + b}.", f"{a + b} ÷ {k} = {each}."], (a + b) // k),
        Route(
            "dividing each part",
            [f"{a} ÷ {k} = {i} and {b} ÷ {k} = {j}.", f"{i} + {j} = {i + j}."],
            a // k + b // k,
        ),
        Route(
            "multiplying back",
            [f"{k} × {each} = {k * each}, which is {a} + {b}, all the {things}."],
            each,
            check=True,
        ),
    ]
    opening = [
        f"{name} has {a} + {b} {things} for {k} {friends}.",
        f"Share out all of {name}'s {things}.",
        f"{k} {friends} share {name}'s {things}.",
    ]
    return Problem(
        "",
        text,
        each,
        opening,
        [Stage("each share", each, f"{each} {things}", routes)],
        closing=f"Each of the {k} {friends} gets {each} {things}.",
    )


FAMILIES: list[Family] = [gain_and_loss, groups, fair_shares]
