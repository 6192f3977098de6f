"""Rebuilds a trace while the rollout engine streams it.

In fork mode the paths of a block are sampled together, so their tokens arrive interleaved and several
paths are unfinished at once. Each `TokenEvent` names its segment ("main"; "path" with its block and
path; "summary" with its block), so every segment collects its own text, and `trace()` assembles them
in layout order (main 0, block 0's paths, its summary, main 1, ...), parsing each segment on its own
with `pr1.format.parse`. Tags are literal text in the events; in free mode (one stream that writes
its own tags) everything is "main" and the parser finds the blocks."""

from __future__ import annotations

import threading
from typing import Any

from pr1.format import PARALLEL_CLOSE, PARALLEL_OPEN, Block, Trace, parse


class LiveTrace:
    """Collects the events of one trajectory; safe to read from another thread while it grows."""

    def __init__(self) -> None:
        self._slots: dict[tuple[int, int, int], list[str]] = {}  # (block, 0 main|1 path|2 summary, path)
        self._next_block = 0  # main text goes before the block after the last one seen
        self._lock = threading.Lock()
        self.generated = 0  # tokens sampled by the model (not inserted by the runtime)
        self.done = False

    def add(self, event: Any) -> None:
        """`event`: a `pr1.rollout.TokenEvent` (segment, block, path, token_id, text, inserted, done)."""
        with self._lock:
            if event.segment == "path":
                key = (event.block or 0, 1, event.path or 0)
            elif event.segment == "summary":
                key = (event.block or 0, 2, 0)
            else:
                key = (self._next_block, 0, 0)
            if event.segment != "main" and event.block is not None:
                self._next_block = max(self._next_block, event.block + 1)
            if event.text:
                self._slots.setdefault(key, []).append(event.text)
            # token_id -1: text the detokeniser held back, not a token of its own
            self.generated += not event.inserted and not event.done and event.token_id >= 0
            self.done = self.done or event.done

    def _segments(self) -> list[tuple[tuple[int, int, int], str]]:
        with self._lock:
            return [(k, "".join(self._slots[k])) for k in sorted(self._slots)]

    @property
    def text(self) -> str:
        """The text so far in layout order (what the finished trajectory's text will be)."""
        return "".join(text for _, text in self._segments())

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
