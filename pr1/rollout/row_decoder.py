"""Batched decoding for transformers causal LMs, with a KV cache addressed by row.

Every sequence being decoded owns a *row*: its keys and values in per-layer tensors
[slots, kv_heads, capacity, head_dim] that grow as needed. A forward feeds each row a few tokens at
explicit positions; their keys land right after the row's cached tokens, and the attention mask lets each
token see exactly its own row's cache (causally). Forking a sequence copies its row, so a shared prefix is
never prefilled twice. Before a forward its rows are swapped into consecutive slots, so attention reads a
view of the cache instead of gathering a copy at every step.

Attention runs through `rows_attention`, registered with transformers' attention interface and switched on
only for the duration of a forward: it is sdpa with the query heads grouped under their key/value head, so
grouped-query models attend to the cached keys without `repeat_kv` copying them (10x faster on CPU).

Works for decoder-only models whose attention goes through that interface (Llama, Qwen2/3, Mistral-style);
sliding-window, soft-capped and sink attention are refused.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import AttentionInterface, PreTrainedModel

from pr1.errors import Pr1Error

ATTENTION_NAME = "pr1_rows"
_UNSUPPORTED = ("sliding_window", "softcap", "s_aux")


def rows_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: object,
) -> tuple[torch.Tensor, None]:
    """sdpa over [A, kv_heads, group*T, D] queries; `attention_mask` is additive, [A, 1, T, L]."""
    for name in _UNSUPPORTED:
        if kwargs.get(name) is not None:
            raise Pr1Error(
                f"the rollout engine's KV-row decoder does not support attention with {name} (this model uses it)"
            )
    a, h, t, d = query.shape
    kv_heads = key.shape[1]
    group = h // kv_heads
    q = query.reshape(a, kv_heads, group * t, d)
    mask = (
        attention_mask.expand(a, 1, group, key.shape[2]) if t == 1 else attention_mask.repeat(1, 1, group, 1)
    )
    out = torch.nn.functional.scaled_dot_product_attention(
        q, key.to(q.dtype), value.to(q.dtype), attn_mask=mask.to(q.dtype), scale=scaling
    )
    return out.reshape(a, h, t, d).transpose(1, 2).contiguous(), None


AttentionInterface.register(ATTENTION_NAME, rows_attention)


class _RowCache:
    """What the model's attention layers see as `past_key_values` during one forward: writes the new keys
    and values at per-row cache indices, returns each layer's cache view for these rows."""

    def __init__(self, decoder: RowDecoder, start: int, stop: int, index: torch.Tensor, key_len: int):
        self.decoder, self.start, self.stop, self.key_len = decoder, start, stop, key_len
        self.index = index  # [A, 1, T, 1]: cache index of each fed token

    def update(
        self,
        key_states: torch.Tensor,
        value_states: torch.Tensor,
        layer_idx: int,
        *args: object,
        **kwargs: object,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        k = self.decoder.keys[layer_idx][self.start : self.stop]
        v = self.decoder.values[layer_idx][self.start : self.stop]
        index = self.index.expand(key_states.shape)
        k.scatter_(2, index, key_states.to(k.dtype))
        v.scatter_(2, index, value_states.to(v.dtype))
        return k[:, :, : self.key_len], v[:, :, : self.key_len]


class RowDecoder:
    """The KV-row decoder of the hf rollout engine: a transformers model over a cache of rows.

    The engine's whole view of the model is this interface:
    `plan`, `new_row`, `fork_row`, `free_row`, `length`, `append_rows`, `forward(rows, tokens, positions)` and
    `release`.
    """

    def __init__(self, model: PreTrainedModel, *, compile: bool = False, prefill_tokens: int = 8192):
        self.model = model
        self.prefill_tokens = prefill_tokens
        cfg = model.config.get_text_config()
        self.n_layers = cfg.num_hidden_layers
        self.kv_heads = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        embeddings = model.get_input_embeddings().weight  # its dtype is the one keys and values come in
        self.device, self.dtype = embeddings.device, embeddings.dtype
        self._forward = torch.compile(model, dynamic=True) if compile else model
        self.release()

    # ------------------------------------------------------------------------------------------ rows

    def release(self) -> None:
        """Free every row and the cache memory."""
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.slots = 0  # allocated slots
        self.capacity = 0  # allocated tokens per slot
        self._slot: dict[int, int] = {}  # row -> slot
        self._row_at: list[int | None] = []  # slot -> row
        self._len: dict[int, int] = {}  # row -> cached tokens
        self._next_row = 0
        self.max_rows: int | None = None  # the most rows live at once, when the engine has said (`plan`)

    def plan(self, rows: int, tokens: int) -> None:
        """Size hints for the next rows: at most `rows` live at once, none longer than `tokens`. Slots then
        grow no further than `rows`, and are allocated `tokens` long from the start: no reallocation as rows
        lengthen, no room over-reserved by growing in steps, and an out-of-memory error when decoding starts
        rather than hours in. Rows that outgrow the hints still get room."""
        self.max_rows = rows
        tokens = (tokens + 63) & ~63
        if not self.keys:
            self.capacity = max(self.capacity, tokens)
        elif tokens > self.capacity:
            self._grow(self.slots, tokens)

    def new_row(self) -> int:
        """A new, empty row."""
        if None not in self._row_at:
            slots = max(4, 2 * self.slots)
            if self.max_rows is not None:
                slots = max(self.slots + 1, min(slots, self.max_rows))
            self._grow(slots, self.capacity)
        slot = self._row_at.index(None)
        row = self._next_row
        self._next_row += 1
        self._slot[row], self._row_at[slot], self._len[row] = slot, row, 0
        return row

    def fork_row(self, src: int, n: int) -> list[int]:
        """`n` new rows holding a copy of row `src`'s cache."""
        rows = [self.new_row() for _ in range(n)]
        length = self._len[src]
        if n and length:
            dst = torch.tensor([self._slot[r] for r in rows], device=self.device)
            s = self._slot[src]
            for cache in (*self.keys, *self.values):
                # a slice spanning the whole slot aliases `cache` itself: index_put refuses that without a copy
                cache[dst, :, :length] = cache[s, :, :length].clone()
        for r in rows:
            self._len[r] = length
        return rows

    def append_rows(self, dst: int, sources: Sequence[tuple[int, int]]) -> None:
        """Append the last `n` cached tokens of each `(row, n)` in `sources`, in order, to row `dst`'s cache.
        Keys are stored after rotary embedding, so each keeps the position it was computed at."""
        self._reserve(self._len[dst] + sum(n for _, n in sources))
        d = self._slot[dst]
        for row, n in sources:
            s, end, start = self._slot[row], self._len[row], self._len[dst]
            for cache in (*self.keys, *self.values):
                cache[d, :, start : start + n] = cache[s, :, end - n : end]
            self._len[dst] = start + n

    def free_row(self, row: int) -> None:
        self._row_at[self._slot.pop(row)] = None
        del self._len[row]

    def length(self, row: int) -> int:
        """Tokens cached for `row`."""
        return self._len[row]

    def _grow(self, slots: int, capacity: int) -> None:
        """Reallocate the cache as `slots` x `capacity`, one layer at a time: each old layer is freed before
        the next new one is allocated, so growing needs one layer's room on top of the cache, not a second
        cache. Running out of GPU memory is a Pr1Error that says what was asked for and what to lower."""
        shape = (slots, self.kv_heads, capacity, self.head_dim)
        try:
            if not self.keys:
                self.keys = [self._zeros(shape) for _ in range(self.n_layers)]
                self.values = [self._zeros(shape) for _ in range(self.n_layers)]
            else:
                for cache in (self.keys, self.values):
                    for i, old in enumerate(cache):
                        cache[i] = self._resized(old, slots, capacity)
                        del old
        except torch.OutOfMemoryError:
            self.release()
            size = 2 * self.n_layers * slots * capacity * self.kv_heads * self.head_dim * self.dtype.itemsize
            raise Pr1Error(
                f"the rollout's KV cache ({slots} rows x {capacity} tokens = {size / 2**30:.1f} GiB) does not fit "
                "in GPU memory: decode fewer trajectories at once (pr1 eval --batch-size, pr1 rl --rollout-batch) "
                "or shorten --max-tokens"
            ) from None
        self._row_at += [None] * (slots - self.slots)
        self.slots, self.capacity = slots, capacity

    def _zeros(self, shape: tuple[int, ...]) -> torch.Tensor:
        # zeros, not empty: masked-out keys get weight 0, and 0 * NaN garbage would still be NaN
        return torch.zeros(shape, dtype=self.dtype, device=self.device)

    def _reserve(self, need: int) -> None:
        """Room for `need` tokens per slot."""
        if need > self.capacity:
            self._grow(self.slots, (max(need, self.capacity + self.capacity // 2) + 63) & ~63)

    def _resized(self, t: torch.Tensor, slots: int, capacity: int) -> torch.Tensor:
        out = self._zeros((slots, self.kv_heads, capacity, self.head_dim))
        out[: self.slots, :, : self.capacity] = t
        return out

    def _place(self, rows: Sequence[int], start: int) -> None:
        """Swap `rows` into the slots start .. start+len(rows)-1 (any order), moving as few rows as possible."""
        stop = start + len(rows)
        outside = [r for r in rows if not start <= self._slot[r] < stop]
        wanted = set(rows)
        free = [s for s in range(start, stop) if self._row_at[s] not in wanted]
        for row, slot in zip(outside, free, strict=True):
            self._swap(self._slot[row], slot)

    def _swap(self, a: int, b: int) -> None:
        ra, rb = self._row_at[a], self._row_at[b]
        n = max(self._len.get(ra, 0) if ra is not None else 0, self._len.get(rb, 0) if rb is not None else 0)
        if n:
            src = torch.tensor([b, a], device=self.device)
            dst = torch.tensor([a, b], device=self.device)
            for cache in (*self.keys, *self.values):
                cache[dst, :, :n] = cache[src, :, :n]
        self._row_at[a], self._row_at[b] = rb, ra
        for row, slot in ((ra, b), (rb, a)):
            if row is not None:
                self._slot[row] = slot

    # --------------------------------------------------------------------------------------- forward

    @torch.inference_mode()
    def forward(
        self, rows: Sequence[int], tokens: Sequence[Sequence[int]], positions: Sequence[Sequence[int]]
    ) -> torch.Tensor:
        """Feed each row its tokens (at the given positions, after its cached tokens) and return the float32
        logits after each row's last token, [len(rows), vocab]. Rows fed one token share one forward; rows
        fed several (prefill) go in further forwards of at most `prefill_tokens` padded tokens each."""
        self._reserve(max(self._len[row] + len(t) for row, t in zip(rows, tokens, strict=True)))
        singles = [i for i, t in enumerate(tokens) if len(t) == 1]
        multi = sorted((i for i, t in enumerate(tokens) if len(t) > 1), key=lambda i: -len(tokens[i]))
        groups = [singles] if singles else []
        while multi:  # longest first, so that each chunk pads little
            width, group, rest = len(tokens[multi[0]]), [multi[0]], []
            for i in multi[1:]:
                # a row padded to `width` writes its padding past its end: only where its slot has room
                room = self._len[rows[i]] + width <= self.capacity
                (group if room and (len(group) + 1) * width <= self.prefill_tokens else rest).append(i)
            groups.append(group)
            multi = rest
        chunks, order = [], []
        start = 0
        for group in groups:
            self._place([rows[i] for i in group], start)
            group.sort(key=lambda i: self._slot[rows[i]])  # batch row k <-> slot start + k
            chunks.append(self._forward_group(start, [rows[i] for i in group], [tokens[i] for i in group],
                                              [positions[i] for i in group]))  # fmt: skip
            order += group
            start += len(group)
        logits = chunks[0] if len(chunks) == 1 else torch.cat(chunks)
        if order == sorted(order):
            return logits
        inverse = [0] * len(order)
        for k, i in enumerate(order):
            inverse[i] = k
        return logits[torch.tensor(inverse, device=logits.device)]

    def _forward_group(
        self, start: int, rows: list[int], tokens: list[Sequence[int]], positions: list[Sequence[int]]
    ) -> torch.Tensor:
        """One forward of the rows in slots start, start+1, ... (in that order). Left-padded: the last column
        is every row's last token. A padding column writes its keys past the row's end, where no later token
        looks, and attends only to cache index 0."""
        t_max = max(len(t) for t in tokens)
        ids, pos, index, limit = [], [], [], []
        for row, toks, posns in zip(rows, tokens, positions, strict=True):
            n, length, pad = len(toks), self._len[row], t_max - len(toks)
            ids.append([0] * pad + list(toks))
            pos.append([0] * pad + list(posns))
            index.append([length + n + c for c in range(pad)] + [length + k for k in range(n)])
            limit.append([0] * pad + [length + k for k in range(n)])
            self._len[row] = length + n
        key_len = max(self._len[r] for r in rows)
        dev = self.device
        limit_t = torch.tensor(limit, device=dev)
        allowed = torch.arange(key_len, device=dev)[None, None, :] <= limit_t[:, :, None]
        mask = torch.zeros(allowed.shape, dtype=self.dtype, device=dev)
        mask.masked_fill_(~allowed, torch.finfo(self.dtype).min)
        cache = _RowCache(
            self, start, start + len(rows), torch.tensor(index, device=dev)[:, None, :, None], key_len
        )
        config = self.model.config
        previous = config._attn_implementation
        config._attn_implementation = ATTENTION_NAME
        try:
            out = self._forward(
                input_ids=torch.tensor(ids, device=dev),
                position_ids=torch.tensor(pos, device=dev),
                attention_mask=mask[:, None],
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
            )
        finally:
            config._attn_implementation = previous
        return out.logits[:, -1].float()
