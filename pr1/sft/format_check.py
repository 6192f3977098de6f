"""The quick format check after SFT: greedy `generate` on a few held-out problems in free mode (the model
writes its own tags, plain causal decoding), scored with `pr1.score`.

A trace without any tag passes the format rules, so a base model that never opens a block scores 100% "format
valid"; what SFT is meant to teach shows in `parallel_valid_rate` (valid and at least one block).
"""

from __future__ import annotations

from typing import Any

import torch

from pr1.prompts import build_messages
from pr1.score import score_completion


def generate_completions(
    model: Any,
    tokenizer: Any,
    prompts: list[list[dict[str, str]]],
    *,
    max_new_tokens: int,
    batch_size: int = 8,
) -> list[tuple[str, int, bool]]:
    """(text with the tags written literally, generated tokens, finished with an end-of-turn token) per prompt.
    Greedy, left-padded batches; `model` must already be in eval mode."""
    eos = _eos_ids(model, tokenizer)
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    out: list[tuple[str, int, bool]] = []
    device = next(model.parameters()).device
    try:
        for start in range(0, len(prompts), batch_size):
            texts = [
                tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False)
                for p in prompts[start : start + batch_size]
            ]
            enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            with torch.no_grad():
                gen = model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    eos_token_id=eos,
                    pad_token_id=tokenizer.pad_token_id,
                )
            for row in gen[:, enc["input_ids"].shape[1] :].tolist():
                out.append(decode_completion(row, tokenizer, eos))
    finally:
        tokenizer.padding_side = side
    return out


def decode_completion(ids: list[int], tokenizer: Any, eos: list[int]) -> tuple[str, int, bool]:
    """Cut at the first end-of-turn id and decode keeping special tokens: the tags are special tokens, and
    `skip_special_tokens=True` would drop them."""
    end = next((i for i, t in enumerate(ids) if t in eos), None)
    kept = ids if end is None else ids[:end]
    return tokenizer.decode(kept, skip_special_tokens=False), len(kept), end is not None


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    ids = model.generation_config.eos_token_id
    ids = [] if ids is None else [ids] if isinstance(ids, int) else list(ids)
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def format_check(
    model: Any,
    tokenizer: Any,
    problems: list[dict[str, Any]],
    *,
    template: str,
    max_new_tokens: int,
    batch_size: int = 8,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(summary, rows): format-valid, parallel and parallel-and-valid rates, accuracy, how many finished before
    `max_new_tokens`, mean generated tokens; one `pr1 score` record per problem (with problem and completion)."""
    prompts = [build_messages(p["problem"], template) for p in problems]
    generated = generate_completions(
        model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size
    )
    rows = []
    for problem, (text, tokens, finished) in zip(problems, generated, strict=True):
        record = score_completion(text, problem["answer"])
        rows.append(
            {
                "id": problem["id"],
                "sample": 0,
                "problem": problem["problem"],
                "answer": problem["answer"],
                "completion": text,
                **record,
                "tokens": tokens,
                "truncated": not finished,
            }
        )
    return summarise_check(rows), rows


def summarise_check(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)

    def rate(pred: Any) -> float:
        return sum(1 for r in rows if pred(r)) / n if n else 0.0

    return {
        "n": n,
        "format_valid_rate": rate(lambda r: r["format_valid"]),
        "parallel_ratio": rate(lambda r: r["parallel"]),
        "parallel_valid_rate": rate(lambda r: r["parallel"] and r["format_valid"]),
        "accuracy": rate(lambda r: r["correct"]),
        "finished_rate": rate(lambda r: not r["truncated"]),
        "tokens_mean": sum(r["tokens"] for r in rows) / n if n else 0.0,
    }


def check_base_model(
    model: str,
    problems: list[dict[str, Any]],
    *,
    template: str,
    max_new_tokens: int,
    trust_remote_code: bool = False,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The same check on a base model (tags added, untrained), to show what SFT changed."""
    from pr1.models import load_model

    base, tokenizer = load_model(model, trust_remote_code=trust_remote_code)
    base.eval()
    return format_check(base, tokenizer, problems, template=template, max_new_tokens=max_new_tokens)
