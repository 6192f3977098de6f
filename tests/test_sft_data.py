"""SFT data: the accepted row shapes, one-line errors for bad rows, completion-only labels, the structured
collator (path-window mask and multiverse positions), and the config rules."""

import json

import pytest
import torch
from sft_tiny import resolve_config, write_sft_rows

from pr1.errors import Pr1Error
from pr1.prompts import PARALLEL_TEMPLATE, SEQUENTIAL_TEMPLATE, build_messages
from pr1.sft.config import Pr1SFTConfig
from pr1.sft.data import (
    IGNORE,
    StructuredCollator,
    build_dataset,
    count_tokens,
    encode,
    load_sft_rows,
    prompt_length,
)
from pr1.structured import TagIds


def _write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_reads_the_three_row_shapes(tmp_path):
    conv = write_sft_rows(tmp_path / "conv.jsonl", n=2)
    rows = load_sft_rows(str(conv), PARALLEL_TEMPLATE)
    assert rows[0]["prompt"] == [{"role": "user", "content": "What is 0 + 1?"}]
    assert (
        rows[0]["completion"][0]["role"] == "assistant"
        and "<Parallel>" in rows[0]["completion"][0]["content"]
    )
    gen = _write(tmp_path / "gen.jsonl", [{"id": 7, "problem": "2+2?", "trace": "T", "answer": "4"}])
    (row,) = load_sft_rows(str(gen), SEQUENTIAL_TEMPLATE)
    assert row == {
        "id": "7",
        "prompt": build_messages("2+2?", SEQUENTIAL_TEMPLATE),
        "completion": [{"role": "assistant", "content": "T"}],
    }
    plain = _write(tmp_path / "plain.jsonl", [{"prompt": "Say hi", "completion": "hi"}])
    (row,) = load_sft_rows(str(plain), PARALLEL_TEMPLATE)
    assert row["prompt"] == [{"role": "user", "content": "Say hi"}] and row["id"] == "1"


def test_reads_the_shared_sample_by_name(shared_data):
    rows = load_sft_rows("parallel-gsm8k-sample", PARALLEL_TEMPLATE)
    assert len(rows) == 341
    assert rows[0]["prompt"] == build_messages(rows[0]["prompt"][0]["content"].split("Problem: ", 1)[1])
    assert rows[0]["completion"][0]["content"].endswith("Final Answer: 19")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("{not json", "bad.jsonl:2: invalid JSON"),
        ('{"problem": "p"}', "bad.jsonl:2: expected 'prompt' + 'completion', 'problem' + 'trace' or"),
        ('{"problem": "p", "trace": ""}', "bad.jsonl:2: the trace must be a non-empty string"),
        ('{"prompt": [{"role": "user"}], "completion": "x"}', "bad.jsonl:2: 'prompt' must be a non-empty"),
        (
            '{"prompt": "p", "completion": [{"role": "user", "content": "x"}]}',
            "bad.jsonl:2: 'completion' must end with an assistant message",
        ),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, line, expected):
    path = _write(tmp_path / "bad.jsonl", [{"problem": "ok", "solution": "fine"}, line])
    with pytest.raises(Pr1Error, match=expected.replace("+", r"\+").replace("(", r"\(")) as err:
        load_sft_rows(str(path), PARALLEL_TEMPLATE)
    assert "\n" not in str(err.value)


def test_unknown_data_is_one_line_error():
    with pytest.raises(Pr1Error, match="--data nope.jsonl: no such file"):
        load_sft_rows("nope.jsonl", PARALLEL_TEMPLATE)


def test_prompt_labels_are_ignored_and_completion_labels_are_the_ids(tiny):
    _, tok = tiny
    row = {
        "prompt": build_messages("What is 2 + 2?"),
        "completion": [{"role": "assistant", "content": "<Parallel><Path>4</Path><Path>4</Path></Parallel>"}],
    }
    ids, labels = encode(row, tok)
    prompt = tok.apply_chat_template(
        row["prompt"], add_generation_prompt=True, tokenize=True, return_dict=True
    )
    n = len(prompt["input_ids"])
    assert ids[:n] == list(prompt["input_ids"])
    assert labels[:n] == [IGNORE] * n
    assert labels[n:] == ids[n:] and IGNORE not in labels[n:]
    assert prompt_length(labels) == n
    completion = tok.decode(ids[n:], skip_special_tokens=False)
    assert completion.startswith("<Parallel><Path>4</Path>")
    assert tok.eos_token in completion  # the end of the turn is trained, so the model learns to stop
    tag_ids = set(TagIds.from_tokenizer(tok).__dict__.values())
    assert tag_ids & set(ids[:n])  # the instruction mentions the tags: they are prompt tokens, not trained
    assert all(labels[i] == IGNORE for i, t in enumerate(ids[:n]) if t in tag_ids)


def test_rows_longer_than_max_length_are_dropped_not_cut(tiny, tmp_path):
    _, tok = tiny
    rows = load_sft_rows(str(write_sft_rows(tmp_path / "d.jsonl", n=3)), PARALLEL_TEMPLATE)
    rows[1]["completion"][0]["content"] *= 40
    lengths = [len(encode(r, tok)[0]) for r in rows]
    ds, dropped = build_dataset(rows, tok, max_length=max(lengths[0], lengths[2]))
    assert dropped == 1 and len(ds) == 2 and ds[0]["input_ids"] == encode(rows[0], tok)[0]
    with pytest.raises(Pr1Error, match="--max-length 5: no row fits"):
        build_dataset(rows, tok, max_length=5)


# 1 = <Parallel>, 2 = </Parallel>, 3 = <Path>, 4 = </Path>, 5 = <Summary>, 6 = </Summary>
T = TagIds(parallel_open=1, parallel_close=2, path_open=3, path_close=4, summary_open=5, summary_close=6)


def test_structured_collator_on_hand_built_examples():
    # a prompt that mentions the tags, then: text <Parallel><Path> x y </Path><Path> z </Path></Parallel> text
    prompt = [90, 1, 3, 4, 2, 91]
    completion = [50, 1, 3, 60, 61, 4, 3, 62, 4, 2, 51]
    short = [92, 93, 70, 71]  # a second, shorter example without a block (prompt of 2)
    examples = [
        {"input_ids": prompt + completion, "labels": [IGNORE] * len(prompt) + completion},
        {"input_ids": short, "labels": [IGNORE, IGNORE, 70, 71]},
    ]
    batch = StructuredCollator(T, pad_id=0)(examples)
    assert batch["input_ids"].shape == (2, 17) and batch["attention_mask"].shape == (2, 1, 17, 17)
    # prompt positions contiguous (its tags are not a block); <Parallel> at c = 7, both paths start at 8,
    # </Parallel> at c + max(L_i) + 1 = 7 + 4 + 1 = 12
    assert batch["position_ids"][0].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 8, 9, 10, 12, 13]
    assert batch["position_ids"][1, :4].tolist() == [0, 1, 2, 3]
    allowed = batch["attention_mask"][0, 0] == 0
    assert allowed[:6, :6].equal(torch.ones(6, 6, dtype=torch.bool).tril())  # the prompt: plain causal
    second_path, first_path = [12, 13, 14], [8, 9, 10, 11]
    for i in second_path:
        assert not allowed[i, first_path].any() and allowed[i, :8].all()
    assert allowed[15, :16].all() and allowed[16].all()  # </Parallel> and after see both paths
    # loss masking survives the collator: labels as given, padding ignored
    assert batch["labels"][0].tolist() == examples[0]["labels"]
    assert batch["labels"][1].tolist() == [IGNORE, IGNORE, 70, 71] + [IGNORE] * 13
    assert count_tokens(batch) == 17 + 4


def test_structured_collator_with_the_real_prompt(tiny):
    """The shipped instruction mentions every tag; its positions stay contiguous in the collated batch."""
    _, tok = tiny
    row = {
        "prompt": build_messages("What is 2 + 2?"),
        "completion": [
            {
                "role": "assistant",
                "content": "<Parallel><Path>2+2=4</Path><Path>4</Path></Parallel>\n<Summary>4",
            }
        ],
    }
    ids, labels = encode(row, tok)
    batch = StructuredCollator(TagIds.from_tokenizer(tok), tok.pad_token_id)(
        [{"input_ids": ids, "labels": labels}]
    )
    n = prompt_length(labels)
    pos = batch["position_ids"][0].tolist()
    assert pos[:n] == list(range(n))
    assert pos[n:] != list(range(n, len(ids)))  # the completion's block overlaps its paths


def test_count_tokens_of_a_padded_2d_batch():
    assert (
        count_tokens({"input_ids": torch.zeros(2, 3), "attention_mask": torch.tensor([[1, 1, 1], [1, 0, 0]])})
        == 4
    )


def test_config_rules():
    with pytest.raises(Pr1Error, match="--model and --data required"):
        resolve_config({})
    with pytest.raises(Pr1Error, match="--batch 128 is not a multiple of --micro-batch 3"):
        resolve_config({"model": "m", "data": "d", "micro_batch": 3})
    with pytest.raises(Pr1Error, match="--variant 'parallel': expected one of causal, structured"):
        resolve_config({"model": "m", "data": "d", "variant": "parallel"})
    config = resolve_config({"model": "m", "data": "d"})
    assert (config.epochs, config.lr, config.batch, config.max_length, config.lora_r) == (
        5.0,
        1e-5,
        128,
        4096,
        64,
    )
    assert (config.warmup_ratio, config.weight_decay, config.lr_scheduler, config.alpha) == (
        0.1,
        0.01,
        "cosine",
        128,
    )


def test_a_resumed_run_keeps_its_settings():
    stored = {**Pr1SFTConfig(model="m", data="d", lora_r=16).__dict__}
    assert resolve_config({"max_steps": 9}, stored).max_steps == 9
    assert resolve_config({"lora_r": 16}, stored).lora_r == 16  # the same value is fine
    with pytest.raises(Pr1Error, match="--lora-r 8: this run started with 16"):
        resolve_config({"lora_r": 8}, stored)
