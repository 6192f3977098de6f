"""The parallel-thinking trace format (METHOD.md §1): tags, a lenient parser, the validity rules, stats.

A response is main text interleaved with parallel blocks:

    text <Parallel><Path>…</Path><Path>…</Path></Parallel>\n<Summary>…</Summary> text … Final Answer: X

`parse` builds a tree from any text, finished or still streaming, and `parse(t).render() == t` for every
string. `validate` applies METHOD.md's rules (stricter than the reference code's checker, whose rules are
available as `rules="reference"`) and returns the reasons a trace is invalid. `answer_text` is the part of a
trace its final answer is read from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

PARALLEL_OPEN = "<Parallel>"
PARALLEL_CLOSE = "</Parallel>"
PATH_OPEN = "<Path>"
PATH_CLOSE = "</Path>"
SUMMARY_OPEN = "<Summary>"
SUMMARY_CLOSE = "</Summary>"
TAGS = (PARALLEL_OPEN, PARALLEL_CLOSE, PATH_OPEN, PATH_CLOSE, SUMMARY_OPEN, SUMMARY_CLOSE)

_TAG_RE = re.compile("|".join(re.escape(t) for t in TAGS))


@dataclass
class PathNode:
    text: str = ""
    closed: bool = False

    def render(self) -> str:
        return PATH_OPEN + self.text + (PATH_CLOSE if self.closed else "")


@dataclass
class SummaryNode:
    text: str = ""
    closed: bool = False

    def render(self) -> str:
        return SUMMARY_OPEN + self.text + (SUMMARY_CLOSE if self.closed else "")


@dataclass
class Block:
    """A `<Parallel>` block. `inner` holds its paths and any text between them (usually whitespace);
    `gap` is the text between `</Parallel>` and `<Summary>` (normally "\\n")."""

    inner: list[PathNode | str] = field(default_factory=list)
    closed: bool = False
    gap: str = ""
    summary: SummaryNode | None = None

    @property
    def paths(self) -> list[PathNode]:
        return [p for p in self.inner if isinstance(p, PathNode)]

    def render(self) -> str:
        body = "".join(p if isinstance(p, str) else p.render() for p in self.inner)
        out = PARALLEL_OPEN + body + (PARALLEL_CLOSE if self.closed else "")
        return out + self.gap + (self.summary.render() if self.summary else "")


@dataclass
class Trace:
    """Main text segments (str) and parallel blocks, in order."""

    parts: list[str | Block] = field(default_factory=list)

    @property
    def blocks(self) -> list[Block]:
        return [p for p in self.parts if isinstance(p, Block)]

    @property
    def main_text(self) -> str:
        return "".join(p for p in self.parts if isinstance(p, str))

    def render(self) -> str:
        return "".join(p if isinstance(p, str) else p.render() for p in self.parts)


def split_tags(text: str) -> list[str]:
    """Text pieces and tags in order, e.g. ["a ", "<Parallel>", "<Path>", "b", ...]; no empty pieces."""
    pieces: list[str] = []
    pos = 0
    for m in _TAG_RE.finditer(text):
        if m.start() > pos:
            pieces.append(text[pos : m.start()])
        pieces.append(m.group())
        pos = m.end()
    if pos < len(text):
        pieces.append(text[pos:])
    return pieces


def parse(text: str) -> Trace:
    """Parse any text into a Trace, leniently: a tag that does not fit where it stands stays literal text
    of the node it is in (so `validate` can report it), and unfinished nodes have `closed=False`."""
    trace = Trace()
    block: Block | None = None  # the block being written, or the last block while its summary may follow
    node: PathNode | SummaryNode | None = None  # the open path or summary
    state = "main"  # main | block | path | after | summary

    def add_main(s: str) -> None:
        if trace.parts and isinstance(trace.parts[-1], str):
            trace.parts[-1] += s
        else:
            trace.parts.append(s)

    def add_inner(s: str) -> None:
        assert block is not None
        if block.inner and isinstance(block.inner[-1], str):
            block.inner[-1] += s
        else:
            block.inner.append(s)

    for piece in split_tags(text):
        if state == "after":
            assert block is not None
            if piece == SUMMARY_OPEN:
                node = block.summary = SummaryNode()
                state = "summary"
                continue
            if piece not in TAGS and not piece.strip() and not block.gap:
                block.gap = piece
                continue
            # anything else: the block has no summary; a whitespace gap goes back to main text
            if block.gap:
                add_main(block.gap)
                block.gap = ""
            state = "main"
        if state == "main":
            if piece == PARALLEL_OPEN:
                block = Block()
                trace.parts.append(block)
                state = "block"
            else:
                add_main(piece)
        elif state == "block":
            assert block is not None
            if piece == PATH_OPEN:
                node = PathNode()
                block.inner.append(node)
                state = "path"
            elif piece == PARALLEL_CLOSE:
                block.closed = True
                state = "after"
            else:
                add_inner(piece)
        elif state in ("path", "summary"):
            assert node is not None
            if piece == (PATH_CLOSE if state == "path" else SUMMARY_CLOSE):
                node.closed = True
                state = "block" if state == "path" else "main"
            else:
                node.text += piece
    return trace


# ---------------------------------------------------------------------------------------------- validity


FORMAT_RULES = ("pr1", "reference")  # the choices of `validate(rules=...)`


def validate(text: str, rules: str = "pr1") -> list[str]:
    """The reasons `text` breaks the format rules (empty list = valid).

    `rules="pr1"`: METHOD.md §1, with a trace read as the rollout engine and `pr1.structured.build_structure`
    read it (a tag that does not fit where it stands is reported, then read as text):

    1. tags balance as a stack; `<Path>`/`</Path>` only directly inside an open `<Parallel>`;
    2. every block holds at least 2 closed paths;
    3. every `</Parallel>` is followed (tag-wise) by exactly one `<Summary>…</Summary>`, and a `<Summary>`
       anywhere else is an error; the counts of `<Summary>` and `</Parallel>` are equal;
    4. no nesting: a `<Parallel>` inside a block, a path or a summary is an error;
    5. nothing is left open at the end.

    `rules="reference"`: the reference code's checker as METHOD.md §1 describes it (derived from that
    description, for exact comparisons with the reference's numbers). It accepts four things pr1 rejects: a
    summary left open at the end and a stray `</Summary>` (no `</Summary>` is checked), a `<Path>` outside a
    block (in main text or a summary), and nesting (a block inside a path or a summary) while the
    `<Parallel>` and `<Path>` tags balance. Rules 2 and 3 hold as in pr1's.
    """
    if rules not in FORMAT_RULES:
        raise ValueError(f"unknown format rules {rules!r}; expected one of {', '.join(FORMAT_RULES)}")
    strict = rules == "pr1"
    errors: list[str] = []
    stack: list[str] = []  # the open tags, innermost last
    blocks: list[list[int]] = []  # [block number, closed paths] of each open block, innermost last
    opened = 0  # blocks opened so far
    closed: int | None = None  # the block whose `</Parallel>` is the last tag read (its `<Summary>` is due)
    for tag in _TAG_RE.findall(text):
        top = stack[-1] if stack else None
        where = top or "main text"
        due, closed = closed, None
        if due is not None and tag != SUMMARY_OPEN:
            errors.append(f"block {due}: </Parallel> not followed by <Summary> (got {tag})")
        if tag == PARALLEL_OPEN:
            if strict and top is not None:
                errors.append(f"nested <Parallel> inside {top}")
                continue
            opened += 1
            blocks.append([opened, 0])
            stack.append(tag)
        elif tag == PATH_OPEN:
            if strict and top != PARALLEL_OPEN:
                errors.append(f"<Path> outside a <Parallel> block (inside {where})")
                continue
            stack.append(tag)
        elif tag == PATH_CLOSE:
            if top != PATH_OPEN:
                errors.append(f"</Path> without an open <Path> (inside {where})")
                continue
            stack.pop()
            if stack and stack[-1] == PARALLEL_OPEN:
                blocks[-1][1] += 1
        elif tag == PARALLEL_CLOSE:
            if top != PARALLEL_OPEN:
                errors.append(f"</Parallel> without an open <Parallel> (inside {where})")
                continue
            stack.pop()
            number, paths = blocks.pop()
            if paths < 2:
                errors.append(f"block {number}: {paths} closed path(s), need at least 2")
            closed = number
        elif tag == SUMMARY_OPEN:
            if due is None:
                errors.append(f"<Summary> not directly after a </Parallel> (inside {where})")
            elif strict:
                stack.append(tag)
        elif strict:  # </Summary> (the reference checks none)
            if top != SUMMARY_OPEN:
                errors.append(f"</Summary> without an open <Summary> (inside {where})")
            else:
                stack.pop()
    if closed is not None:
        errors.append(f"block {closed}: </Parallel> not followed by <Summary> (got end of text)")
    n_close, n_summary = text.count(PARALLEL_CLOSE), text.count(SUMMARY_OPEN)
    if n_close != n_summary:
        errors.append(f"{n_summary} <Summary> for {n_close} </Parallel>")
    if stack:
        errors.append("unclosed at end: " + ", ".join(stack))
    return errors


def answer_text(text: str) -> str:
    """The text a trace's final answer is read from (METHOD.md §1): main text and summaries, in order, with
    the paths left out (a path is exploration, not the model's answer). The trace is read as `parse` reads
    it; every tag becomes a line break, so no tag stays in an answer and an answer line ends at a tag."""
    pieces: list[str] = []
    for part in parse(text).parts:
        if isinstance(part, str):
            pieces.append(part)
            continue
        pieces += [p for p in part.inner if isinstance(p, str)]  # text beside the paths, inside the block
        pieces.append(part.gap)
        if part.summary is not None:
            pieces.append(part.summary.text)
    return _TAG_RE.sub("\n", "\n".join(pieces))


# -------------------------------------------------------------------------------------------- statistics


@dataclass
class TraceStats:
    n_blocks: int
    paths_per_block: list[int]
    parallel_positions: list[float]  # start offset of each <Parallel> / response length (characters)
    main_chars: int
    path_chars: int
    summary_chars: int
    total_chars: int

    @property
    def parallel(self) -> bool:
        return self.n_blocks >= 1


def stats(text: str) -> TraceStats:
    """Per-trace statistics. Blocks are counted by `<Parallel>` tags, as the rewards count them."""
    trace = parse(text)
    positions = [m.start() / max(len(text), 1) for m in re.finditer(re.escape(PARALLEL_OPEN), text)]
    path_chars = summary_chars = 0
    for b in trace.blocks:
        path_chars += sum(len(p.text) for p in b.paths)
        summary_chars += len(b.summary.text) if b.summary else 0
    return TraceStats(
        n_blocks=text.count(PARALLEL_OPEN),
        paths_per_block=[len(b.paths) for b in trace.blocks],
        parallel_positions=positions,
        main_chars=len(trace.main_text),
        path_chars=path_chars,
        summary_chars=summary_chars,
        total_chars=len(text),
    )


def strip_think(text: str) -> str:
    """Keep only what follows the last `</think>` (teachers that reason before answering)."""
    i = text.rfind("</think>")
    return text[i + len("</think>") :].lstrip() if i >= 0 else text
