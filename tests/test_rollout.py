"""The fork/join rollout engine on a tiny random model (CPU, float32). A random model rarely writes tags,
so `ForcedSchedule` (or a small processor) forces forks, path lengths and summary lengths."""

from __future__ import annotations

import copy
import threading

import pytest
import torch
from forcing import eos_in_path_1, eos_in_summary, other_path_1, schedule

from pr1.errors import Pr1Error
from pr1.format import validate
from pr1.models import tag_token_ids
from pr1.rollout import RolloutConfig, RolloutEngine, TokenEvent

PROMPTS = ["Hello there", "What is two plus two? Think.", "A much longer prompt " * 6]


def engine(model_tok, **kw) -> RolloutEngine:
    model, tok = model_tok
    kw.setdefault("seed", 7)
    return RolloutEngine(model, tok, RolloutConfig(**kw))


def score(model, seq: list[int], temperature: float = 1.0) -> list[float]:
    """lp[i] = log p(seq[i] | seq[:i]) by one plain causal forward (lp[0] = 0)."""
    with torch.no_grad():
        logits = model(torch.tensor([seq], device=model.device)).logits[0].float().cpu()
    lp = torch.log_softmax(logits / temperature, -1)[:-1].gather(1, torch.tensor(seq[1:])[:, None])[:, 0]
    return [0.0, *lp.tolist()]


def fork_layout(ids: list[int], tags: dict[str, int]) -> list[tuple[int, int, int]]:
    """(index after <Parallel>, path start, path end inclusive) of each path in a fork-mode completion."""
    out, block_start, start = [], None, None
    for i, t in enumerate(ids):
        if block_start is None and t == tags["<Parallel>"]:
            block_start = i + 1
        elif block_start is not None and t == tags["<Path>"]:
            if start is not None:  # truncated layout: the previous path never closed
                out.append((block_start, start, i - 1))
            start = i
        elif start is not None and t == tags["</Path>"]:
            out.append((block_start, start, i))
            start = None
        elif start is None and t == tags["</Parallel>"]:
            block_start = None
    if start is not None:
        out.append((block_start, start, len(ids) - 1))
    return out


def expected_logprobs(model, traj, tags, temperature: float = 1.0) -> list[float]:
    """What the engine must report in fork mode: path tokens scored on prefix + <Path> + the path, all other
    tokens on the laid-out sequence; inserted tokens 0."""
    p, c = traj.prompt_ids, traj.completion_ids
    full = score(model, p + c, temperature)
    exp = [full[len(p) + i] for i in range(len(c))]
    for block_start, s, e in fork_layout(c, tags):
        prefix = p + c[:block_start]
        lp = score(model, prefix + c[s : e + 1], temperature)
        for j in range(s, e + 1):
            exp[j] = lp[len(prefix) + j - s]
    return [0.0 if ins else x for x, ins in zip(exp, traj.inserted, strict=True)]


def test_free_mode_logprobs_match_teacher_forcing(tiny_qwen3):
    eng = engine(tiny_qwen3, mode="free", max_tokens=24, temperature=0.8)
    trajs = eng.generate(PROMPTS, n=2)
    assert len(trajs) == 6
    for t in trajs:
        assert not any(t.inserted)
        assert t.generated_tokens == len(t.completion_ids)
        full = score(tiny_qwen3[0], t.prompt_ids + t.completion_ids, 0.8)[len(t.prompt_ids) :]
        assert t.logprobs == pytest.approx(full, abs=1e-4)


def test_fork_mode_logprobs_match_teacher_forcing(tiny):
    eng = engine(tiny, max_tokens=70, temperature=0.7)
    trajs = eng.generate(
        PROMPTS[:2], n=2, logits_processor=schedule(eng, fork_after=4, path_tokens=[5, 7], summary_tokens=3)
    )
    for t in trajs:
        assert t.completion_ids.count(eng.tags["<Parallel>"]) >= 2
        assert t.logprobs == pytest.approx(expected_logprobs(tiny[0], t, eng.tags, 0.7), abs=1e-4)


def test_inserted_tokens_are_marked(tiny):
    eng = engine(tiny, max_tokens=60, max_blocks=1)
    (t,) = eng.generate(
        ["Hi"], logits_processor=schedule(eng, fork_after=3, path_tokens=[2, 4], summary_tokens=2)
    )
    tags = eng.tags
    ids, ins = t.completion_ids, t.inserted
    inserted_ids = [i for i, flag in zip(ids, ins, strict=True) if flag]
    assert inserted_ids == [
        tags["<Path>"],
        tags["<Path>"],
        tags["</Parallel>"],
        *eng.newline,
        tags["<Summary>"],
    ]
    assert all(lp == 0.0 for lp, flag in zip(t.logprobs, ins, strict=True) if flag)
    assert all(lp < 0.0 for lp, flag in zip(t.logprobs, ins, strict=True) if not flag)
    assert t.generated_tokens == len(ids) - len(inserted_ids)
    # <Parallel>, </Path> and </Summary> were sampled (forced), so they are not marked
    for tag in ("<Parallel>", "</Path>", "</Summary>"):
        assert all(not flag for i, flag in zip(ids, ins, strict=True) if i == tags[tag])


def test_paths_never_see_each_other(tiny):
    """A path's tokens and log-probs are the same whether or not siblings exist and whatever they contain."""
    tags = tag_token_ids(tiny[1])
    runs = {}
    for num_paths, bias in ((1, False), (2, False), (3, False), (3, True)):
        eng = engine(tiny, max_tokens=50, num_paths=num_paths, max_blocks=1)
        forced = schedule(eng, fork_after=3, path_tokens=8)
        processor = other_path_1(forced) if bias else forced
        (t,) = eng.generate(["Two roads diverged"], logits_processor=processor)
        spans = fork_layout(t.completion_ids, tags)
        runs[num_paths, bias] = [
            (t.completion_ids[s : e + 1], t.logprobs[s : e + 1]) for _, s, e in spans if _ == spans[0][0]
        ]
    path0 = runs[1, False][0]
    for key in ((2, False), (3, False), (3, True)):
        ids, lps = runs[key][0]
        assert ids == path0[0]
        assert lps == pytest.approx(path0[1], abs=1e-5)
    assert runs[3, False][1][0] == runs[2, False][1][0]  # path 1 does not depend on path 2 either
    assert runs[3, True][1][0] != runs[3, False][1][0]
    assert runs[3, True][2][0] == runs[3, False][2][0]


def test_max_blocks_then_main_text_goes_on(tiny):
    eng = engine(tiny, max_tokens=60, max_blocks=2)
    trajs = eng.generate(
        ["Go"], n=2, logits_processor=schedule(eng, fork_after=2, path_tokens=2, summary_tokens=2)
    )
    for t in trajs:
        assert t.completion_ids.count(eng.tags["<Parallel>"]) == 2
        last_close = len(t.completion_ids) - 1 - t.completion_ids[::-1].index(eng.tags["</Summary>"])
        # the schedule kept asking for <Parallel> after </Summary>: it was banned, the text went on
        assert len(t.completion_ids) - last_close > 20
        assert t.truncated and len(t.completion_ids) == 60


def test_max_blocks_zero_never_forks(tiny):
    eng = engine(tiny, max_tokens=20, max_blocks=0)
    (t,) = eng.generate(["Go"], logits_processor=schedule(eng, fork_after=0))
    assert eng.tags["<Parallel>"] not in t.completion_ids and len(t.completion_ids) == 20


def test_path_cap_and_eos_in_path(tiny):
    eng = engine(tiny, max_tokens=80, max_path_tokens=5, max_blocks=1)
    tags, eos = eng.tags, min(eng.eos_ids)
    (t,) = eng.generate(
        ["Go"], logits_processor=eos_in_path_1(eng, schedule(eng, fork_after=2, summary_tokens=1))
    )
    (_, s0, e0), (_, s1, e1) = fork_layout(t.completion_ids, tags)
    assert e0 - s0 + 1 == 7  # <Path> + 5 sampled (the cap) + inserted </Path>
    assert t.inserted[e0] and t.completion_ids[e0] == tags["</Path>"]
    assert e1 - s1 + 1 == 4  # <Path> + 2 sampled + </Path> in place of the EOS
    assert t.inserted[e1] and t.logprobs[e1] == 0.0
    assert eos not in t.completion_ids


@pytest.mark.parametrize("mode", ["fork", "structured"])
def test_eos_in_a_summary_becomes_an_inserted_close_and_the_main_text_goes_on(tiny, mode):
    """As in the reference runtime: the EOS becomes `</Summary>` (inserted: log-prob 0, loss-masked), the main
    text goes on (here it ends at its own EOS), and the trace is format-valid."""
    eng = engine(tiny, mode=mode, max_tokens=60, max_blocks=1)
    tags, eos = eng.tags, min(eng.eos_ids)
    (t,) = eng.generate(
        ["Go"], logits_processor=eos_in_summary(eng, schedule(eng, fork_after=2, path_tokens=3))
    )
    ids = t.completion_ids
    close = ids.index(tags["</Summary>"])
    assert ids[close - 3] == tags["<Summary>"] and not any(t.inserted[close - 2 : close])  # 2 sampled tokens
    assert t.inserted[close] and t.logprobs[close] == 0.0
    assert len(ids) == close + 4 and ids[-1] == eos and not t.truncated  # the main text: 2 tokens and its EOS
    assert ids.count(eos) == 1 and validate(t.text) == []
    if mode == "fork":
        assert t.logprobs == pytest.approx(expected_logprobs(tiny[0], t, tags), abs=1e-4)


def test_budget_counts_everything_and_truncates_inside_a_block(tiny):
    for budget in (1, 6, 7, 8, 12, 30):
        eng = engine(tiny, max_tokens=budget)
        (t,) = eng.generate(["Go"], logits_processor=schedule(eng, fork_after=5, path_tokens=20))
        assert len(t.completion_ids) == len(t.logprobs) == len(t.inserted) == budget
        assert t.truncated


def test_eos_ends_the_trajectory(tiny):
    eng = engine(tiny, max_tokens=50)
    eos = min(eng.eos_ids)

    def processor(ctxs, logits):
        for i, c in enumerate(ctxs):
            if c.completion_tokens == 3:
                logits[i, eos] = 1e4
        return logits

    (t,) = eng.generate(["Go"], logits_processor=processor)
    assert len(t.completion_ids) == 4 and t.completion_ids[-1] == eos and not t.truncated
    assert t.text == eng.tokenizer.decode(t.completion_ids[:-1], skip_special_tokens=False)


def test_counts_and_positions(tiny):
    eng = engine(tiny, max_tokens=40, max_blocks=1)
    (t,) = eng.generate(
        ["Go"], logits_processor=schedule(eng, fork_after=4, path_tokens=[5, 7], summary_tokens=3)
    )
    # main 4 + <Parallel>; paths of 7 and 9 tokens; the shorter one is off the critical path
    assert t.parallel_positions == [4 / 40]
    assert t.critical_path_tokens == 40 - 7
    assert t.text.count("<Path>") == 2 and t.text.startswith(eng.tokenizer.decode(t.completion_ids[:4]))


def test_batched_equals_one_at_a_time(sharp):
    kw = dict(max_tokens=40, temperature=1.0, top_p=0.9)
    eng = engine(sharp, rollout_batch=64, **kw)
    proc = schedule(eng, fork_after=6, path_tokens=[4, 9], summary_tokens=3)
    together = eng.generate(PROMPTS, n=2, logits_processor=proc)
    queued = engine(sharp, rollout_batch=1, **kw).generate(PROMPTS, n=2, logits_processor=proc)
    alone = [
        t
        for p, prompt in enumerate(PROMPTS)
        for t in engine(sharp, **kw).generate([prompt], n=2, logits_processor=proc, sample_keys=[p])
    ]
    for a, b, c in zip(together, queued, alone, strict=True):
        assert a.completion_ids == b.completion_ids == c.completion_ids
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
        assert a.logprobs == pytest.approx(c.logprobs, abs=1e-4)
    assert together[0].completion_ids != together[1].completion_ids  # samples of a prompt differ


def test_seed_reproducible(tiny):
    a = engine(tiny, max_tokens=16, seed=3).generate(PROMPTS[:2], n=2)
    b = engine(tiny, max_tokens=16, seed=3).generate(PROMPTS[:2], n=2)
    c = engine(tiny, max_tokens=16, seed=4).generate(PROMPTS[:2], n=2)
    assert [t.completion_ids for t in a] == [t.completion_ids for t in b]
    assert [t.completion_ids for t in a] != [t.completion_ids for t in c]


def test_greedy_top_k_1_and_tiny_top_p_agree(tiny):
    greedy = engine(tiny, max_tokens=12, temperature=0).generate(PROMPTS, n=1)
    top_k = engine(tiny, max_tokens=12, top_k=1, seed=1).generate(PROMPTS, n=1)
    top_p = engine(tiny, max_tokens=12, top_p=1e-6, seed=2).generate(PROMPTS, n=1)
    assert (
        [t.completion_ids for t in greedy]
        == [t.completion_ids for t in top_k]
        == [t.completion_ids for t in top_p]
    )


def reconstruct(events: list[TokenEvent], n: int) -> list[str]:
    """Rebuild each trajectory's text from its events as a viewer would: paths are buffered until the block
    closes (the first summary event of the block) and laid out in path order."""
    texts, paths, done = [""] * n, [{} for _ in range(n)], [0] * n
    for ev in events:
        assert not done[ev.trajectory]
        if ev.segment == "path":
            paths[ev.trajectory].setdefault(ev.path, []).append(ev.text)
            continue
        if paths[ev.trajectory] and (ev.segment == "summary" or ev.done):
            texts[ev.trajectory] += "".join("".join(p) for _, p in sorted(paths[ev.trajectory].items()))
            paths[ev.trajectory] = {}
        texts[ev.trajectory] += ev.text
        done[ev.trajectory] += ev.done
    assert done == [1] * n
    return texts


@pytest.mark.parametrize("mode", ["fork", "free"])
def test_events_reconstruct_the_text(tiny, mode):
    eng = engine(tiny, mode=mode, max_tokens=45)
    events: list[TokenEvent] = []
    proc = schedule(eng, fork_after=3, path_tokens=[4, 6], summary_tokens=3)
    trajs = eng.generate(PROMPTS, n=2, on_event=events.append, logits_processor=proc)
    assert reconstruct(events, len(trajs)) == [t.text for t in trajs]
    tokens = [ev for ev in events if ev.token_id >= 0]
    assert len(tokens) == sum(len(t.completion_ids) for t in trajs)
    assert sum(ev.inserted for ev in tokens) == sum(sum(t.inserted) for t in trajs)
    if mode == "fork":
        labels = {(ev.segment, ev.block, ev.path) for ev in tokens}
        assert {("main", None, None), ("path", 0, 0), ("path", 0, 1), ("summary", 0, None)} <= labels


def test_stop_event_ends_every_trajectory(tiny):
    eng = engine(tiny, max_tokens=500, rollout_batch=2)
    stop = threading.Event()
    seen = []

    def on_event(ev):
        seen.append(ev)
        if len(seen) == 30:
            stop.set()

    trajs = eng.generate(PROMPTS, n=2, on_event=on_event, stop=stop)
    assert len(trajs) == 6 and all(t.truncated for t in trajs)
    assert sum(len(t.completion_ids) for t in trajs) < 40
    assert sum(ev.done for ev in seen) == 6


def test_prompts_chat_and_truncation(tiny):
    model, tok = tiny
    eng = engine(tiny, max_tokens=2, max_prompt_tokens=5)
    messages = [{"role": "user", "content": "What is 2+2?"}]
    long_ids = eng.encode(PROMPTS[2])
    t_text, t_chat, t_ids = eng.generate([PROMPTS[2], messages, long_ids[:3]])
    assert t_text.prompt_ids == long_ids[-5:] and t_text.prompt_truncated
    chat = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert t_chat.prompt_ids == tok(chat, add_special_tokens=False)["input_ids"][-5:]
    assert t_ids.prompt_ids == long_ids[:3] and not t_ids.prompt_truncated
    with pytest.raises(Pr1Error, match="empty"):
        eng.generate([""])


def test_config_is_checked():
    with pytest.raises(Pr1Error, match="mode"):
        RolloutConfig(mode="tree")
    with pytest.raises(Pr1Error, match="top_p"):
        RolloutConfig(top_p=0)


def test_model_training_flag_is_restored(tiny_qwen3):
    model = tiny_qwen3[0]
    model.train()
    try:
        engine(tiny_qwen3, max_tokens=2).generate(["x"])
        assert model.training
    finally:
        model.eval()


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_engine_on_cuda(tiny, dtype):
    model = copy.deepcopy(tiny[0]).to("cuda", dtype)
    eng = RolloutEngine(model, tiny[1], RolloutConfig(max_tokens=60, seed=0))
    proc = schedule(eng, fork_after=4, path_tokens=[5, 7], summary_tokens=3)
    trajs = eng.generate(PROMPTS, n=2, logits_processor=proc)
    for t in trajs:
        assert (
            len(t.completion_ids) == len(t.logprobs) == 60
            and t.completion_ids.count(eng.tags["<Parallel>"]) >= 2
        )
        if dtype == torch.float32:
            assert t.logprobs == pytest.approx(expected_logprobs(model, t, eng.tags), abs=1e-3)


def test_fork_when_the_row_fills_its_whole_cache_slot(tiny):
    """Regression: forking a row whose length equals the slot capacity (a whole-slot slice) must copy."""
    from pr1.rollout.row_decoder import RowDecoder

    model, _ = tiny
    backend = RowDecoder(model)
    with torch.inference_mode():  # as the engine runs it
        row = backend.new_row()
        backend.forward([row], [list(range(10, 74))], [list(range(64))])
        assert backend.length(row) == backend.capacity == 64
        a, b = backend.fork_row(row, 2)
    for cache in (*backend.keys, *backend.values):
        src = cache[backend._slot[row], :, :64]
        assert torch.equal(cache[backend._slot[a], :, :64], src) and torch.equal(
            cache[backend._slot[b], :, :64], src
        )


@pytest.mark.parametrize(("mode", "rows_per_trajectory"), [("fork", 2), ("free", 1)])
def test_cache_is_sized_once_from_the_budget(tiny, mode, rows_per_trajectory):
    """The engine tells the backend its bounds: slots never exceed batch x rows per trajectory (path 1 decodes
    on the trajectory's row, path 2 on a forked one; unplanned, slots grow 4 at a time), and every slot is as long as the longest
    prompt plus the budget from the first token on (no growth while decoding)."""
    eng = engine(tiny, mode=mode, max_tokens=40, rollout_batch=1)
    seen = set()

    def watch(event: TokenEvent) -> None:
        seen.add((eng.decoder.slots, eng.decoder.capacity))

    prompt_len = max(len(eng.encode(p)) for p in PROMPTS)
    forced = schedule(eng, fork_after=5, path_tokens=4, summary_tokens=3)
    trajs = eng.generate(PROMPTS, n=2, on_event=watch, logits_processor=forced)
    assert len(trajs) == 6 and all(t.generated_tokens for t in trajs)
    assert {c for _, c in seen} == {(prompt_len + 40 + 1 + 63) & ~63}
    assert max(s for s, _ in seen) == rows_per_trajectory


def test_a_row_near_its_slot_end_is_not_padded_past_it(tiny):
    """Regression: a row with little room left, fed a few tokens beside a longer prefill, would have its
    padding written past the end of its slot; it goes in a forward of its own instead, with the same logits."""
    from pr1.rollout.row_decoder import RowDecoder

    model, _ = tiny
    backend = RowDecoder(model)
    backend.plan(rows=2, tokens=128)
    with torch.inference_mode():
        full = backend.new_row()
        backend.forward([full], [list(range(10, 110))], [list(range(100))])
        fresh = backend.new_row()
        logits = backend.forward([full, fresh], [list(range(5, 10)), list(range(20, 80))],
                                 [list(range(100, 105)), list(range(60))])  # fmt: skip
    assert backend.capacity == 128 and backend.length(full) == 105 and backend.length(fresh) == 60
    alone = RowDecoder(model)
    with torch.inference_mode():
        row = alone.new_row()
        alone.forward([row], [list(range(10, 110))], [list(range(100))])
        expected = alone.forward([row], [list(range(5, 10))], [list(range(100, 105))])
    assert torch.allclose(logits[0], expected[0], atol=1e-4)


def test_a_cache_that_does_not_fit_is_a_one_line_error(tiny, monkeypatch):
    from pr1.rollout import row_decoder

    def out_of_memory(self, shape):
        raise torch.OutOfMemoryError("CUDA out of memory")

    eng = engine(tiny, max_tokens=40, rollout_batch=4)
    monkeypatch.setattr(row_decoder.RowDecoder, "_zeros", out_of_memory)
    with pytest.raises(
        Pr1Error, match=r"KV cache \(\d+ rows x \d+ tokens = .* GiB\) does not fit.*--batch-size"
    ):
        eng.generate(PROMPTS)
    assert eng.decoder.slots == 0 and not eng.decoder.keys
