"""The fork/join rollout engine (METHOD.md §5).

`fork` mode, per trajectory: decode the main segment until `<Parallel>` or EOS; fork `num_paths` paths from
the shared prefix (its KV cache is copied, never prefilled again), each seeded with an inserted `<Path>` and
ending at `</Path>` (an EOS becomes an inserted `</Path>`; a path that samples `max_path_tokens` tokens gets
an inserted `</Path>`); a path sees the prefix and itself, never its siblings. Join: the paths are laid out
in order after `<Parallel>`, the runtime inserts `</Parallel>`, `\\n`, `<Summary>`, and the summary and all
later text are decoded on the laid-out sequence with plain causal attention (the reference behaviour):
path 1's keys are reused as they are (they were computed on prefix + path 1), later paths are prefilled
after it. The summary ends at `</Summary>`; an EOS there becomes an inserted `</Summary>` (as in the
reference runtime) and the main text goes on. `<Parallel>` is banned wherever the engine does not fork, so
that every `<Parallel>` of a trace opens a block (as `pr1.structured.build_structure` and
`pr1.format.validate` read it): inside paths and summaries, and in the main text after `max_blocks` blocks,
which then goes on unforked.
`max_tokens` counts every completion token (paths and inserted tokens included); when it runs out the
trajectory stops where it is (`truncated`), even inside a block. (Structured mode then keeps the closed paths
and one unclosed path, laid out last, so that the structure a trainer reads is the one that was decoded.)

`free` mode: one causal stream, the model writes every tag itself; nothing is inserted or banned.

`structured` mode (the structured variant, METHOD.md §6): the paths decode exactly as in fork mode — forked
from the prefix, each at positions c+1, c+2, … after a `<Parallel>` at position c — and each path's last
tokens are fed to its own row before the join. The join then appends paths 2… cached keys and values to the
trajectory's row after path 1 (layout order; keys carry their rotary positions, so nothing is recomputed)
and the summary goes on at position c + max(Lᵢ) + 1 attending to all of them: the positions and path-window
mask of `pr1.structured.build_structure`, so a structured-mask forward pass reproduces the log-probs.

Scheduling: all live streams (main segments, paths, summaries of up to `rollout_batch` trajectories) advance
together, one token each per forward. Several tokens to feed at once (a prompt, the paths at a join) go in
a prefill forward; short runs of inserted tokens ride along the decoding batch, one per step. The samples
of one prompt share its prefill. New trajectories start as others finish (continuous batching).
"""

from __future__ import annotations

import secrets
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from pr1.errors import Pr1Error
from pr1.models import tag_token_ids
from pr1.rollout.config import RolloutConfig, TokenEvent, Trajectory
from pr1.rollout.row_decoder import RowDecoder
from pr1.rollout.sampling import LogitsProcessor, SampleContext, sample, uniform
from pr1.structured import TagIds, build_structure

INLINE_FEED = 4  # pending tokens up to this many are fed one per decoding step instead of a prefill forward
_MASK63 = (1 << 63) - 1

Prompt = str | Sequence[dict] | Sequence[int]


@dataclass
class _Tokens:
    ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    inserted: list[bool] = field(default_factory=list)

    def add(self, token: int, logprob: float, inserted: bool) -> None:
        self.ids.append(token)
        self.logprobs.append(logprob)
        self.inserted.append(inserted)

    def extend(self, other: _Tokens) -> None:
        self.ids += other.ids
        self.logprobs += other.logprobs
        self.inserted += other.inserted


class _Detok:
    """Incremental detokenizer: the text each new token adds, holding back an incomplete UTF-8 character."""

    def __init__(self, tokenizer):  # noqa: ANN001
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.prefix = self.read = 0

    def add(self, token: int) -> str:
        self.ids.append(token)
        return self._delta(final=False)

    def flush(self) -> str:
        return self._delta(final=True) if self.read < len(self.ids) else ""

    def _delta(self, final: bool) -> str:
        decode = self.tokenizer.decode
        new = decode(self.ids[self.prefix :], skip_special_tokens=False)
        if new.endswith("\ufffd") and not final:
            return ""
        old = decode(self.ids[self.prefix : self.read], skip_special_tokens=False)
        self.prefix, self.read = self.read, len(self.ids)
        return new[len(old) :]


class _Labels:
    """Segment, block and path of each token of a causal stream (free mode), read like `pr1.format.parse`."""

    def __init__(self, tags: dict[str, int], newline: Sequence[int]):
        self.tags, self.newline = tags, set(newline)
        self.state, self.block, self.path = "main", -1, -1

    def __call__(self, token: int) -> tuple[str, int | None, int | None]:
        tags = self.tags
        if self.state == "after":
            if token == tags["<Summary>"]:
                self.state = "summary"
            if token == tags["<Summary>"] or token in self.newline:
                return "summary", self.block, None
            self.state = "main"
        if self.state == "main":
            if token == tags["<Parallel>"]:
                self.state, self.block, self.path = "block", self.block + 1, -1
            return "main", None, None
        if self.state == "block":
            if token == tags["<Path>"]:
                self.state, self.path = "path", self.path + 1
                return "path", self.block, self.path
            if token == tags["</Parallel>"]:
                self.state = "after"
                return "summary", self.block, None
            return "main", self.block, None
        if self.state == "path":
            if token == tags["</Path>"]:
                self.state = "block"
            return "path", self.block, self.path
        if token == tags["</Summary>"]:
            self.state = "main"
        return "summary", self.block, None

    def where(self) -> tuple[str, int | None, int | None]:
        """Segment, block and path of the next token."""
        if self.state in ("main", "block"):
            return "main", None, None
        if self.state == "path":
            return "path", self.block, self.path
        return "summary", self.block, None


@dataclass(eq=False)
class _Traj:
    index: int
    prompt_index: int
    sample_index: int
    key: int  # randomness key of the prompt
    prompt_ids: list[int]
    prompt_truncated: bool
    out: _Tokens = field(default_factory=_Tokens)  # the completion in layout order (paths once joined)
    count: int = 0  # completion tokens so far, paths being decoded included
    row: int | None = None  # its main row (path 0 decodes on it)
    blocks: int = 0
    paths: list[_Stream] = field(default_factory=list)  # the block being decoded
    detok: _Detok | None = None
    labels: _Labels | None = None
    started: bool = False
    finished: bool = False
    result: Trajectory | None = None


@dataclass(eq=False)
class _Stream:
    """One decoding row's job: a trajectory's main text or summary, or one path."""

    traj: _Traj
    segment: str
    block: int | None = None
    path: int | None = None
    row: int | None = None
    pending: list[int] = field(default_factory=list)  # tokens to feed before the next sample
    pos: int = 0  # position of pending[0]
    sampled: int = 0  # tokens sampled in this segment
    follows: _Stream | None = None  # copy that stream's row after its next sample, and sample from its logits
    closing: bool = False  # a structured path that has closed: its pending tokens are fed, nothing sampled
    buf: _Tokens | None = None  # a path's own tokens (None: the trajectory's layout)
    detok: _Detok | None = None
    active: bool = True


class RolloutEngine:
    """Samples trajectories from a model with the fork/join runtime (see the module docstring)."""

    def __init__(self, model, tokenizer, config: RolloutConfig | None = None):  # noqa: ANN001
        self.model, self.tokenizer = model, tokenizer
        self.config = config or RolloutConfig()
        self.tags = tag_token_ids(tokenizer)
        self.tag_ids = TagIds.from_tokenizer(tokenizer)
        eos = model.generation_config.eos_token_id if model.generation_config is not None else None
        eos = list(eos) if isinstance(eos, (list, tuple)) else [eos]
        self.eos_ids = frozenset(i for i in [tokenizer.eos_token_id, *eos] if i is not None)
        self.newline = tokenizer.encode("\n", add_special_tokens=False)
        self.decoder = RowDecoder(model, compile=self.config.compile)

    def close(self) -> None:
        """Free the decoding cache (the engines share this call: vLLM's frees its whole engine)."""
        self.decoder.release()

    def encode(self, prompt: Prompt) -> list[int]:
        """Token ids of a prompt: raw text as is, chat messages through the chat template (with the generation
        prompt), token ids unchanged."""
        if isinstance(prompt, str):
            text = prompt
        elif prompt and all(isinstance(x, int) for x in prompt):
            return list(prompt)  # type: ignore[arg-type]
        elif prompt and all(isinstance(m, dict) for m in prompt):
            text = self.tokenizer.apply_chat_template(
                list(prompt), add_generation_prompt=True, tokenize=False
            )
        else:
            raise Pr1Error("a prompt must be a string, a list of chat messages or a list of token ids")
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def generate(
        self,
        prompts: Sequence[Prompt],
        n: int = 1,
        *,
        on_event: Callable[[TokenEvent], None] | None = None,
        stop: threading.Event | None = None,
        on_done: Callable[[Trajectory], None] | None = None,
        logits_processor: LogitsProcessor | None = None,
        sample_keys: Sequence[int] | None = None,
    ) -> list[Trajectory]:
        """`n` trajectories per prompt, prompt-major. `on_done` gets each trajectory as it finishes;
        `logits_processor(contexts, logits)` may change what is sampled (not the reported log-probs);
        `sample_keys` (one int per prompt, default its index) key the randomness, so that a prompt draws
        the same samples whatever else is in the call."""
        if n < 1:
            raise Pr1Error(f"n={n}: expected at least 1 sample per prompt")
        if sample_keys is not None and len(sample_keys) != len(prompts):
            raise Pr1Error(f"{len(sample_keys)} sample keys for {len(prompts)} prompts")
        limit = self.config.max_prompt_tokens
        trajs = []
        for p, prompt in enumerate(prompts):
            ids = self.encode(prompt)
            if not ids:
                raise Pr1Error(f"prompt {p} is empty")
            key = sample_keys[p] if sample_keys is not None else p
            for s in range(n):
                trajs.append(_Traj(p * n + s, p, s, key & _MASK63, ids[-limit:], len(ids) > limit))
        if not trajs:
            return []
        # a trajectory's row carries its first path; each further path has a row while its block is open
        rows_per_traj = 1 if self.config.mode == "free" else max(1, self.config.num_paths)
        self.decoder.plan(
            rows=min(self.config.rollout_batch, len(trajs)) * rows_per_traj,
            tokens=max(len(t.prompt_ids) for t in trajs) + self.config.max_tokens + 1,
        )
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                _Generation(self, trajs, on_event, stop, on_done, logits_processor).run()
        finally:
            self.decoder.release()
            self.model.train(was_training)
        return [t.result for t in trajs]  # type: ignore[misc]


class _Generation:
    """The state of one `generate` call."""

    def __init__(
        self,
        engine: RolloutEngine,
        trajs: list[_Traj],
        on_event: Callable[[TokenEvent], None] | None,
        stop: threading.Event | None,
        on_done: Callable[[Trajectory], None] | None,
        processor: LogitsProcessor | None,
    ):
        self.e, self.cfg, self.decoder = engine, engine.config, engine.decoder
        self.on_event, self.stop, self.on_done, self.processor = on_event, stop, on_done, processor
        self.seed = self.cfg.seed & _MASK63 if self.cfg.seed is not None else secrets.randbits(63)
        self.trajs = trajs
        self.queue = deque(trajs)
        self.streams: list[_Stream] = []
        self.new: list[_Stream] = []
        self.live = 0

    def run(self) -> None:
        while self.queue or self.streams:
            if self.stop is not None and self.stop.is_set():
                for t in self.trajs:
                    self._finish(t, truncated=True)
                return
            self._admit()
            self._step()

    # ----------------------------------------------------------------------------------- scheduling

    def _admit(self) -> None:
        leaders: dict[int, _Stream] = {}
        while self.queue and self.live < self.cfg.rollout_batch:
            t = self.queue.popleft()
            t.started, self.live = True, self.live + 1
            if self.on_event is not None:
                t.detok = _Detok(self.e.tokenizer)
            if self.cfg.mode == "free":
                t.labels = _Labels(self.e.tags, self.e.newline)
            s = _Stream(t, "main", detok=t.detok)
            if t.prompt_index in leaders:
                s.follows = leaders[t.prompt_index]
            else:
                t.row = s.row = self.decoder.new_row()
                s.pending = list(t.prompt_ids)
                leaders[t.prompt_index] = s
            self.streams.append(s)

    def _step(self) -> None:
        fed: list[tuple[_Stream, list[int]]] = []
        for s in self.streams:
            if s.follows is None:
                take = 1 if len(s.pending) <= INLINE_FEED else len(s.pending)
                fed.append((s, s.pending[:take]))
                s.pending = s.pending[take:]
        logits = self.decoder.forward(
            [s.row for s, _ in fed],  # type: ignore[misc]
            [tokens for _, tokens in fed],
            [list(range(s.pos, s.pos + len(tokens))) for s, tokens in fed],
        )
        which: dict[_Stream, int] = {}  # stream -> its row in `logits`
        for i, (s, tokens) in enumerate(fed):
            s.pos += len(tokens)
            which[s] = i
        for s, _ in fed:
            if s.closing and not s.pending:
                s.active = False
                if not any(p.active for p in s.traj.paths):
                    self._join(s.traj)
        ready = [s for s, _ in fed if not s.pending and not s.closing]
        followers: dict[_Stream, list[_Stream]] = {s: [] for s in ready}
        for s in self.streams:
            if s.follows in followers:
                followers[s.follows].append(s)  # type: ignore[index]
        for leader, group in followers.items():
            rows = self.decoder.fork_row(leader.row, len(group))  # type: ignore[arg-type]
            for f, row in zip(group, rows, strict=True):
                f.row, f.pos, f.follows = row, leader.pos, None
                which[f] = which[leader]
                if f.segment == "main":
                    f.traj.row = row
            ready += group
        if ready:
            self._sample(ready, logits[torch.tensor([which[s] for s in ready], device=logits.device)])
        self.streams = [s for s in self.streams + self.new if s.active and not s.traj.finished]
        self.new = []

    def _sample(self, streams: list[_Stream], logits: torch.Tensor) -> None:
        processed = None
        if self.processor is not None:
            processed = self.processor([self._context(s) for s in streams], logits.clone())
        banned = [  # no <Parallel> where the engine would not fork (the module docstring)
            i
            for i, s in enumerate(streams)
            if self.cfg.mode != "free" and (s.segment != "main" or s.traj.blocks >= self.cfg.max_blocks)
        ]
        if banned:
            processed = logits.clone() if processed is None else processed
            processed[banned, self.e.tags["<Parallel>"]] = float("-inf")
        uniforms = [self._uniform(s) for s in streams]
        cfg = self.cfg
        tokens, logprobs = sample(
            logits,
            uniforms,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            top_k=cfg.top_k,
            processed=processed,
        )
        for s, token, logprob in zip(streams, tokens, logprobs, strict=True):
            if not s.traj.finished:
                self._on_token(s, token, logprob)

    def _context(self, s: _Stream) -> SampleContext:
        t = s.traj
        return SampleContext(
            t.index, t.prompt_index, t.sample_index, s.segment, s.block, s.path, s.sampled, t.count
        )

    def _uniform(self, s: _Stream) -> float:
        t = s.traj
        if s.buf is not None:
            return uniform(self.seed, t.key, t.sample_index, s.block, s.path, len(s.buf.ids))  # type: ignore[arg-type]
        return uniform(self.seed, t.key, t.sample_index, -1, -1, len(t.out.ids))

    # ---------------------------------------------------------------------------------- the runtime

    def _on_token(self, s: _Stream, token: int, logprob: float) -> None:
        t, eos, tags = s.traj, self.e.eos_ids, self.e.tags
        if s.segment == "path" and self.cfg.mode != "free":
            self._path_token(s, token, logprob)
        elif token in eos and s.segment == "summary" and self.cfg.mode != "free":
            # the reference runtime's repair: an inserted </Summary> closes the summary, the main text goes on
            close = tags["</Summary>"]
            if self._add(s, close, 0.0, True):
                s.pending = [close]
                s.segment, s.block, s.sampled = "main", None, 0
        elif token in eos:
            self._add(s, token, logprob, False)
            self._finish(t, truncated=False)
            return
        else:
            self._add(s, token, logprob, False)
            s.pending = [token]
            if self.cfg.mode == "free":
                segment, s.block, s.path = t.labels.where()  # type: ignore[union-attr]
                if segment != s.segment:
                    s.segment, s.sampled = segment, 0
            elif s.segment == "main" and token == tags["<Parallel>"] and t.blocks < self.cfg.max_blocks:
                self._fork(s)
            elif s.segment == "summary" and token == tags["</Summary>"]:
                s.segment, s.block, s.sampled = "main", None, 0
        if not t.finished and t.count >= self.cfg.max_tokens:
            self._finish(t, truncated=True)

    def _fork(self, main: _Stream) -> None:
        t, tags = main.traj, self.e.tags
        block = t.blocks
        t.blocks += 1
        main.active = False
        for i in range(self.cfg.num_paths):
            path = _Stream(t, "path", block, i, buf=_Tokens())
            if self.on_event is not None:
                path.detok = _Detok(self.e.tokenizer)
            if i == 0:  # path 0 decodes on the main row
                path.row, path.pending, path.pos = main.row, main.pending + [tags["<Path>"]], main.pos
            else:
                path.follows = t.paths[0]
            t.paths.append(path)
            self.new.append(path)
        for path in t.paths:
            if not self._add(path, tags["<Path>"], 0.0, True):
                self._finish(t, truncated=True)
                return

    def _path_token(self, s: _Stream, token: int, logprob: float) -> None:
        close = self.e.tags["</Path>"]
        if token in self.e.eos_ids:
            self._add(s, close, 0.0, True)
        else:
            self._add(s, token, logprob, False)
        s.pending = [s.buf.ids[-1]]  # type: ignore[union-attr]
        if s.buf.ids[-1] != close and s.sampled >= self.cfg.max_path_tokens:  # type: ignore[union-attr]
            if not self._add(s, close, 0.0, True):
                return  # out of budget: _on_token ends the trajectory
            s.pending.append(close)
        if s.buf.ids[-1] == close:  # type: ignore[union-attr]
            if self.cfg.mode == "structured":
                s.closing = True  # joins once its row holds all its tokens (`_step`)
                return
            s.active = False
            if not any(p.active for p in s.traj.paths):
                self._join(s.traj)

    def _join(self, t: _Traj) -> None:
        tags = self.e.tags
        first = t.paths[0]
        for path in t.paths:
            t.out.extend(path.buf)  # type: ignore[arg-type]
        if self.cfg.mode == "structured":  # merge: every path is cached on its row, at its own positions
            sources = [(p.row, len(p.buf.ids)) for p in t.paths[1:]]  # type: ignore[union-attr]
            self.decoder.append_rows(t.row, sources)  # type: ignore[arg-type]
            feed, pos = [], max(p.pos for p in t.paths)
        else:  # lay the paths out causally: path 2… are read again after path 1
            feed, pos = list(first.pending), first.pos
            for path in t.paths[1:]:
                feed += path.buf.ids  # type: ignore[union-attr]
        for path in t.paths[1:]:
            self.decoder.free_row(path.row)  # type: ignore[arg-type]
        summary = _Stream(t, "summary", first.block, row=t.row, pos=pos, detok=t.detok)
        t.paths = []
        self.new.append(summary)
        inserted = [tags["</Parallel>"], *self.e.newline, tags["<Summary>"]]
        for token in inserted:
            if not self._add(summary, token, 0.0, True):
                self._finish(t, truncated=True)
                return
        summary.pending = feed + inserted

    def _add(self, s: _Stream, token: int, logprob: float, inserted: bool) -> bool:
        """Append a token to the stream's buffer (False when the budget is spent) and report it."""
        t = s.traj
        if t.count >= self.cfg.max_tokens:
            return False
        (s.buf if s.buf is not None else t.out).add(token, logprob, inserted)
        t.count += 1
        s.sampled += not inserted
        if t.labels is not None:
            segment, block, path = t.labels(token)
        else:
            segment, block, path = s.segment, s.block, s.path
        if self.on_event is not None:
            text = s.detok.flush() if token in self.e.eos_ids else s.detok.add(token)  # type: ignore[union-attr]
            self.on_event(TokenEvent(t.index, segment, block, path, token, text, inserted))
        return True

    def _finish(self, t: _Traj, truncated: bool) -> None:
        if t.finished:
            return
        t.finished = True
        if t.started:
            self.live -= 1
        kept = t.paths
        if self.cfg.mode == "structured" and truncated:
            # an unclosed path must come last, or `build_structure` reads the paths after it as part of it
            # (and scores them off-policy): closed paths first, then one unclosed path; the rest is dropped
            kept = [p for p in t.paths if p.closing] + [p for p in t.paths if not p.closing][:1]
        for path in t.paths:
            if path in kept:
                t.out.extend(path.buf)  # type: ignore[arg-type]
            if path.row is not None and path.row != t.row:
                self.decoder.free_row(path.row)
            self._flush(t, path.detok, "path", path.block, path.path)
        if t.row is not None:
            self.decoder.free_row(t.row)
        self._flush(t, t.detok, "main", None, None)
        if self.on_event is not None:
            self.on_event(TokenEvent(t.index, "main", None, None, -1, "", False, done=True))
        t.result = self._trajectory(t, truncated)
        if self.on_done is not None:
            self.on_done(t.result)

    def _flush(
        self, t: _Traj, detok: _Detok | None, segment: str, block: int | None, path: int | None
    ) -> None:
        text = detok.flush() if detok is not None else ""
        if text and self.on_event is not None:
            self.on_event(TokenEvent(t.index, segment, block, path, -1, text, False))

    def _trajectory(self, t: _Traj, truncated: bool) -> Trajectory:
        ids = t.out.ids
        text_ids = ids[:-1] if ids and ids[-1] in self.e.eos_ids else ids
        positions = build_structure(ids, self.e.tag_ids).position_ids
        opening = self.e.tags["<Parallel>"]
        return Trajectory(
            prompt_ids=t.prompt_ids,
            completion_ids=ids,
            logprobs=t.out.logprobs,
            inserted=t.out.inserted,
            text=self.e.tokenizer.decode(text_ids, skip_special_tokens=False),
            generated_tokens=len(ids) - sum(t.out.inserted),
            critical_path_tokens=max(positions) + 1 if positions else 0,
            parallel_positions=[i / len(ids) for i, tok in enumerate(ids) if tok == opening],
            truncated=truncated,
            prompt_index=t.prompt_index,
            sample_index=t.sample_index,
            prompt_truncated=t.prompt_truncated,
        )
