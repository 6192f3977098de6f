"""Logits processors for the rollout-engine tests: a tiny random model rarely writes tags, so these force
forks, path lengths and summary lengths (`schedule`), a path that differs from its siblings, an EOS inside a
path or a summary, or tags where the engine does not fork."""

from __future__ import annotations

from pr1.rollout import ForcedSchedule, RolloutEngine
from pr1.rollout.sampling import FORCED_LOGIT


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


def after_a_block(c) -> bool:
    """Whether a context is in main text after a block (a main segment that did not start the completion)."""
    return c.segment == "main" and c.completion_tokens > c.segment_tokens


def eos_in_summary(eng: RolloutEngine, forced):
    """`forced` (which must not close summaries), and an EOS as the third token of each summary and of the main
    text after a block."""
    eos = min(eng.eos_ids)

    def processor(ctxs, logits):
        logits = forced(ctxs, logits)
        for i, c in enumerate(ctxs):
            if (c.segment == "summary" or after_a_block(c)) and c.segment_tokens == 2:
                logits[i, eos] = FORCED_LOGIT
        return logits

    return processor


def stray_tags(eng: RolloutEngine, forced):
    """`forced` (path and summary lengths, no forks), a `<Parallel>` as the third token of the first main
    segment, and tags a model may write where the engine does not fork: a `<Parallel>` as the second token of
    every path and summary, and in the main text after a block two `<Path>…</Path>` spans."""
    tags = eng.tags
    after = {1: "<Path>", 3: "</Path>", 4: "<Path>", 6: "</Path>"}  # main-text token index -> tag

    def processor(ctxs, logits):
        logits = forced(ctxs, logits)
        for i, c in enumerate(ctxs):
            if c.segment == "main":
                tag = (
                    after.get(c.segment_tokens)
                    if after_a_block(c)
                    else {2: "<Parallel>"}.get(c.segment_tokens)
                )
            else:
                tag = "<Parallel>" if c.segment_tokens == 1 else None
            if tag is not None:
                logits[i, tags[tag]] = FORCED_LOGIT
        return logits

    return processor
