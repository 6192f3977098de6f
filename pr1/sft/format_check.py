"""The quick format check after SFT: greedy decoding with the rollout engine in free mode (the model writes
its own tags, plain causal decoding) on a few held-out problems, scored with `pr1.score`.

A trace without any tag passes the format rules, so a base model that never opens a block scores 100% "format
valid"; what SFT is meant to teach shows in `parallel_valid_rate` (valid and at least one block).
"""

from __future__ import annotations

from typing import Any

from pr1.prompts import build_messages
from pr1.rollout import RolloutConfig, RolloutEngine
from pr1.score import score_completion


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
    `max_new_tokens`, mean generated tokens; one `pr1 score` record per problem (with problem and completion).
    Greedy (temperature 0), `batch_size` problems decoded at once."""
    config = RolloutConfig(mode="free", temperature=0.0, max_tokens=max_new_tokens, rollout_batch=batch_size)
    engine = RolloutEngine(model, tokenizer, config)
    trajectories = engine.generate([build_messages(p["problem"], template) for p in problems])
    rows = []
    for problem, t in zip(problems, trajectories, strict=True):
        record = score_completion(t.text, problem["answer"])
        rows.append(
            {
                "id": problem["id"],
                "sample": 0,
                "problem": problem["problem"],
                "answer": problem["answer"],
                "completion": t.text,
                **record,
                "tokens": t.generated_tokens - (not t.truncated),  # the end-of-turn token not counted
                "truncated": t.truncated,
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
