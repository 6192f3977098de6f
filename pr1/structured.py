"""Path-window attention and multiverse positions for the structured variant (METHOD.md §6).

One builder serves SFT, RL scoring and structured decoding, so all three see the same structure.

Positions: if `<Parallel>` sits at position c, every path of the block (its `<Path>` … `</Path>`
inclusive) starts at c+1, so sibling paths overlap; `</Parallel>` sits at c + max(L_i) + 1, and the text
after it continues from there. Text between `<Parallel>` and the first `<Path>` is shared by all paths
(they start after it); text between two paths counts as the tail of the path before it.

Mask: causal, except that a token of a path never attends to a token of a sibling path. `</Parallel>`,
the summary and everything later attend to every earlier token, all paths included.

A `<Parallel>` opens a block only in main text, as the rollout engine reads a trace (it forks nowhere else)
and as `pr1.format.validate` does: inside a path or a summary (the `<Summary>` that follows a block,
tag-wise, up to its `</Summary>`) it is an ordinary token.

The prompt (the first `prompt_len` tokens) is never structured: tags an instruction mentions are not a
block, its positions stay contiguous and its attention plainly causal.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass

import torch

from pr1.format import TAGS


@dataclass(frozen=True)
class TagIds:
    """Token ids of the six tags, in the order of `pr1.format.TAGS`."""

    parallel_open: int
    parallel_close: int
    path_open: int
    path_close: int
    summary_open: int
    summary_close: int

    @classmethod
    def from_tokenizer(cls, tokenizer) -> TagIds:  # noqa: ANN001
        ids = [tokenizer.convert_tokens_to_ids(t) for t in TAGS]
        if any(i is None or i == tokenizer.unk_token_id for i in ids):
            raise ValueError("the tokenizer has no tag tokens: load the model with pr1.models.load_model")
        return cls(*ids)


@dataclass
class Structure:
    """Per-token structure of one sequence: positions, and for tokens inside a path, which block and path."""

    position_ids: list[int]
    block: list[int]  # block number (>= 0) for tokens inside a path, else -1
    path: list[int]  # path number within its block for tokens inside a path, else -1


def build_structure(ids: list[int], tags: TagIds, prompt_len: int = 0) -> Structure:
    """Positions and path membership of a prompt + completion token sequence. Malformed tags (nested or
    stray) are read leniently: a tag that does not fit where it stands is an ordinary token."""
    tag_ids = set(astuple(tags))
    n = len(ids)
    pos, block, path = list(range(min(prompt_len, n))), [-1] * n, [-1] * n
    p = prompt_len  # next position
    in_block = in_path = False
    block_no = -1
    path_no = -1
    path_start = 0  # position where each path of the current block starts
    block_end = 0  # max position reached by any path of the block
    due = False  # a block has just closed: its summary opens if the next tag is <Summary>
    in_summary = False
    for i in range(prompt_len, n):
        t = ids[i]
        if not in_block:
            pos.append(p)
            p += 1
            if in_summary:  # ordinary tokens up to its </Summary>
                in_summary = t != tags.summary_close
            elif t in tag_ids:
                if due and t == tags.summary_open:
                    in_summary = True
                elif t == tags.parallel_open:
                    in_block, block_no, path_no = True, block_no + 1, -1
                    path_start = block_end = p
                due = False
            continue
        if t == tags.path_open and not in_path:
            in_path, path_no, p = True, path_no + 1, path_start
        elif t == tags.parallel_close and not in_path:
            in_block, path_start, due = False, 0, True
            p = max(p, block_end)
            pos.append(p)
            p += 1
            continue
        if path_no < 0:  # shared text before the first path: every path starts after it
            path_start = block_end = p + 1
        else:
            block[i], path[i] = block_no, path_no
        pos.append(p)
        p += 1
        block_end = max(block_end, p)
        if t == tags.path_close and in_path:
            in_path = False
    return Structure(pos, block, path)


def allowed_mask(structure: Structure) -> torch.Tensor:
    """Boolean [L, L] matrix: entry (i, j) is True where token i may attend to token j."""
    n = len(structure.position_ids)
    causal = torch.ones(n, n, dtype=torch.bool).tril()
    b = torch.tensor(structure.block)
    p = torch.tensor(structure.path)
    in_path = b >= 0
    sibling = (b[:, None] == b[None, :]) & (p[:, None] != p[None, :]) & in_path[:, None] & in_path[None, :]
    return causal & ~sibling


def batch_inputs(
    sequences: list[list[int]],
    prompt_lens: list[int],
    tags: TagIds,
    *,
    pad_id: int,
    dtype: torch.dtype = torch.float32,
    structured: bool = True,
) -> dict[str, torch.Tensor]:
    """Right-padded `input_ids`, `position_ids` and a 4D additive `attention_mask` [B, 1, L, L] for a
    forward pass (transformers uses a 4D mask as given). `structured=False` gives the causal variant
    with the same shapes, for comparisons."""
    L = max(len(s) for s in sequences)
    B = len(sequences)
    input_ids = torch.full((B, L), pad_id, dtype=torch.long)
    position_ids = torch.zeros(B, L, dtype=torch.long)
    allowed = torch.zeros(B, 1, L, L, dtype=torch.bool)
    for k, (seq, plen) in enumerate(zip(sequences, prompt_lens, strict=True)):
        n = len(seq)
        st = build_structure(seq, tags, plen) if structured else Structure(list(range(n)), [-1] * n, [-1] * n)
        input_ids[k, :n] = torch.tensor(seq)
        position_ids[k, :n] = torch.tensor(st.position_ids)
        allowed[k, 0, :n, :n] = allowed_mask(st)
        allowed[k, 0, n:, 0] = True  # padding rows attend somewhere, so softmax stays finite
    mask = torch.zeros(B, 1, L, L, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
    return {"input_ids": input_ids, "position_ids": position_ids, "attention_mask": mask}
