import json

import pytest

from pr1.format import (
    TAGS,
    Block,
    PathNode,
    answer_text,
    parse,
    split_tags,
    stats,
    strip_think,
    validate,
)

GOOD = (
    "Let x be 3. <Parallel><Path>3+3=6</Path><Path>2*3=6</Path></Parallel>\n"
    "<Summary>Both give 6.</Summary> So the answer is 6.\nFinal Answer: 6"
)


def test_six_tags():
    assert TAGS == ("<Parallel>", "</Parallel>", "<Path>", "</Path>", "<Summary>", "</Summary>")


def test_parse_tree_of_a_valid_trace():
    tr = parse(GOOD)
    assert [type(p).__name__ for p in tr.parts] == ["str", "Block", "str"]
    block = tr.blocks[0]
    assert [p.text for p in block.paths] == ["3+3=6", "2*3=6"]
    assert block.closed and block.gap == "\n"
    assert block.summary.text == "Both give 6." and block.summary.closed
    assert tr.main_text == "Let x be 3.  So the answer is 6.\nFinal Answer: 6"


@pytest.mark.parametrize(
    "text",
    [
        GOOD,
        "",
        "plain text, no tags",
        "a <Parallel><Path>one",  # streaming: a path still being written
        "a <Parallel><Path>one</Path><Pa",  # a tag half written
        "<Parallel><Path>x</Path><Path>y</Path></Parallel>\n<Summary>half",
        "</Path> stray <Summary>s</Summary> <Parallel> <Parallel><Path><Parallel></Path>",
        "<Parallel><Path>a</Path>\n<Path>b</Path>\n</Parallel>text<Summary>late</Summary>",
        "<Parallel></Parallel>\n\n<Summary></Summary></Summary></Parallel><Path>",
    ],
)
def test_render_round_trips_exactly(text):
    assert parse(text).render() == text


def test_round_trip_on_the_cold_start_sample(shared_data):
    for line in (shared_data / "parallel_gsm8k_v2_partial.jsonl").open():
        row = json.loads(line)
        for key in ("solution", "output"):
            assert parse(row[key]).render() == row[key]


def test_parse_unfinished_text_marks_open_nodes():
    tr = parse("Start <Parallel><Path>first</Path><Path>sec")
    block = tr.blocks[0]
    assert not block.closed
    assert [(p.text, p.closed) for p in block.paths] == [("first", True), ("sec", False)]
    tr = parse(GOOD[: GOOD.index("</Summary>")])
    assert tr.blocks[0].summary.text == "Both give 6." and not tr.blocks[0].summary.closed


def test_block_without_summary_gives_text_back_to_main():
    tr = parse("<Parallel><Path>a</Path><Path>b</Path></Parallel>\nthen more")
    assert tr.blocks[0].summary is None
    assert tr.parts[-1] == "\nthen more"


def test_split_tags():
    assert split_tags("a<Path>b</Path>") == ["a", "<Path>", "b", "</Path>"]


def test_valid_trace_has_no_errors():
    assert validate(GOOD) == []
    assert validate("no parallel thinking at all. Final Answer: 3") == []
    three = "<Parallel><Path>a</Path><Path>b</Path><Path>c</Path></Parallel>\n<Summary>s</Summary>"
    assert validate(three + " then " + three) == []


def _only(errors, needle):
    assert any(needle in e for e in errors), errors


def test_rule1_stack_balance():
    _only(validate("x </Path> y"), "</Path> without an open <Path>")
    _only(validate("<Path>a</Path>"), "<Path> outside a <Parallel>")
    _only(validate("</Parallel>\n<Summary>s</Summary>"), "</Parallel> without an open <Parallel>")
    _only(validate("</Summary>"), "</Summary> without an open <Summary>")
    # </Parallel> while a path is still open
    _only(validate("<Parallel><Path>a</Path><Path>b</Parallel>\n<Summary>s</Summary>"), "</Parallel> without")


def test_rule2_at_least_two_closed_paths():
    _only(
        validate("<Parallel><Path>a</Path></Parallel>\n<Summary>s</Summary>"),
        "1 closed path(s), need at least 2",
    )
    _only(validate("<Parallel></Parallel>\n<Summary>s</Summary>"), "0 closed path(s)")


def test_rule3_summary_follows_every_block():
    _only(
        validate("<Parallel><Path>a</Path><Path>b</Path></Parallel>\nno summary"), "not followed by <Summary>"
    )
    errs = validate(
        "<Parallel><Path>a</Path><Path>b</Path></Parallel>\n<Summary>s</Summary><Summary>t</Summary>"
    )
    _only(errs, "<Summary> not directly after a </Parallel>")
    _only(errs, "2 <Summary> for 1 </Parallel>")
    _only(validate("text <Summary>lonely</Summary>"), "<Summary> not directly after")
    # text between </Parallel> and <Summary> is allowed: the rule is tag-wise
    assert validate("<Parallel><Path>a</Path><Path>b</Path></Parallel> so <Summary>s</Summary>") == []


def test_rule4_no_nesting():
    nested_in_path = "<Parallel><Path><Parallel><Path>a</Path><Path>b</Path></Parallel>\n<Summary>s</Summary></Path><Path>c</Path></Parallel>\n<Summary>t</Summary>"
    _only(validate(nested_in_path), "nested <Parallel> inside <Path>")
    _only(
        validate("<Parallel><Path>a</Path><Path>b</Path></Parallel>\n<Summary><Parallel>"),
        "nested <Parallel> inside <Summary>",
    )
    _only(validate("<Parallel><Parallel>"), "nested <Parallel> inside <Parallel>")


def test_rule5_nothing_left_open():
    _only(validate("<Parallel><Path>a</Path><Path>b"), "unclosed at end: <Parallel>, <Path>")
    _only(
        validate("<Parallel><Path>a</Path><Path>b</Path></Parallel>\n<Summary>s"),
        "unclosed at end: <Summary>",
    )


def test_a_tag_that_does_not_fit_is_read_as_text():
    """pr1's checker reads a trace as the engine and the scorer do: a `<Parallel>` in a summary opens no block,
    so the `<Path>` spans after the summary are stray tags in main text, not a block's paths."""
    text = (
        "<Parallel><Path>a</Path><Path>b</Path></Parallel>\n<Summary>x <Parallel> y</Summary>"
        " then <Path>c</Path><Path>d</Path> Final Answer: 1"
    )
    assert validate(text) == [
        "nested <Parallel> inside <Summary>",
        "<Path> outside a <Parallel> block (inside main text)",
        "</Path> without an open <Path> (inside main text)",
        "<Path> outside a <Parallel> block (inside main text)",
        "</Path> without an open <Path> (inside main text)",
    ]
    stray = "<Parallel><Path>a</Path><Path>b</Path></Parallel>\n<Summary>s</Summary> </Parallel><Summary>t</Summary>"
    assert validate(stray) == [
        "</Parallel> without an open <Parallel> (inside main text)",
        "<Summary> not directly after a </Parallel> (inside main text)",  # a stray </Parallel> closes no block
        "</Summary> without an open <Summary> (inside main text)",
    ]


BLOCK = "<Parallel><Path>a</Path><Path>b</Path></Parallel>\n<Summary>s</Summary>"


@pytest.mark.parametrize(
    ("text", "pr1_error"),
    [  # the four cases the reference code's checker accepts (METHOD.md §1)
        ("<Parallel><Path>a</Path><Path>b</Path></Parallel>\n<Summary>half", "unclosed at end: <Summary>"),
        (BLOCK + " stray </Summary> Final Answer: 3", "</Summary> without an open <Summary>"),
        ("<Path>a</Path> then " + BLOCK, "<Path> outside a <Parallel> block (inside main text)"),
        (
            "<Parallel><Path>" + BLOCK + "</Path><Path>c</Path></Parallel>\n<Summary>t</Summary>",
            "nested <Parallel> inside <Path>",
        ),
        (
            "<Parallel><Path>a</Path><Path>b</Path></Parallel>\n<Summary>" + BLOCK + "</Summary>",
            "nested <Parallel> inside <Summary>",
        ),
    ],
)
def test_reference_rules_accept_what_pr1_rejects(text, pr1_error):
    _only(validate(text), pr1_error)
    assert validate(text, rules="reference") == []


@pytest.mark.parametrize(
    ("text", "error"),
    [  # what the reference rules still reject: balance of <Parallel>/<Path>, two paths, the summary rule
        ("<Parallel><Path>a</Path></Parallel>\n<Summary>s</Summary>", "1 closed path(s), need at least 2"),
        ("<Parallel><Path>a</Path><Path>b</Path></Parallel>\nno summary", "not followed by <Summary>"),
        ("text <Summary>lonely</Summary>", "<Summary> not directly after a </Parallel>"),
        ("x </Path> y", "</Path> without an open <Path>"),
        ("<Parallel><Path>a</Path><Path>b", "unclosed at end: <Parallel>, <Path>"),
        (BLOCK + "<Summary>t</Summary>", "2 <Summary> for 1 </Parallel>"),
    ],
)
def test_reference_rules_still_reject(text, error):
    _only(validate(text, rules="reference"), error)
    _only(validate(text), error)


def test_unknown_rules_are_refused():
    with pytest.raises(ValueError, match="unknown format rules 'paper'"):
        validate(GOOD, rules="paper")


def test_answer_text_leaves_the_paths_out():
    text = (
        "Main <Parallel><Path>p1 Final Answer: 1</Path><Path>p2</Path></Parallel>\n<Summary>sum</Summary> end"
    )
    assert answer_text(text) == "Main \n\n\nsum\n end"
    assert answer_text("a <Parallel><Path>cut inside a path") == "a \n"
    assert answer_text("plain") == "plain"


def test_the_one_invalid_trace_of_the_sample(shared_data):
    rows = [json.loads(line) for line in (shared_data / "parallel_gsm8k_v2_partial.jsonl").open()]
    invalid = {r["id"]: validate(r["solution"]) for r in rows if validate(r["solution"])}
    assert invalid == {475: ["unclosed at end: <Summary>"]}
    assert not any(validate(r["solution"], rules="reference") for r in rows)  # it accepts an open summary


def test_stats():
    st = stats(GOOD)
    assert st.n_blocks == 1 and st.paths_per_block == [2] and st.parallel
    assert st.parallel_positions == [pytest.approx(GOOD.index("<Parallel>") / len(GOOD))]
    assert st.path_chars == len("3+3=6") + len("2*3=6")
    assert st.summary_chars == len("Both give 6.")
    assert st.main_chars == len(parse(GOOD).main_text)
    assert st.total_chars == len(GOOD)
    assert not stats("plain").parallel and stats("plain").paths_per_block == []


def test_blocks_are_dataclasses_that_render():
    b = Block(inner=[PathNode("a", True), " ", PathNode("b", True)], closed=True, gap="\n")
    assert b.render() == "<Parallel><Path>a</Path> <Path>b</Path></Parallel>\n"


def test_strip_think():
    assert strip_think("<think>hmm</think>\n\nAnswer") == "Answer"
    assert strip_think("no think") == "no think"
