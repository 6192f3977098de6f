"""The word problems (the top difficulty, and the default): each family is a function of a draw that
builds a scenario (people, objects, units, 2–4 operations) with several genuinely different routes to each
quantity it asks for: another order of operations, another decomposition, a unit rate instead of a total,
or a check by the inverse operation."""

from __future__ import annotations

from pr1.coldstart.synthetic.model import Draw, Family, Problem, Route, Stage
from pr1.coldstart.synthetic.vocabulary import (
    COLLECTIONS,
    CROPS,
    FRIENDS,
    GOODS,
    HABITS,
    JOBS,
    PACKS,
    PEOPLE,
    RECIPES,
    SHOPS,
    SPENDS,
    SURNAMES,
    TOWNS,
    VEHICLES,
    VENUES,
    WANTS,
    cap,
    money,
)


def _difference(
    quantity: str, left: int, shown: str, subtraction: tuple[str, str], check: tuple[str, str], *others: Route
) -> Stage:
    """The stage of what is left after a subtraction: the subtraction and `others` compute it, `check` adds it
    back. `subtraction` and `check` are (label, the one step)."""
    return Stage(
        quantity,
        left,
        shown,
        [
            Route(subtraction[0], [subtraction[1]], left),
            *others,
            Route(check[0], [check[1]], left, check=True),
        ],
    )


def shopping(d: Draw) -> Problem:
    name, he, his = d.person()
    (s1, p1, (lo1, hi1)), (s2, p2, (lo2, hi2)) = d.rng.sample(GOODS, 2)
    a, b = d.num(2, 7), d.num(2, 7)
    if d.chance(0.3):
        b = a
    p, q = d.num(lo1, hi1), d.num(lo2, hi2)
    while q == p:
        q = d.num(max(1, lo2 - 1), hi2 + 1)
    ap, bq = a * p, b * q
    total = ap + bq
    change = d.chance(0.7)
    bill = next(x for x in (20, 50, 100, 200, 500) if x > total) if change else 0
    shop = d.one(SHOPS)
    if d.chance(0.5):
        text = f"{name} buys {a} {p1} for {money(p)} each and {b} {p2} for {money(q)} each."
    else:
        text = f"At the {shop}, {p1} cost {money(p)} each and {p2} cost {money(q)} each. {name} picks up {a} {p1} and {b} {p2}."
    text += (
        f" {cap(he)} pays with a {money(bill)} bill. How much change does {he} get back?"
        if change
        else f" How much does {he} spend in all?"
    )

    cost_routes = [
        Route(
            "adding the two subtotals",
            [
                f"{cap(p1)}: {a} × {money(p)} = {money(ap)}.",
                f"{cap(p2)}: {b} × {money(q)} = {money(bq)}.",
                f"[[Together|In total|Altogether]]: {money(ap)} + {money(bq)} = {money(total)}.",
            ],
            total,
        )
    ]
    (n_hi, hi, pl_hi), (_, lo, _) = sorted([(a, p, p1), (b, q, p2)], key=lambda t: -t[1])
    base, extra = (a + b) * lo, n_hi * (hi - lo)
    cost_routes.append(
        Route(
            f"pricing every item at {money(lo)} and adding the extra for the {pl_hi}",
            [
                f"If all {a + b} items cost {money(lo)}, that would be {a + b} × {money(lo)} = {money(base)}.",
                f"The {pl_hi} cost {money(hi - lo)} more each: {n_hi} × {money(hi - lo)} = {money(extra)}.",
                f"[[So the total is|That makes|Total:]] {money(base)} + {money(extra)} = {money(total)}.",
            ],
            base + extra,
        )
    )
    m = min(a, b)
    pair = p + q
    if a == b:
        steps = [
            f"One {s1} and one {s2} together cost {money(p)} + {money(q)} = {money(pair)}.",
            f"There are {a} such pairs: {a} × {money(pair)} = {money(a * pair)}.",
        ]
        cost_routes.append(Route("pricing them in pairs", steps, a * pair))
    else:
        k = abs(a - b)
        ks, kp = (p1 if k > 1 else s1, p) if a > b else (p2 if k > 1 else s2, q)
        steps = [
            f"Make {m} pairs of one {s1} and one {s2}: {m} × {money(pair)} = {money(m * pair)}.",
            f"The {k} extra {ks} add {k} × {money(kp)} = {money(k * kp)}.",
            f"Total: {money(m * pair)} + {money(k * kp)} = {money(m * pair + k * kp)}.",
        ]
        cost_routes.append(Route("grouping the items into pairs plus extras", steps, m * pair + k * kp))
    stages = [Stage("the total cost", total, money(total), cost_routes)]
    opening = [
        f"{name} buys {a} {p1} at {money(p)} and {b} {p2} at {money(q)}.",
        f"First find what {name}'s {a} {p1} and {b} {p2} cost.",
        f"The {p1} and the {p2} have different prices, so price them separately.",
    ]
    if change:
        ch = bill - total
        r1 = bill - ap
        stages.append(
            _difference(
                "the change",
                ch,
                money(ch),
                ("subtracting the total from the bill", f"{money(bill)} − {money(total)} = {money(ch)}."),
                (
                    "adding the change back to the cost",
                    f"{money(ch)} + {money(total)} = {money(bill)}, exactly the bill, so the change is right.",
                ),
                Route(
                    f"taking each purchase out of the {money(bill)} in turn",
                    [
                        f"After the {p1}: {money(bill)} − {a} × {money(p)} = {money(bill)} − {money(ap)} = {money(r1)}.",
                        f"After the {p2}: {money(r1)} − {b} × {money(q)} = {money(r1)} − {money(bq)} = {money(r1 - bq)}.",
                    ],
                    r1 - bq,
                ),
            )
        )
        opening.append(
            f"{name} pays {money(bill)}, so the change is the bill minus the cost of the {p1} and {p2}."
        )
        return Problem(
            "", text, ch, opening, stages, closing=f"{name} gets {money(ch)} back from the {money(bill)}."
        )
    return Problem(
        "", text, total, opening, stages, closing=f"{name} spends {money(total)} on the {p1} and {p2}."
    )


def wages(d: Draw) -> Problem:
    name, he, his = d.person()
    h, days, r = d.num(3, 8), d.num(2, 6), d.num(11, 24)
    hours, week = h * days, h * days * r
    job = d.one(JOBS)
    text = d.one(
        [
            f"{name} works {job} {h} hours a day, {days} days a week, and earns {money(r)} an hour.",
            f"{name} has a job {job} paying {money(r)} an hour. {cap(he)} works {days} days a week, {h} hours each day.",
        ]
    )
    tens, rest = 10, r - 10
    pay_routes = [
        Route(
            "finding the daily pay first",
            [
                f"[[One day pays|A day brings in|Each day earns]] {h} × {money(r)} = {money(h * r)}.",
                f"A week pays {days} × {money(h * r)} = {money(week)}.",
            ],
            days * h * r,
        ),
        Route(
            "counting the hours first",
            [
                f"{cap(he)} works {h} × {days} = {hours} hours [[a week|each week|per week]].",
                f"At {money(r)} an hour: {hours} × {money(r)} = {money(week)}.",
            ],
            hours * r,
        ),
        Route(
            f"splitting the rate into {money(tens)} + {money(rest)}",
            [
                f"In {hours} hours ({h} × {days}), {money(tens)} an hour gives {money(hours * tens)} and {money(rest)} an hour gives {money(hours * rest)}.",
                f"Together {money(hours * tens)} + {money(hours * rest)} = {money(week)}.",
            ],
            hours * tens + hours * rest,
        ),
    ]
    stages = [Stage("the weekly pay", week, money(week), pay_routes)]
    opening = [
        f"{name} earns {money(r)} an hour for {h} hours on each of {days} days.",
        f"Start with {name}'s weekly pay {job}.",
        f"{name} works {h}-hour days, {days} days a week.",
    ]
    if d.chance(0.5):
        spend = d.num(1, week // 10) * 5 if week > 20 else 5
        spend = min(spend, week - 5)
        keep = week - spend
        thing = d.one(SPENDS)
        text += f" Each week {he} spends {money(spend)} on {thing}. How much of {his} weekly pay is left?"
        stages.append(
            _difference(
                "the amount left",
                keep,
                money(keep),
                ("subtracting the spending", f"{money(week)} − {money(spend)} = {money(keep)}."),
                (
                    "adding the spending back",
                    f"{money(keep)} + {money(spend)} = {money(week)}, the full weekly pay.",
                ),
            )
        )
        return Problem(
            "", text, keep, opening, stages, closing=f"{name} keeps {money(keep)} of the week's pay."
        )
    n = d.num(2, 6)
    goal = n * week
    text += f" How many weeks must {he} work to earn {money(goal)}?"
    routes = [
        Route(
            "dividing the goal by the weekly pay",
            [f"{money(goal)} ÷ {money(week)} = {n} weeks."],
            goal // week,
        ),
        Route(
            "multiplying back",
            [f"{n} weeks × {money(week)} = {money(goal)}, which is the goal exactly."],
            n,
            check=True,
        ),
    ]
    if n <= 4:
        running = ", ".join(money(week * i) for i in range(1, n + 1))
        routes.append(
            Route(
                "adding week by week", [f"Week by week the total grows: {running}.", f"That is {n} weeks."], n
            )
        )
    stages.append(Stage("the number of weeks", n, str(n), routes))
    return Problem(
        "", text, n, opening, stages, closing=f"{name} needs {n} weeks {job} to earn {money(goal)}."
    )


def travel(d: Draw) -> Problem:
    vehicle, u = d.one(VEHICLES)
    slow = vehicle == "cyclist"
    v1, v2 = (d.num(10, 25), d.num(10, 25)) if slow else (d.num(4, 14) * 5, d.num(4, 14) * 5)
    while v2 == v1:
        v2 += 5
    t1 = d.num(2, 5)
    t2 = t1 if d.chance(0.4) else d.num(1, 5)
    dist = v1 * t1 + v2 * t2
    start, end = d.rng.sample(TOWNS, 2)
    hours2 = f"{t2} hour{'s' if t2 > 1 else ''}"
    text = d.one(
        [
            f"A {vehicle} sets off from {start} towards {end}. It travels at {v1} {u} per hour for {t1} hours, "
            f"then at {v2} {u} per hour for {hours2}.",
            f"On the way from {start} to {end}, a {vehicle} keeps a speed of {v1} {u} per hour for {t1} hours "
            f"and then {v2} {u} per hour for {hours2}.",
        ]
    )
    (v_hi, t_hi), (v_lo, _) = sorted([(v1, t1), (v2, t2)], reverse=True)
    base, extra = v_lo * (t1 + t2), (v_hi - v_lo) * t_hi
    routes = [
        Route(
            "adding the two legs",
            [
                f"[[First leg|Leg one|The first part]]: {v1} × {t1} = {v1 * t1} {u}.",
                f"[[Second leg|Leg two|The second part]]: {v2} × {t2} = {v2 * t2} {u}.",
                f"[[Total|Together|Whole distance]]: {v1 * t1} + {v2 * t2} = {dist} {u}.",
            ],
            dist,
        ),
        Route(
            f"using {v_lo} {u} per hour throughout plus the faster leg's extra",
            [
                f"At {v_lo} {u} per hour for all {t1 + t2} hours: {v_lo} × {t1 + t2} = {base} {u}.",
                f"The faster leg [[adds|contributes an extra]] {v_hi - v_lo} {u} per hour for {t_hi} hours: {extra} {u}.",
                f"So {base} + {extra} = {base + extra} {u}.",
            ],
            base + extra,
        ),
    ]
    if t1 == t2 and (v1 + v2) % 2 == 0:
        avg = (v1 + v2) // 2
        routes.append(
            Route(
                "the average speed over equal times",
                [
                    f"Both legs last {t1} hours, so the average speed is ({v1} + {v2}) ÷ 2 = {avg} {u} per hour.",
                    f"Over {2 * t1} hours: {avg} × {2 * t1} = {avg * 2 * t1} {u}.",
                ],
                avg * 2 * t1,
            )
        )
    stages = [Stage("the distance covered", dist, f"{dist} {u}", routes)]
    opening = [
        f"The {vehicle} has two legs: {v1} {u}/h for {t1} h and {v2} {u}/h for {t2} h.",
        f"For each leg of the {vehicle}'s trip from {start}, distance is speed times time.",
        f"Two legs for the {vehicle} heading to {end}: {v1} and then {v2} {u} per hour.",
    ]
    if d.chance(0.5):
        trip = dist + d.num(2, 30) * 5
        left = trip - dist
        text += f" The whole journey to {end} is {trip} {u}. How many {u} are still to go?"
        r1 = trip - v1 * t1
        stages.append(
            _difference(
                "the distance left",
                left,
                f"{left} {u}",
                ("subtracting the distance covered", f"{trip} − {dist} = {left} {u}."),
                ("adding it back", f"{dist} + {left} = {trip} {u}, the whole journey."),
                Route(
                    "subtracting one leg at a time",
                    [
                        f"After the first leg: {trip} − {v1 * t1} = {r1} {u}.",
                        f"After the second: {r1} − {v2 * t2} = {r1 - v2 * t2} {u}.",
                    ],
                    r1 - v2 * t2,
                ),
            )
        )
        return Problem(
            "", text, left, opening, stages, closing=f"The {vehicle} still has {left} {u} to go to {end}."
        )
    text += f" How many {u} does it cover in total?"
    return Problem(
        "", text, dist, opening, stages, closing=f"The {vehicle} covers {dist} {u} on the way to {end}."
    )


def sharing(d: Draw) -> Problem:
    name, he, his = d.person()
    cs, cp, item = d.one(PACKS)
    friends = d.one(FRIENDS)
    f = d.num(2, 6)
    each = d.num(3, 15)
    k = d.num(11, 24)
    while True:
        n = d.num(2, 9)
        keep = n * k - f * each
        if keep >= 1:
            break
        k += 3
    total = n * k
    text = (
        f"{name} has {n} {cp} of {item} with {k} {item} in each. {cap(he)} keeps {keep} for {'himself' if he == 'he' else 'herself'} "
        f"and shares the rest equally among {f} {friends}. How many {item} does each of them get?"
    )
    total_routes = [
        Route("multiplying", [f"{n} × {k} = {total} {item}."], total),
        Route(
            "counting tens first",
            [f"{n} × 10 = {10 * n} and {n} × {k - 10} = {n * (k - 10)}, so {10 * n + n * (k - 10)} {item}."],
            10 * n + n * (k - 10),
        ),
    ]
    rest = total - keep
    share_routes = [
        Route(
            "removing what is kept, then dividing",
            [f"{total} − {keep} = {rest} {item} to share.", f"{rest} ÷ {f} = {each} each."],
            rest // f,
        ),
        Route(
            "multiplying back",
            [f"{f} × {each} = {rest}, and {rest} + {keep} = {total}, all the {item}."],
            each,
            check=True,
        ),
    ]
    if total % f == 0 and keep % f == 0:
        share_routes.append(
            Route(
                "dividing first and removing the kept share per person",
                [
                    f"{total} ÷ {f} = {total // f} per person if nothing were kept.",
                    f"The {keep} kept is {keep // f} per person: {total // f} − {keep // f} = {each}.",
                ],
                total // f - keep // f,
            )
        )
    stages = [
        Stage(f"the number of {item}", total, str(total), total_routes),
        Stage("each share", each, f"{each} {item}", share_routes),
    ]
    opening = [
        f"{name} has {n} {cp} of {k} {item}.",
        f"Count all of {name}'s {item}, then share out what is not kept among the {friends}.",
        f"The {item} come in {n} {cp}, and {f} {friends} share what {name} does not keep.",
    ]
    return Problem("", text, each, opening, stages, closing=f"Each of the {f} {friends} gets {each} {item}.")


def recipe(d: Draw) -> Problem:
    name, he, his = d.person()
    food, ing, unit = d.one(RECIPES)
    y = d.num(2, 8)
    per = d.num(1, 4)
    x = per * y if d.chance(0.6) else d.num(2, 9)
    mult = d.num(2, 5)
    z = mult * y
    need = x * mult
    text = d.one(
        [
            f"A recipe for {y} {food} needs {x} {unit} of {ing}. {name} wants to make {z} {food}.",
            f"{name} bakes for a party. {cap(his)} recipe uses {x} {unit} of {ing} for every {y} {food}, and {he} plans {z} {food}.",
        ]
    )
    routes = [
        Route(
            "scaling the whole recipe",
            [f"{z} {food} is {z} ÷ {y} = {mult} batches.", f"{mult} × {x} = {need} {unit}."],
            mult * x,
        ),
    ]
    if x % y == 0:
        routes.append(
            Route(
                "the amount per item",
                [
                    f"Each of the {food} takes {x} ÷ {y} = {x // y} {unit}.",
                    f"For {z}: {z} × {x // y} = {need} {unit}.",
                ],
                z * (x // y),
            )
        )
    if mult >= 2:
        extra = (mult - 1) * x
        routes.append(
            Route(
                "starting from one batch and adding the rest",
                [
                    f"One batch uses {x} {unit}; the other {mult - 1} batches use {mult - 1} × {x} = {extra}.",
                    f"{x} + {extra} = {need} {unit}.",
                ],
                x + extra,
            )
        )
    stages = [Stage(f"the {ing} needed", need, f"{need} {unit}", routes)]
    opening = [
        f"{x} {unit} of {ing} make {y} {food}; {name} wants {z}.",
        f"The {ing} grows in proportion to the number of {food}.",
        f"{name} is scaling a recipe for {food} from {y} to {z}.",
    ]
    if d.chance(0.55):
        has = d.num(1, need - 1)
        more = need - has
        text += f" {cap(he)} already has {has} {unit}. How many more {unit} of {ing} does {he} need?"
        stages.append(
            _difference(
                "the amount still missing",
                more,
                f"{more} {unit}",
                ("subtracting", f"{need} − {has} = {more} {unit}."),
                ("counting up", f"{has} + {more} = {need}, so {more} {unit} are missing."),
            )
        )
        return Problem(
            "", text, more, opening, stages, closing=f"{name} must get {more} more {unit} of {ing}."
        )
    text += f" How many {unit} of {ing} does {he} need?"
    return Problem(
        "", text, need, opening, stages, closing=f"{name} needs {need} {unit} of {ing} for {z} {food}."
    )


def savings(d: Draw) -> Problem:
    name, he, his = d.person()
    thing = d.one(WANTS)
    w = d.num(2, 12) * 5
    n = d.num(2, 9)
    has = d.num(1, 20) * 5
    gift = d.num(1, 6) * 10 if d.chance(0.4) else 0
    cost = has + gift + n * w
    text = d.one(
        [
            f"{name} is saving for a {thing} that costs {money(cost)}. {cap(he)} has",
            f"A {thing} costs {money(cost)}. {name} has",
        ]
    )
    text += f" {money(has)} saved"
    text += f" and gets {money(gift)} for {his} birthday" if gift else ""
    text += f". {cap(he)} puts aside {money(w)} every week. How many weeks until {he} has enough?"
    start = has + gift
    gap = cost - start
    stages = []
    if gift:
        stages.append(
            Stage(
                "the amount still needed",
                gap,
                money(gap),
                [
                    Route(
                        "adding up what is there first",
                        [
                            f"{money(has)} + {money(gift)} = {money(start)}.",
                            f"{money(cost)} − {money(start)} = {money(gap)}.",
                        ],
                        cost - start,
                    ),
                    Route(
                        "subtracting each amount from the price",
                        [
                            f"{money(cost)} − {money(has)} = {money(cost - has)}.",
                            f"{money(cost - has)} − {money(gift)} = {money(gap)}.",
                        ],
                        cost - has - gift,
                    ),
                ],
            )
        )
    weeks_routes = [
        Route(
            "dividing the gap by the weekly saving",
            ([] if gift else [f"{money(cost)} − {money(has)} = {money(gap)} to go."])
            + [f"{money(gap)} ÷ {money(w)} = {n} weeks."],
            gap // w,
        ),
        Route(
            "multiplying back",
            [
                f"{money(start)} + {n} × {money(w)} = {money(start)} + {money(n * w)} = {money(cost)}, exactly the price."
            ],
            n,
            check=True,
        ),
    ]
    if n <= 5:
        running = ", ".join(money(start + w * i) for i in range(1, n + 1))
        weeks_routes.append(
            Route(
                "counting week by week",
                [f"Savings after each week: {running}.", f"The price is reached after {n} weeks."],
                n,
            )
        )
    else:
        over = 10 * w - gap
        weeks_routes.append(
            Route(
                "starting from a round 10 weeks",
                [
                    f"10 weeks would give {money(10 * w)}, {money(over)} more than the {money(gap)} needed.",
                    f"That is {money(over)} ÷ {money(w)} = {over // w} weeks too many, so 10 − {over // w} = {10 - over // w} weeks.",
                ],
                10 - over // w,
            )
        )
    stages.append(Stage("the number of weeks", n, str(n), weeks_routes))
    opening = [
        f"The {thing} costs {money(cost)} and {name} saves {money(w)} a week.",
        f"{name} must close the gap to the {thing}'s price, then count the weeks.",
        f"Saving {money(w)} a week for a {thing}.",
    ]
    return Problem("", text, n, opening, stages, closing=f"After {n} weeks {name} can buy the {thing}.")


def collectors(d: Draw) -> Problem:
    (a, _, _), (b, _, _), (c, _, _) = d.rng.sample(PEOPLE, 3)
    things = d.one(COLLECTIONS)
    x, k = d.num(4, 30), d.num(2, 4)
    m = d.num(1, k * x - 1)
    xb, xc = k * x, k * x - m
    total = x + xb + xc
    text = d.one(
        [
            f"{a} has {x} {things}. {b} has {k} times as many {things} as {a}, and {c} has {m} fewer than {b}. "
            f"How many {things} do the three of them have altogether?",
            f"{a}, {b} and {c} collect {things}. {a} has {x}, {b} has {k} times as many as {a}, and {c} has {m} "
            f"less than {b}. How many {things} do they have in total?",
        ]
    )
    times = {2: "twice", 3: "three times", 4: "four times"}[k]
    routes = [
        Route(
            "counting person by person",
            [
                f"{b}: {k} × {x} = {xb}.",
                f"{c}: {xb} − {m} = {xc}.",
                f"[[Together|All three|Altogether]]: {x} + {xb} + {xc} = {total}.",
            ],
            total,
        ),
        Route(
            f"measuring everything in units of {a}'s {x}",
            [
                f"{a} is 1 unit, {b} is {k} units and {c} is {k} units minus {m}.",
                f"That is {2 * k + 1} × {x} − {m} = {(2 * k + 1) * x} − {m} = {total}.",
            ],
            (2 * k + 1) * x - m,
        ),
        Route(
            f"starting from {b}",
            [
                f"{b} has {xb}; {c} has the same minus {m}, so the two hold 2 × {xb} − {m} = {2 * xb - m}.",
                f"Adding {a}: {2 * xb - m} + {x} = {total}.",
            ],
            2 * xb - m + x,
        ),
    ]
    opening = [
        f"{b} has {times} {a}'s {x} {things}, and {c} has {m} fewer than {b}.",
        f"Add up the {things} of {a}, {b} and {c}.",
        f"{a}'s {x} {things} set the scale for the other two.",
    ]
    return Problem(
        "",
        text,
        total,
        opening,
        [Stage(f"the number of {things}", total, str(total), routes)],
        closing=f"{a}, {b} and {c} have {total} {things} together.",
    )


def discount(d: Draw) -> Problem:
    name, he, his = d.person()
    s, pl, _ = d.one(GOODS)
    pct = d.one([10, 20, 25, 50, 30, 40])
    step = {10: 10, 20: 5, 25: 4, 50: 2, 30: 10, 40: 5}[pct]
    price = d.num(2, 12) * step
    n = d.num(2, 6)
    off = price * pct // 100
    sale = price - off
    total = sale * n
    text = d.one(
        [
            f"A {s} normally costs {money(price)}. This week every {s} is {pct}% off. {name} buys {n}. How much does {he} pay?",
            f"{name} finds {pl} marked down by {pct}% from their usual {money(price)} and takes {n}. What does {he} pay?",
        ]
    )
    routes = [
        Route(
            "taking the discount off one item",
            [
                f"{pct}% of {money(price)} is {money(off)}, so one costs {money(price)} − {money(off)} = {money(sale)}.",
                f"[[For all {n}|Buying {n}|{n} of them]]: {n} × {money(sale)} = {money(total)}.",
            ],
            n * sale,
        ),
        Route(
            f"paying {100 - pct}% directly",
            [
                f"{cap(he)} pays {100 - pct}% of the price: {money(price)} × {100 - pct} ÷ 100 = {money(sale)} each.",
                f"For {n}: {money(total)}.",
            ],
            n * (price * (100 - pct) // 100),
        ),
        Route(
            "discounting the full total",
            [
                f"At full price {n} cost {n} × {money(price)} = {money(n * price)}.",
                f"{pct}% of that is {money(n * off)}, leaving {money(n * price - n * off)}.",
            ],
            n * price - n * off,
        ),
    ]
    opening = [
        f"The {s} costs {money(price)} with {pct}% off, and {name} buys {n}.",
        f"Work out what {name} pays for the {pl} on sale.",
        f"{pct}% off a {money(price)} {s}, bought {n} times.",
    ]
    return Problem(
        "",
        text,
        total,
        opening,
        [Stage("the amount paid", total, money(total), routes)],
        closing=f"{name} pays {money(total)} for the {pl}.",
    )


def garden(d: Draw) -> Problem:
    name, he, his = d.person()
    plants, produce = d.one(CROPS)
    r, c, y = d.num(3, 8), d.num(4, 12), d.num(2, 9)
    dead = d.num(1, r * c // 3)
    alive = r * c - dead
    total = alive * y
    text = d.one(
        [
            f"{name} plants {r} rows of {plants} with {c} in each row. {dead} of them do not survive, "
            f"and every other plant gives {y} {produce}. How many {produce} does {name} harvest?",
            f"In {his} garden {name} has {r} rows of {c} {plants}. A frost kills {dead} plants, and each remaining "
            f"plant yields {y} {produce}. How many {produce} does {he} pick?",
            f"A community plot holds {r} rows of {plants}, {c} per row, tended by {name}. If {dead} plants die and the "
            f"rest produce {y} {produce} each, how many {produce} are harvested?",
        ]
    )
    routes = [
        Route(
            "counting the surviving plants first",
            [
                f"{r} × {c} = {r * c} plants; {r * c} − {dead} = {alive} survive.",
                f"[[They give|The harvest is|That yields]] {alive} × {y} = {total} {produce}.",
            ],
            alive * y,
        ),
        Route(
            "computing the full harvest and removing the losses",
            [
                f"If all {r * c} survived: {r * c} × {y} = {r * c * y}.",
                f"The {dead} lost plants would have given {dead} × {y} = {dead * y}.",
                f"{r * c * y} − {dead * y} = {total}.",
            ],
            r * c * y - dead * y,
        ),
        Route(
            "working row by row",
            [
                f"A full row gives {c} × {y} = {c * y} {produce}, so {r} rows give {r * c * y}.",
                f"Minus {dead} × {y} = {dead * y} from the lost plants: {total}.",
            ],
            r * c * y - dead * y,
        ),
    ]
    opening = [
        f"{name} has {r} rows of {c} {plants}, loses {dead} and each survivor gives {y}.",
        f"Count {name}'s harvest of {produce}.",
        f"{name}'s {plants}: {r} rows of {c}, with {dead} lost.",
    ]
    return Problem(
        "",
        text,
        total,
        opening,
        [Stage(f"the number of {produce}", total, str(total), routes)],
        closing=f"{name} harvests {total} {produce}.",
    )


def habit(d: Draw) -> Problem:
    name, he, his = d.person()
    verb, unit = d.one(HABITS)
    p, q, w = d.num(5, 40), d.num(5, 60), d.num(2, 6)
    while q == p:
        q += 5
    week = 5 * p + 2 * q
    total = week * w
    text = d.one(
        [
            f"{name} {verb} {p} {unit} each weekday and {q} {unit} on each day of the weekend. How many {unit} is that in {w} weeks?",
            f"On weekdays {name} {verb} {p} {unit} a day; on Saturdays and Sundays, {q} {unit} a day. How many {unit} does that make over {w} weeks?",
            f"Every Monday to Friday {name} {verb} {p} {unit}, and every Saturday and Sunday {q} {unit}. What is the total after {w} weeks, in {unit}?",
        ]
    )
    routes = [
        Route(
            "one week at a time",
            [
                f"[[A week|One week|Each week]]: 5 × {p} + 2 × {q} = {5 * p} + {2 * q} = {week}.",
                f"{w} weeks: {w} × {week} = {total} {unit}.",
            ],
            w * week,
        ),
        Route(
            "weekdays and weekends separately",
            [
                f"[[Weekdays|On weekdays]]: {5 * w} days × {p} = {5 * w * p}.",
                f"Weekend days: {2 * w} × {q} = {2 * w * q}.",
                f"Total: {5 * w * p} + {2 * w * q} = {total} {unit}.",
            ],
            5 * w * p + 2 * w * q,
        ),
        _habit_baseline(p, q, w, unit),
    ]
    opening = [
        f"{name}: {p} {unit} on each of 5 weekdays, {q} on each of 2 weekend days, for {w} weeks.",
        f"Total {name}'s {unit} over {w} weeks.",
        f"{name}'s weekdays and weekends differ, so count the {unit} in parts.",
    ]
    return Problem(
        "",
        text,
        total,
        opening,
        [Stage("the total", total, f"{total} {unit}", routes)],
        closing=f"In {w} weeks {name} {verb} {total} {unit}.",
    )


def tickets(d: Draw) -> Problem:
    venue, family = d.one(VENUES), d.one(SURNAMES)
    adults, kids = d.num(1, 4), d.num(2, 6)
    pa, pk = d.num(8, 30), d.num(4, 15)
    while pk >= pa:
        pk -= 2
    full = adults * pa + kids * pk
    coupon = d.num(1, max(1, full // 10)) * 5 if full > 10 else 0
    coupon = min(coupon, full - 5)
    paid = full - coupon
    grown = f"{adults} adult{'s' if adults > 1 else ''}"
    text = d.one(
        [
            f"The {family} family, {grown} and {kids} children, visits the {venue}. Adult tickets cost {money(pa)} "
            f"and child tickets {money(pk)}. They use a coupon for {money(coupon)} off the total. How much do they pay?",
            f"Tickets for the {venue} are {money(pa)} for adults and {money(pk)} for children. The {family} family "
            f"brings {grown} and {kids} children and has a {money(coupon)} discount voucher. What do they pay in total?",
        ]
    )
    group = adults + kids
    routes = [
        Route(
            "pricing adults and children separately",
            [
                f"[[Adults|Adult tickets]]: {adults} × {money(pa)} = {money(adults * pa)}.",
                f"[[Children|Child tickets]]: {kids} × {money(pk)} = {money(kids * pk)}.",
                f"Before the coupon: {money(full)}; after it: {money(full)} − {money(coupon)} = {money(paid)}.",
            ],
            adults * pa + kids * pk - coupon,
        ),
        Route(
            "charging everyone the child price first",
            [
                f"{group} tickets at {money(pk)} cost {money(group * pk)}.",
                f"Each adult costs {money(pa - pk)} more: {adults} × {money(pa - pk)} = {money(adults * (pa - pk))}.",
                f"{money(group * pk + adults * (pa - pk))} − {money(coupon)} = {money(paid)}.",
            ],
            group * pk + adults * (pa - pk) - coupon,
        ),
    ]
    if adults * pa >= coupon:
        routes.append(
            Route(
                "taking the coupon off the adult tickets first",
                [
                    f"The adult tickets cost {adults} × {money(pa)} = {money(adults * pa)}, or {money(adults * pa - coupon)} after the coupon.",
                    f"Adding the children's {kids} × {money(pk)} = {money(kids * pk)}: {money(adults * pa - coupon + kids * pk)}.",
                ],
                adults * pa - coupon + kids * pk,
            )
        )
    opening = [
        f"The {family} family needs {adults} adult and {kids} child tickets for the {venue}.",
        f"Total the {family} family's tickets, then take off the {money(coupon)} coupon.",
        f"At the {venue}: {adults} adult and {kids} child tickets at {money(pa)} and {money(pk)}, minus a {money(coupon)} coupon.",
    ]
    return Problem(
        "",
        text,
        paid,
        opening,
        [Stage("the amount paid", paid, money(paid), routes)],
        closing=f"The {family} family pays {money(paid)} at the {venue}.",
    )


def _habit_baseline(p: int, q: int, w: int, unit: str) -> Route:
    """All 7 days at the smaller daily amount, plus the extra on the days with the larger one."""
    low, days_hi, extra = (p, 2 * w, q - p) if q > p else (q, 5 * w, p - q)
    which = "weekend" if q > p else "weekday"
    total = 7 * w * low + days_hi * extra
    return Route(
        f"all 7 days at {low} plus the {which} extra",
        [
            f"{7 * w} days × {low} = {7 * w * low}.",
            f"Each {which} day adds {extra}: {days_hi} × {extra} = {days_hi * extra}.",
            f"{7 * w * low} + {days_hi * extra} = {total} {unit}.",
        ],
        total,
    )


FAMILIES: list[Family] = [
    shopping,
    wages,
    travel,
    sharing,
    recipe,
    savings,
    collectors,
    discount,
    garden,
    habit,
    tickets,
]
