"""pr1's offline teacher: synthetic arithmetic problems with programmatically written parallel traces.

Each problem family draws a scenario and knows several genuinely different routes to each quantity it asks
for; the trace writer explores 2–3 of them in a `<Parallel>` block, compares them in the `<Summary>`, and
ends with `Final Answer: N`. Every route is computed from the numbers, and `make_problem` asserts that all
routes agree, so every trace is correct by construction.

Difficulties, easiest first (`DIFFICULTIES`): "one-step" ("What is 3 + 5?"), "two-step"
("What is 3 + 5 - 2?"), "short-word" (two operations on small numbers in a sentence or two) and "word"
(word problems with 2–4 operations, the default).

Everything is deterministic: `make_problem(seed, index, difficulty)` rebuilds the same problem, and
`write_trace(problem, sample)` the same trace for each sample number.

Modules: `model` (Route, Stage, Problem, the rng helpers), `vocabulary` (the words the families draw from),
`arithmetic`, `short_word` and `word` (the problem families of each difficulty), `problems`
(`make_problem`, `synthetic_problems`), `traces` (the trace writer, the only part that writes the format).
"""

from pr1.coldstart.synthetic.model import Problem, Route, Stage
from pr1.coldstart.synthetic.problems import (
    DEFAULT_DIFFICULTY,
    DIFFICULTIES,
    check_difficulty,
    make_problem,
    synthetic_problems,
)
from pr1.coldstart.synthetic.traces import write_trace
from pr1.coldstart.synthetic.word import FAMILIES

__all__ = [
    "DEFAULT_DIFFICULTY",
    "DIFFICULTIES",
    "FAMILIES",
    "Problem",
    "Route",
    "Stage",
    "check_difficulty",
    "make_problem",
    "synthetic_problems",
    "write_trace",
]
