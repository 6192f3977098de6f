"""Rebuilds a trace while the rollout engine streams it, and counts its tokens.

In fork mode the paths of a block are sampled together, so their tokens arrive interleaved and several
paths are unfinished at once. Each `TokenEvent` names its segment ("main"; "path" with its block and
path; "summary" with its block), so every segment collects its own text, and `trace()` assembles them
in layout order (main 0, block 0's paths, its summary, main 1, ...), parsing each segment on its own
with `pr1.format.parse`. Tags are literal text in the events. In free mode (one stream that writes its own
tags) the engine labels each token the same way; a "main" token with a block number is text the model
wrote inside a block, between its paths, and stays there.

Tokens are counted the way `max_tokens` and `pr1 eval` count them: every completion token, inserted tags
and the final EOS included. The counts are those of the tree that is drawn, so the critical path (main
text, summaries and the longest path of each block) never exceeds the total."""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

from pr1.format import PARALLEL_CLOSE, PARALLEL_OPEN, Block, Trace, parse

# What a tokenizer decodes bytes to that never became a character: the engine holds an incomplete UTF-8
# character back until its next token completes it, but one cut by a tag (a path's inserted </Path>), a
# stop or the token budget never completes. Such bytes are no text, so the chat neither shows nor saves them.
REPLACEMENT_CHARACTER = "\ufffd"


class LiveTrace:
    """Collects the events of one trajectory; safe to read from another thread while it grows."""

    def __init__(self) -> None:
        self._slots: dict[tuple[int, int, int], list[str]] = {}  # (block, 0 main|1 path|2 summary, path)
        self._next_block = 0  # main text goes before the block after the last one seen
        self._last_path: dict[int, int] = {}  # the last path seen of each block
        self._path_tokens: dict[tuple[int, int], int] = defaultdict(int)  # (block, path) -> tokens
        self._lock = threading.Lock()
        self.tokens = 0  # completion tokens so far (inserted ones included)
        self.done = False

    def add(self, event: Any) -> None:
        """`event`: a `pr1.rollout.TokenEvent` (segment, block, path, token_id, text, inserted, done)."""
        with self._lock:
            block = event.block or 0
            if event.segment == "path":
                key = (block, 1, event.path or 0)
                self._last_path[block] = event.path or 0
            elif event.segment == "summary":
                key = (block, 2, 0)
            elif event.block is not None:  # free mode: text between a block's paths, after the last one seen
                key = (block, 1, self._last_path.get(block, -1))
            else:
                key = (self._next_block, 0, 0)
            if event.segment != "main" and event.block is not None:
                self._next_block = max(self._next_block, event.block + 1)
            text = event.text.replace(REPLACEMENT_CHARACTER, "")
            if text:
                self._slots.setdefault(key, []).append(text)
            # token_id -1: text the detokeniser held back, or the final event; not a token of its own
            if event.token_id >= 0 and not event.done:
                self.tokens += 1
                if event.segment == "path":
                    self._path_tokens[block, event.path or 0] += 1
            self.done = self.done or event.done

    @property
    def critical_path_tokens(self) -> int:
        """Tokens on the longest chain a parallel decoder waits for: all of them, less every block's paths
        but its longest (as `pr1.structured.build_structure` positions them)."""
        with self._lock:
            per_block: dict[int, list[int]] = defaultdict(list)
            for (b, _), n in self._path_tokens.items():
                per_block[b].append(n)
            return self.tokens - sum(sum(ns) - max(ns) for ns in per_block.values())

    def _segments(self) -> list[tuple[tuple[int, int, int], str]]:
        with self._lock:
            return [(k, "".join(self._slots[k])) for k in sorted(self._slots)]

    @property
    def text(self) -> str:
        """The text so far in layout order (what the finished trajectory's text will be)."""
        return "".join(text for _, text in self._segments())

    def final_text(self) -> str:
        """The text of the tree as drawn, once generation has ended: a path that was cut (a stop, the token
        budget) while another path of its block follows is closed, since an open path reads the text after
        it as its own; `parse` of this text gives the drawn tree, every path of every block included."""
        trace = self.trace()
        for block in trace.blocks:
            for path in block.paths[:-1]:
                path.closed = True
        return trace.render()

    def trace(self) -> Trace:
        out = Trace()
        blocks: dict[int, Block] = {}

        def extend(parts: list) -> None:
            for part in parts:
                if isinstance(part, str) and out.parts and isinstance(out.parts[-1], str):
                    out.parts[-1] += part
                else:
                    out.parts.append(part)

        for (b, kind, _), text in self._segments():
            if kind == 0:
                extend(parse(text).parts)
                continue
            block = blocks.get(b)
            if block is None:  # usually the empty block that main text's trailing <Parallel> opened
                last = out.parts[-1] if out.parts else None
                block = last if isinstance(last, Block) and not last.inner and not last.closed else Block()
                if block is not last:
                    out.parts.append(block)
                blocks[b] = block
            head, *rest = parse(PARALLEL_OPEN + (PARALLEL_CLOSE if block.closed else "") + text).parts
            assert isinstance(head, Block)
            block.inner += head.inner
            if head.closed:
                block.closed = True
                block.gap = block.gap or head.gap
                block.summary = head.summary or block.summary
            extend(rest)
        return out
