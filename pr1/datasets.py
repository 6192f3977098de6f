"""Named math datasets and local files, normalised to rows with `id`, `problem` and `answer`.

A name resolves, in order, to: an existing local file (.jsonl / .json / .parquet); `$PR1_DATA_DIR/<file>`
for a registry name (tests point it at their data folder); its usual Hugging Face Hub dataset.
`answer` keeps its source type (string, int or float): the grader copes with all of them; any other value
(null, an object, true/false, NaN) is refused with the row's place. Ids are unique within a set (they are
what `pr1 data generate` and `pr1 eval` resume by), and a repeated id is refused too.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pr1.errors import Pr1Error
from pr1.jsonl import iter_jsonl


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    hub_id: str | None
    split: str
    files: tuple[str, ...]  # file names tried in $PR1_DATA_DIR
    config: str | None = None
    eval_samples: int = 1  # METHOD.md §8: samples per problem in evaluation
    description: str = ""


REGISTRY: dict[str, DatasetSpec] = {
    s.name: s
    for s in (
        DatasetSpec(
            "gsm8k",
            "openai/gsm8k",
            "test",
            ("gsm8k.jsonl", "gsm8k_test.jsonl"),
            "main",
            1,
            "GSM8K test (1,319)",
        ),
        DatasetSpec(
            "gsm8k-train",
            "openai/gsm8k",
            "train",
            ("gsm8k-train.jsonl", "gsm8k_train.jsonl"),
            "main",
            1,
            "GSM8K train (7,473)",
        ),
        DatasetSpec("math500", "HuggingFaceH4/MATH-500", "test", ("math500.jsonl",), None, 1, "MATH-500"),
        DatasetSpec(
            "aime24", "HuggingFaceH4/aime_2024", "train", ("aime24.jsonl",), None, 16, "AIME 2024 (30)"
        ),
        DatasetSpec("aime25", "math-ai/aime25", "test", ("aime25.jsonl",), None, 16, "AIME 2025 (30)"),
        DatasetSpec("amc23", "math-ai/amc23", "test", ("amc23.jsonl",), None, 16, "AMC 2023 (40)"),
        DatasetSpec(
            "dapo",
            "open-r1/DAPO-Math-17k-Processed",
            "train",
            ("dapo.jsonl", "dapo_math_17k_en.jsonl"),
            "en",
            1,
            "DAPO-Math-17k, English",
        ),
        DatasetSpec(
            "parallel-gsm8k-sample",
            None,
            "train",
            ("parallel-gsm8k-sample.jsonl", "parallel_gsm8k_v2_partial.jsonl"),
            None,
            1,
            "341 Parallel-R1 cold-start traces",
        ),
    )
}

PROBLEM_KEYS = ("problem", "question", "prompt", "Problem")
ANSWER_KEYS = ("answer", "final_answer", "ground_truth", "solution", "Answer")


def data_dir() -> Path | None:
    d = os.environ.get("PR1_DATA_DIR")
    return Path(d) if d else None


def eval_samples(name: str) -> int:
    spec = REGISTRY.get(name)
    return spec.eval_samples if spec else 1


def load_problems(name_or_path: str, *, limit: int | None = None) -> list[dict[str, Any]]:
    """Rows `{"id", "problem", "answer", ...}` of a registry name or a local file."""
    path = Path(name_or_path)
    if path.suffix in (".jsonl", ".json", ".parquet") or path.exists():
        rows = _load_local(path)
    elif name_or_path in REGISTRY:
        spec = REGISTRY[name_or_path]
        local = next((data_dir() / f for f in spec.files if data_dir() and (data_dir() / f).is_file()), None)
        rows = _load_local(local) if local else _load_hub(spec)
    else:
        names = ", ".join(REGISTRY)
        raise Pr1Error(f"unknown dataset {name_or_path!r}: expected a file path or one of {names}")
    return rows[:limit] if limit is not None else rows


def _load_local(path: Path) -> list[dict[str, Any]]:
    if path.is_dir():
        raise Pr1Error(f"{path}: is a folder, expected a .jsonl or .parquet file")
    if not path.is_file():
        raise Pr1Error(f"{path}: no such file")
    if path.suffix == ".parquet":
        import datasets

        try:
            ds = datasets.load_dataset("parquet", data_files=str(path), split="train")
        except Exception as e:  # pyarrow's errors for a file that is not parquet
            raise Pr1Error(f"{path}: not a readable parquet file ({type(e).__name__})") from None
        return _unique(
            [(_normalise(row, f"{path}:{i + 1}", i), f"{path}:{i + 1}") for i, row in enumerate(ds)]
        )
    return _unique(
        [
            (_normalise(row, f"{path}:{lineno}", lineno - 1), f"{path}:{lineno}")
            for lineno, row in iter_jsonl(path)
        ]
    )


def _unique(rows: list[tuple[dict[str, Any], str]]) -> list[dict[str, Any]]:
    """The rows, once it is sure that no id repeats (`where`: each row's FILE:LINE)."""
    first: dict[str, str] = {}
    for row, where in rows:
        if row["id"] in first:
            raise Pr1Error(
                f"{where}: id {row['id']!r} repeats {first[row['id']]}; ids must be unique (runs resume by them)"
            )
        first[row["id"]] = where
    return [row for row, _ in rows]


def check_answer(value: Any, where: str, key: str = "answer") -> str | int | float:
    """A gold answer as it enters: a string, an integer or a finite number, else a Pr1Error naming `where`
    (FILE:LINE) and `key`. (An empty string is allowed: a chat session's saved turns have no gold answer, and
    grade as incorrect.)"""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise Pr1Error(f"{where}: {key!r} must be a string or a number, got {_json_type(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise Pr1Error(f"{where}: {key!r} must be a finite number, got {value}")
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    return {dict: "an object", list: "a list"}.get(type(value), type(value).__name__)


def _load_hub(spec: DatasetSpec) -> list[dict[str, Any]]:
    if spec.hub_id is None:
        raise Pr1Error(
            f"dataset {spec.name!r} has no Hub copy: set PR1_DATA_DIR to a folder holding {spec.files[-1]}"
        )
    import datasets

    try:
        ds = datasets.load_dataset(spec.hub_id, spec.config, split=spec.split)
    except Exception as e:  # network, auth, missing dataset: one line, with the way out
        raise Pr1Error(
            f"could not load {spec.name!r} from the Hub ({spec.hub_id}: {type(e).__name__}); "
            f"offline, set PR1_DATA_DIR to a folder holding {spec.files[-1]}"
        ) from None
    return _unique(
        [(_normalise(row, f"{spec.hub_id}[{i}]", i), f"{spec.hub_id}[{i}]") for i, row in enumerate(ds)]
    )


def _normalise(row: dict[str, Any], where: str, index: int) -> dict[str, Any]:
    problem = next((row[k] for k in PROBLEM_KEYS if k in row), None)
    if isinstance(problem, list):  # chat-format prompt: take the user turn
        problem = next(
            (m.get("content") for m in problem if isinstance(m, dict) and m.get("role") == "user"), None
        )
    answer_key = next((k for k in ANSWER_KEYS if k in row), None)
    if not isinstance(problem, str) or answer_key is None:
        raise Pr1Error(
            f"{where}: expected a problem ({'/'.join(PROBLEM_KEYS)}) and an answer ({'/'.join(ANSWER_KEYS)})"
        )
    answer = row[answer_key]
    if isinstance(answer, dict) and "ground_truth" in answer:  # verl style: {"ground_truth": ...}
        answer = answer["ground_truth"]
    if isinstance(answer, str) and "####" in answer:  # GSM8K solution text
        answer = answer.rsplit("####", 1)[1].strip()
    answer = check_answer(answer, where, answer_key)
    row_id = row.get("id", row.get("unique_id", index))
    if isinstance(row_id, bool) or not isinstance(row_id, (str, int)):
        raise Pr1Error(f"{where}: 'id' must be a string or an integer, got {_json_type(row_id)}")
    extras = {k: v for k, v in row.items() if k not in ("id", "problem", "answer")}
    return {"id": str(row_id), "problem": problem, "answer": answer, **extras}


def slug(name_or_path: str) -> str:
    """A file-name-safe name for a benchmark (used for output folders)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name_or_path).stem if "/" in name_or_path else name_or_path)
