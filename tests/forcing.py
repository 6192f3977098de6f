"""Logits processors for the rollout-engine tests: a tiny random model rarely writes tags, so these force
forks, path lengths and summary lengths (`schedule`), a path that differs from its siblings, or an EOS
inside a path."""

from __future__ import annotations

from pr1.rollout import ForcedSchedule, RolloutEngine


def schedule(eng: RolloutEngine, **kw) -> ForcedSchedule:
    return ForcedSchedule.for_tokenizer(eng.tokenizer, eos=eng.eos_ids, **kw)


def other_path_1(forced):
    """`forced`, with path 1 pushed towards token 1000: it writes something else entirely."""

    def processor(ctxs, logits):
        logits = forced(ctxs, logits)
        for i, c in enumerate(ctxs):
            if c.segment == "path" and c.path == 1:
                logits[i, 1000] += 50.0
        return logits

    return processor


def eos_in_path_1(eng: RolloutEngine, forced):
    """`forced`, but no path closes by itself (the path cap ends it) and path 1 writes an EOS as its third
    token."""
    close, eos = eng.tags["</Path>"], min(eng.eos_ids)

    def processor(ctxs, logits):
        logits = forced(ctxs, logits)
        for i, c in enumerate(ctxs):
            if c.segment == "path":
                logits[i, close] = float("-inf")
                if c.path == 1 and c.segment_tokens == 2:
                    logits[i, eos] = 1e4
        return logits

    return processor
