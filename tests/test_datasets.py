import json

import pytest

from pr1.datasets import REGISTRY, eval_samples, load_problems
from pr1.errors import Pr1Error
from pr1.prompts import PARALLEL_TEMPLATE, build_messages, build_prompt, load_template

SIZES = {
    "gsm8k": 1319,
    "gsm8k-train": 7473,
    "math500": 500,
    "aime24": 30,
    "aime25": 30,
    "amc23": 40,
    "parallel-gsm8k-sample": 341,
}


@pytest.mark.parametrize("name", list(SIZES))
def test_registry_names_load_from_pr1_data_dir(shared_data, name):
    rows = load_problems(name)
    assert len(rows) == SIZES[name]
    assert all(isinstance(r["id"], str) and isinstance(r["problem"], str) and "answer" in r for r in rows)


def test_dapo_and_limit(shared_data):
    rows = load_problems("dapo", limit=5)
    assert (
        len(rows) == 5
        and rows[0]["id"] == "9a9b6eb4-a1cb-49d1-8c1e-62eaf2f74079"
        and rows[0]["answer"] == "34"
    )


def test_answer_types_are_kept(shared_data):
    assert load_problems("amc23")[0]["answer"] == 27.0
    assert load_problems("aime24")[7]["answer"] == "025" or any(
        r["answer"] == "025" for r in load_problems("aime24")
    )
    assert load_problems(str(shared_data / "aime25_mathai.jsonl"))[0]["answer"] == 70


def test_eval_samples_follow_the_protocol():
    assert eval_samples("aime25") == eval_samples("aime24") == eval_samples("amc23") == 16
    assert eval_samples("math500") == eval_samples("gsm8k") == 1
    assert set(REGISTRY) >= {"gsm8k", "dapo", "math500", "aime24", "aime25", "amc23"}


def test_local_files_with_other_keys(tmp_path):
    p = tmp_path / "mine.jsonl"
    p.write_text(json.dumps({"question": "1+1?", "answer": "Two is it.\n#### 2"}) + "\n")
    (row,) = load_problems(str(p))
    assert (row["id"], row["problem"], row["answer"]) == ("0", "1+1?", "2")
    assert row["question"] == "1+1?"  # source fields are kept


def test_parquet_file(tmp_path):
    import datasets

    p = tmp_path / "x.parquet"
    datasets.Dataset.from_list([{"problem": "p", "answer": "3", "id": "a"}]).to_parquet(str(p))
    assert load_problems(str(p))[0] == {"id": "a", "problem": "p", "answer": "3"}


def test_errors_are_one_line_and_named(tmp_path, monkeypatch):
    with pytest.raises(Pr1Error, match="unknown dataset 'nope'"):
        load_problems("nope")
    with pytest.raises(Pr1Error, match="no such file"):
        load_problems(str(tmp_path / "missing.jsonl"))
    p = tmp_path / "bad.jsonl"
    p.write_text('{"problem": "x"}\n')
    with pytest.raises(Pr1Error, match=r"bad.jsonl:1: expected a problem"):
        load_problems(str(p))
    # a name not in PR1_DATA_DIR and without network: a clear error, no traceback
    monkeypatch.setenv("PR1_DATA_DIR", str(tmp_path))
    with pytest.raises(Pr1Error, match="parallel-gsm8k-sample.*has no Hub copy"):
        load_problems("parallel-gsm8k-sample")


def test_prompts(tmp_path):
    msgs = build_messages("What is 1+1?")
    assert msgs == [{"role": "user", "content": build_prompt("What is 1+1?")}]
    assert msgs[0]["content"].endswith("Problem: What is 1+1?") and "<Parallel>" in msgs[0]["content"]
    assert "Final Answer:" in PARALLEL_TEMPLATE
    assert "<Parallel>" not in load_template("sequential")
    # LaTeX braces in a problem or template do not break formatting
    assert build_prompt("$\\frac{1}{2}$", "Q: {problem} {x}") == "Q: $\\frac{1}{2}$ {x}"
    t = tmp_path / "t.txt"
    t.write_text("no placeholder")
    with pytest.raises(Pr1Error, match="exactly once"):
        load_template(t)
    t.write_text("Solve: {problem}")
    assert load_template(t) == "Solve: {problem}"
