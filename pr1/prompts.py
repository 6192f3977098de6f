"""The instruction prompts (METHOD.md §2): one user turn, no system prompt, the same for SFT, RL and eval.

A user template is a text file containing `{problem}` exactly once; `--prompt-file` loads one."""

from __future__ import annotations

from pathlib import Path

from pr1.errors import Pr1Error

PARALLEL_TEMPLATE = """\
Solve the following math problem step by step.

Whenever a step would profit from independent perspectives (trying two approaches, checking a result \
another way, or weighing alternatives), think in parallel: open a <Parallel> block containing at least \
two <Path> ... </Path> sections that each work on their own and never refer to one another, close the \
block with </Parallel>, and straight after it write a <Summary> ... </Summary> that draws the paths \
together. Use such blocks as often as they help, and continue your reasoning after each summary. Do not \
announce or explain that you are doing this.

Finish with a last line of the form "Final Answer: <result>".

Problem: {problem}"""

SEQUENTIAL_TEMPLATE = """\
Solve the following math problem. Think step by step, and finish with a last line of the form \
"Final Answer: <result>".

Problem: {problem}"""

# The parallel instruction in two sentences, for runs where the prompt costs more than the answer (`pr1 demo`'s
# arithmetic: 85 prompt tokens with SmolLM2's chat template instead of 189, and SFT and RL compute on them too).
SHORT_PARALLEL_TEMPLATE = """\
Solve the problem. Where it helps, think in parallel: a <Parallel> block of independent <Path> sections, \
then a <Summary>. End with "Final Answer: <result>".

Problem: {problem}"""

TEMPLATES = {
    "parallel": PARALLEL_TEMPLATE,
    "parallel-short": SHORT_PARALLEL_TEMPLATE,
    "sequential": SEQUENTIAL_TEMPLATE,
}
NAMES = " | ".join(TEMPLATES)  # for the settings' help


def load_template(name_or_path: str | Path | None) -> str:
    """A built-in template by name ("parallel", "sequential"), or a user's template file."""
    if name_or_path is None:
        return PARALLEL_TEMPLATE
    if str(name_or_path) in TEMPLATES:
        return TEMPLATES[str(name_or_path)]
    path = Path(name_or_path)
    if not path.is_file():
        raise Pr1Error(f"--prompt-file {path}: no such file (or use one of {NAMES.replace(' | ', ', ')})")
    text = path.read_text(encoding="utf-8")
    if text.count("{problem}") != 1:
        raise Pr1Error(f"--prompt-file {path}: the template must contain {{problem}} exactly once")
    return text


def build_prompt(problem: str, template: str = PARALLEL_TEMPLATE) -> str:
    # replace, not str.format: templates may contain LaTeX braces
    return template.replace("{problem}", problem.strip())


def build_messages(problem: str, template: str = PARALLEL_TEMPLATE) -> list[dict[str, str]]:
    return [{"role": "user", "content": build_prompt(problem, template)}]
