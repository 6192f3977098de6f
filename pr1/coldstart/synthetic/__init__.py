"""pr1's offline teacher: synthetic arithmetic word problems with programmatically written parallel traces.

Each problem family draws a scenario and knows several genuinely different routes to each quantity it asks
for; the trace writer explores 2–3 of them in a `<Parallel>` block, compares them in the `<Summary>`, and
ends with `Final Answer: N`. Every route is computed from the numbers, and `make_problem` asserts that all
routes agree, so every trace is correct by construction.

Everything is deterministic: `make_problem(seed, index)` rebuilds the same problem, and
`write_trace(problem, sample)` the same trace for each sample number.

Modules: `model` (Route, Stage, Problem, the rng helpers), `vocabulary` (the words the families draw from),
`word` (the problem families), `problems` (`make_problem`, `synthetic_problems`), `traces` (the trace
writer, the only part that writes the format).
"""

from pr1.coldstart.synthetic.model import Problem, Route, Stage
from pr1.coldstart.synthetic.problems import make_problem, synthetic_problems
from pr1.coldstart.synthetic.traces import write_trace
from pr1.coldstart.synthetic.word import FAMILIES

__all__ = ["FAMILIES", "Problem", "Route", "Stage", "make_problem", "synthetic_problems", "write_trace"]
