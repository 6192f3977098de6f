"""`pr1 data build`: turn kept traces into the SFT and RL datasets.

SFT rows use TRL's conversational prompt-completion format, so `SFTTrainer` applies the chat template and
trains on the completion only:
    {"id", "sample", "prompt": [{"role": "user", "content": ...}], "completion": [{"role": "assistant", "content": trace}]}
RL rows hold one problem each (the first row of every id):
    {"id", "prompt": [{"role": "user", "content": ...}], "answer": ...}
The user turn is the same instruction as in generation, RL and evaluation (`pr1.prompts`).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pr1.coldstart.generate import check_trace
from pr1.coldstart.stats import reason_kind, trace_column
from pr1.datasets import check_answer
from pr1.errors import Pr1Error
from pr1.files import make_folder, not_writable_reason
from pr1.format import strip_think
from pr1.jsonl import iter_jsonl, write_jsonl_atomic
from pr1.prompts import build_messages

__all__ = ["BuildResult", "build", "write_jsonl_atomic"]


@dataclass
class BuildResult:
    sft_rows: int
    rl_rows: int
    left_out: int  # rows that failed the check
    reasons: Counter[str] = field(default_factory=Counter)


def build(
    file: str | Path,
    *,
    sft_out: str | Path | None,
    rl_out: str | Path | None,
    template: str,
    trace_key: str | None = None,
    check: bool = True,
) -> BuildResult:
    """Read `file` (rows with id, problem, answer and `trace_key`: None = `trace_column(file)`) and write the SFT
    and/or RL forms atomically. With `check`, rows whose trace is malformed or wrong are left out (and counted);
    a file none of whose rows passes is an error naming the most common reasons."""
    if sft_out is None and rl_out is None:
        raise Pr1Error("nothing to write: give --out DIR, or --sft-out and/or --rl-out")
    file = Path(file)
    trace_key = trace_key or trace_column(file)
    _check_outputs(file, {"--sft-out": sft_out, "--rl-out": rl_out})
    sft: list[dict[str, Any]] = []
    rl: dict[str, dict[str, Any]] = {}
    reasons: Counter[str] = Counter()
    left_out = 0
    for lineno, row in iter_jsonl(file):
        for key in ("problem", "answer", trace_key):
            if key not in row:
                hint = " (choose it with --trace-key)" if key == trace_key else ""
                raise Pr1Error(f"{file}:{lineno}: missing key {key!r}{hint}")
        trace = row[trace_key]
        if not isinstance(trace, str) or not isinstance(row["problem"], str):
            raise Pr1Error(f"{file}:{lineno}: 'problem' and {trace_key!r} must be strings")
        check_answer(row["answer"], f"{file}:{lineno}")
        trace = strip_think(trace)
        if check and (why := check_trace(trace, row["answer"])):
            left_out += 1
            reasons.update(reason_kind(r) for r in why)
            continue
        row_id = str(row.get("id", lineno))
        messages = build_messages(row["problem"], template)
        sft.append(
            {
                "id": row_id,
                "sample": row.get("sample", 0),
                "prompt": messages,
                "completion": [{"role": "assistant", "content": trace}],
            }
        )
        # `problem` too: `pr1 rl` builds its prompt from it with its own --prompt-file
        rl.setdefault(
            row_id, {"id": row_id, "problem": row["problem"], "prompt": messages, "answer": row["answer"]}
        )
    if left_out and not sft:
        top = ", ".join(f"{k} ({n})" for k, n in reasons.most_common(3))
        raise Pr1Error(
            f"{file}: none of its {left_out} rows passes the check (most common: {top}); see --no-check"
        )
    if sft_out is not None:
        write_jsonl_atomic(sft_out, sft)
    if rl_out is not None:
        write_jsonl_atomic(rl_out, rl.values())
    return BuildResult(len(sft), len(rl), left_out, reasons)


def _check_outputs(file: Path, outs: dict[str, str | Path | None]) -> None:
    """Before reading anything: refuse outputs that would overwrite the input or each other, that are
    folders, or whose folder cannot be written (so that no output is written when another cannot be)."""
    seen: dict[Path, str] = {file.resolve(): "the input file"}
    for flag, out in outs.items():
        if out is None:
            continue
        out = Path(out)
        if out.is_dir():
            raise Pr1Error(f"{flag} {out}: is a folder, expected a file name")
        target = out.resolve()
        if target in seen:
            raise Pr1Error(f"{flag} {out}: is {seen[target]}; write to another file")
        seen[target] = f"also {flag}"
        folder = make_folder(out.parent)
        if not os.access(folder, os.W_OK | os.X_OK):
            raise Pr1Error(f"{flag} {out}: cannot write in {folder} ({not_writable_reason(folder)})")
