import torch

from pr1.structured import Structure, TagIds, allowed_mask, batch_inputs, build_structure

# token ids for hand-built examples: 1 = <Parallel>, 2 = </Parallel>, 3 = <Path>, 4 = </Path>,
# 5 = <Summary>, 6 = </Summary>
T = TagIds(parallel_open=1, parallel_close=2, path_open=3, path_close=4, summary_open=5, summary_close=6)


def test_positions_of_one_block():
    # prompt(2)  a  <Parallel> <Path> x y </Path> <Path> z </Path> </Parallel> b
    ids = [90, 91, 50, 1, 3, 60, 61, 4, 3, 62, 4, 2, 51]
    st = build_structure(ids, T, prompt_len=2)
    # <Parallel> at c=3; path 1 (len 4) at 4..7; path 2 (len 3) at 4..6; </Parallel> at c + max L + 1 = 8
    assert st.position_ids == [0, 1, 2, 3, 4, 5, 6, 7, 4, 5, 6, 8, 9]
    assert st.block == [-1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, -1, -1]
    assert st.path == [-1, -1, -1, -1, 0, 0, 0, 0, 1, 1, 1, -1, -1]


def test_mask_isolates_siblings_only():
    ids = [50, 1, 3, 60, 4, 3, 61, 4, 2, 51]
    st = build_structure(ids, T)
    m = allowed_mask(st)
    assert m.tril().equal(m)  # never attends ahead
    path1, path2 = [2, 3, 4], [5, 6, 7]
    for i in path2:
        assert not m[i, path1].any()  # path 2 cannot see path 1
        assert m[i, :2].all()  # but sees the shared prefix
    for i in (8, 9):  # </Parallel> and later text see everything before them
        assert m[i, : i + 1].all()


def test_prompt_tags_are_not_a_block():
    # the instruction mentions <Parallel><Path></Path></Parallel>: contiguous positions, plain causal
    ids = [1, 3, 4, 2, 9, 1, 3, 60, 4, 3, 61, 4, 2]
    st = build_structure(ids, T, prompt_len=5)
    assert st.position_ids[:5] == [0, 1, 2, 3, 4]
    assert st.block[:5] == [-1] * 5
    assert st.position_ids[5:] == [5, 6, 7, 8, 6, 7, 8, 9]


def test_two_blocks_and_three_paths():
    ids = [1, 3, 4, 3, 60, 61, 4, 3, 4, 2, 70, 1, 3, 4, 3, 4, 2]
    st = build_structure(ids, T)
    assert st.position_ids[:10] == [0, 1, 2, 1, 2, 3, 4, 1, 2, 5]
    assert st.path[:10] == [-1, 0, 0, 1, 1, 1, 1, 2, 2, -1]
    assert st.position_ids[10:] == [6, 7, 8, 9, 8, 9, 10]
    assert st.block[11:16] == [-1, 1, 1, 1, 1]


def test_shared_text_before_first_path_and_text_between_paths():
    ids = [1, 80, 3, 60, 4, 81, 3, 61, 4, 2]
    st = build_structure(ids, T)
    # 80 is shared (paths start after it); 81 is the tail of path 0
    assert st.position_ids == [0, 1, 2, 3, 4, 5, 2, 3, 4, 6]
    assert st.path == [-1, -1, 0, 0, 0, 0, 1, 1, 1, -1]


def test_unfinished_and_malformed_sequences_do_not_crash():
    st = build_structure([1, 3, 60, 1, 2], T)  # <Parallel> inside a path, </Parallel> inside a path
    assert st.path == [-1, 0, 0, 0, 0] and st.position_ids == [0, 1, 2, 3, 4]
    assert build_structure([4, 2, 60], T).position_ids == [0, 1, 2]  # stray closers


def test_parallel_opens_a_block_only_in_main_text():
    """As the engine reads a trace: a `<Parallel>` in a summary is an ordinary token, so the `<Path>` spans
    after it are main text (contiguous positions, no path), not sibling paths at reset positions."""
    # <Parallel> <Path> a </Path> <Path> b </Path> </Parallel> \n <Summary> <Parallel> c </Summary>
    #   <Path> d </Path> <Path> e </Path>
    ids = [1, 3, 60, 4, 3, 61, 4, 2, 70, 5, 1, 80, 6, 3, 81, 4, 3, 82, 4]
    st = build_structure(ids, T)
    assert st.position_ids == [0, 1, 2, 3, 1, 2, 3, 4, *range(5, 16)]
    assert st.path == [-1, 0, 0, 0, 1, 1, 1] + [-1] * 12
    # the summary is the <Summary> right after a block (tag-wise); elsewhere <Summary> is text, and a
    # <Parallel> after it opens a block; a block right after a block (no summary) opens too
    assert build_structure([5, 80, 1, 3, 4, 3, 4, 2], T).path == [-1, -1, -1, 0, 0, 1, 1, -1]
    assert build_structure([1, 3, 4, 3, 4, 2, 6, 5, 1, 3, 4], T).path[8:] == [-1, 0, 0]
    assert build_structure([1, 3, 4, 3, 4, 2, 70, 1, 3, 4], T).path[7:] == [-1, 0, 0]


def test_batch_inputs_pads_and_builds_4d_additive_mask():
    seqs = [[9, 1, 3, 60, 4, 3, 61, 4, 2], [9, 8]]
    out = batch_inputs(seqs, [1, 1], T, pad_id=0)
    assert out["input_ids"].shape == (2, 9) and out["attention_mask"].shape == (2, 1, 9, 9)
    assert out["position_ids"][0].tolist() == [0, 1, 2, 3, 4, 2, 3, 4, 5]
    m = out["attention_mask"][0, 0]
    assert m[5, 3] == torch.finfo(torch.float32).min and m[5, 1] == 0
    causal = batch_inputs(seqs, [1, 1], T, pad_id=0, structured=False)
    assert causal["position_ids"][0].tolist() == list(range(9))
    assert torch.equal(causal["attention_mask"][0, 0] == 0, torch.ones(9, 9, dtype=torch.bool).tril())


def _logits(model, inputs):
    with torch.no_grad():
        return model(**inputs).logits


def test_a_paths_logits_do_not_depend_on_its_sibling(tiny):
    model, tok = tiny
    tags = TagIds.from_tokenizer(tok)
    prompt = tok("Two plus two is", add_special_tokens=False).input_ids
    a = tok(" four, since 2+2=4.", add_special_tokens=False).input_ids
    b1 = tok(" counting up", add_special_tokens=False).input_ids
    b2 = tok(" a different and longer sibling path text", add_special_tokens=False).input_ids

    def seq(sib):
        return [
            *prompt,
            tags.parallel_open,
            tags.path_open,
            *sib,
            tags.path_close,
            tags.path_open,
            *a,
            tags.path_close,
        ]

    s1, s2 = seq(b1), seq(b2)
    out = _logits(model, batch_inputs([s1, s2], [len(prompt)] * 2, tags, pad_id=tok.pad_token_id))
    n = len(a) + 2  # the second path, with its tags
    assert torch.allclose(out[0, len(s1) - n : len(s1)], out[1, len(s2) - n : len(s2)], atol=1e-5)
    causal = _logits(
        model, batch_inputs([s1, s2], [len(prompt)] * 2, tags, pad_id=tok.pad_token_id, structured=False)
    )
    assert not torch.allclose(causal[0, len(s1) - n : len(s1)], causal[1, len(s2) - n : len(s2)], atol=1e-3)


def test_causal_4d_mask_matches_the_models_own_causal_forward(tiny):
    model, tok = tiny
    tags = TagIds.from_tokenizer(tok)
    ids = tok("plain text without any block at all", add_special_tokens=False).input_ids
    ours = _logits(model, batch_inputs([ids], [0], tags, pad_id=0))
    ref = _logits(model, {"input_ids": torch.tensor([ids])})
    assert torch.allclose(ours, ref, atol=1e-5)


def test_structure_dataclass_is_plain():
    st = Structure([0], [-1], [-1])
    assert allowed_mask(st).tolist() == [[True]]
