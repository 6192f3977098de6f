"""SFT data: reading the three row shapes pr1 meets, tokenizing with the completion-only loss mask, and the
structured variant's collator.

Row shapes (JSON Lines):
- TRL's conversational prompt-completion rows that `pr1 data build` writes:
  `{"id", "prompt": [{"role": "user", "content": ...}], "completion": [{"role": "assistant", "content": TRACE}]}`
  (plain strings for `prompt` / `completion` are read as one user / one assistant turn);
- `problem` + `trace` (what `pr1 data generate` keeps) and `problem` + `solution` (the shared 341-row sample):
  the prompt is built from the problem with pr1's instruction template (`--prompt-file` overrides it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pr1.datasets import REGISTRY, data_dir
from pr1.errors import Pr1Error
from pr1.jsonl import iter_jsonl
from pr1.prompts import build_messages
from pr1.structured import TagIds, batch_inputs

IGNORE = -100  # label of a token that is not trained on


def resolve_data_path(name_or_path: str) -> Path:
    """A local JSON Lines file, or a registry name found in `$PR1_DATA_DIR` (e.g. `parallel-gsm8k-sample`)."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    spec = REGISTRY.get(name_or_path)
    if spec is not None and data_dir() is not None:
        for file in spec.files:
            if (data_dir() / file).is_file():
                return data_dir() / file
    if spec is not None:
        raise Pr1Error(f"--data {name_or_path}: set PR1_DATA_DIR to a folder holding {spec.files[-1]}")
    raise Pr1Error(f"--data {name_or_path}: no such file (expected a .jsonl file or a dataset name)")


def load_sft_rows(name_or_path: str, template: str) -> list[dict[str, Any]]:
    """Rows `{"id", "prompt": [messages], "completion": [messages]}` from any of the accepted shapes."""
    path = resolve_data_path(name_or_path)
    rows = [_to_conversation(row, template, f"{path}:{lineno}") for lineno, row in iter_jsonl(path)]
    if not rows:
        raise Pr1Error(f"{path}: no rows")
    return rows


def _to_conversation(row: dict[str, Any], template: str, where: str) -> dict[str, Any]:
    row_id = str(row.get("id", where.rsplit(":", 1)[1]))
    if "completion" in row:
        prompt = _messages(row.get("prompt"), "user", "prompt", where)
        completion = _messages(row["completion"], "assistant", "completion", where)
        if completion[-1]["role"] != "assistant":
            raise Pr1Error(f"{where}: 'completion' must end with an assistant message")
        return {"id": row_id, "prompt": prompt, "completion": completion}
    trace = next((row[k] for k in ("trace", "solution") if k in row), None)
    if "problem" not in row or trace is None:
        raise Pr1Error(
            f"{where}: expected 'prompt' + 'completion', 'problem' + 'trace' or 'problem' + 'solution' "
            f"(got keys {', '.join(sorted(row)) or 'none'})"
        )
    if not isinstance(row["problem"], str) or not row["problem"].strip():
        raise Pr1Error(f"{where}: 'problem' must be a non-empty string")
    if not isinstance(trace, str) or not trace.strip():
        raise Pr1Error(f"{where}: the trace must be a non-empty string")
    completion = [{"role": "assistant", "content": trace}]
    return {"id": row_id, "prompt": build_messages(row["problem"], template), "completion": completion}


def _messages(value: Any, role: str, key: str, where: str) -> list[dict[str, str]]:
    if isinstance(value, str) and value.strip():
        return [{"role": role, "content": value}]
    ok = (
        isinstance(value, list)
        and value
        and all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in value
        )
    )
    if not ok:
        raise Pr1Error(f"{where}: {key!r} must be a non-empty string or a list of {{role, content}} messages")
    return [{"role": m["role"], "content": m["content"]} for m in value]


def encode(row: dict[str, Any], tokenizer: Any) -> tuple[list[int], list[int]]:
    """(input_ids, labels) of prompt + completion through the chat template; prompt labels are IGNORE, the
    completion's are its token ids (the end-of-turn token included, so the model learns to stop)."""
    prompt_ids = _chat_ids(tokenizer, row["prompt"], add_generation_prompt=True)
    ids = _chat_ids(tokenizer, row["prompt"] + row["completion"], add_generation_prompt=False)
    # Templates render the prompt alone as a prefix of the whole conversation; if one does not, the
    # completion starts where the two diverge (as TRL does).
    n = 0
    while n < min(len(prompt_ids), len(ids)) and prompt_ids[n] == ids[n]:
        n += 1
    return ids, [IGNORE] * n + ids[n:]


def _chat_ids(tokenizer: Any, messages: list[dict[str, str]], *, add_generation_prompt: bool) -> list[int]:
    out = tokenizer.apply_chat_template(
        messages, add_generation_prompt=add_generation_prompt, tokenize=True, return_dict=True
    )
    return list(out["input_ids"])


def build_dataset(rows: list[dict[str, Any]], tokenizer: Any, max_length: int) -> tuple[Any, int]:
    """A `datasets.Dataset` of `input_ids` + `labels`, and how many rows were dropped for being longer than
    `max_length` (the paper keeps a trace only if prompt + trace fit; a cut trace would teach unfinished blocks)."""
    from datasets import Dataset

    kept: dict[str, list] = {"input_ids": [], "labels": []}
    for row in rows:
        ids, labels = encode(row, tokenizer)
        if len(ids) <= max_length and any(label != IGNORE for label in labels):
            kept["input_ids"].append(ids)
            kept["labels"].append(labels)
    dropped = len(rows) - len(kept["input_ids"])
    if not kept["input_ids"]:
        raise Pr1Error(f"--max-length {max_length}: no row fits (prompt + trace tokens); raise --max-length")
    return Dataset.from_dict(kept), dropped


def prompt_length(labels: list[int]) -> int:
    """Tokens before the first trained one: the prompt (completion labels are never IGNORE)."""
    return next((i for i, label in enumerate(labels) if label != IGNORE), len(labels))


@dataclass
class StructuredCollator:
    """Batches for the structured variant: right-padded input_ids and labels, multiverse `position_ids` and a
    4D additive path-window `attention_mask`, from `pr1.structured.batch_inputs`. The prompt (everything before
    the first trained label) stays plainly causal, so tags that an instruction mentions are not a block."""

    tags: TagIds
    pad_id: int
    dtype: torch.dtype = torch.float32  # the model's compute dtype: SDPA wants the mask in it

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        seqs = [list(e["input_ids"]) for e in examples]
        labels = [list(e["labels"]) for e in examples]
        batch = batch_inputs(
            seqs, [prompt_length(lab) for lab in labels], self.tags, pad_id=self.pad_id, dtype=self.dtype
        )
        padded = torch.full_like(batch["input_ids"], IGNORE)
        for k, lab in enumerate(labels):
            padded[k, : len(lab)] = torch.tensor(lab)
        batch["labels"] = padded
        return batch


def count_tokens(inputs: dict[str, torch.Tensor]) -> int:
    """Real (non-padding) tokens of a collated batch, for a 2D padding mask or a 4D additive mask (where a
    real token is one that may attend to itself)."""
    mask = inputs.get("attention_mask")
    if mask is None:
        return int(inputs["input_ids"].numel())
    if mask.dim() == 4:
        return int((mask.diagonal(dim1=-2, dim2=-1) == 0).sum())
    return int(mask.sum())
