"""Structured mode of the rollout engine (parallel paths, merged KV cache) on tiny random models (CPU,
float32): what it samples must be what a structured-mask forward pass (`pr1.structured.batch_inputs`,
the scoring of the structured variant) assigns to the final sequence."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from forcing import eos_in_path_1, eos_in_summary, other_path_1, schedule, stray_tags

from pr1.format import validate
from pr1.rl.config import RLConfig
from pr1.rollout import ForcedSchedule, RolloutConfig, RolloutEngine, SampleContext
from pr1.structured import batch_inputs, build_structure


def engine(model_tok, **kw) -> RolloutEngine:
    kw.setdefault("seed", 3)
    kw.setdefault("mode", "structured")
    return RolloutEngine(*model_tok, RolloutConfig(**kw))


def scored(model, eng: RolloutEngine, traj, structured: bool = True, temperature: float = 1.0) -> list[float]:
    """Per completion token: its log-prob under one forward pass over prompt + completion with the inputs the
    trainer builds (structured: path-window mask, multiverse positions)."""
    seq, plen = traj.prompt_ids + traj.completion_ids, len(traj.prompt_ids)
    inputs = batch_inputs([seq], [plen], eng.tag_ids, pad_id=0, structured=structured)
    with torch.no_grad():
        logits = model(**{k: v.to(model.device) for k, v in inputs.items()}).logits[0].float().cpu()
    lp = torch.log_softmax(logits / temperature, -1)[plen - 1 : -1]
    return lp.gather(1, torch.tensor(traj.completion_ids)[:, None])[:, 0].tolist()


def gap(model, eng: RolloutEngine, traj, structured: bool = True) -> float:
    """Max |sampling - scoring| log-prob over the sampled tokens."""
    ref = scored(model, eng, traj, structured)
    pairs = zip(traj.logprobs, ref, traj.inserted, strict=True)
    return max((abs(a - b) for a, b, ins in pairs if not ins), default=0.0)


def blocks(eng: RolloutEngine, traj) -> int:
    return traj.completion_ids.count(eng.tags["<Parallel>"])


@pytest.mark.parametrize("fixture", ["tiny", "tiny_qwen3"])
def test_logprobs_equal_a_structured_forward(fixture, request):
    model_tok = request.getfixturevalue(fixture)
    eng = engine(model_tok, max_tokens=90, num_paths=3, max_blocks=2)
    proc = schedule(eng, fork_after=4, path_tokens=[3, 9, 6], summary_tokens=4)
    (t,) = eng.generate(["Two roads diverged in a wood"], logits_processor=proc)
    assert blocks(eng, t) == 2 and len(t.completion_ids) == 90
    last_close = len(t.completion_ids) - 1 - t.completion_ids[::-1].index(eng.tags["</Summary>"])
    assert len(t.completion_ids) - last_close > 10  # the main text went on after the merged blocks
    assert gap(model_tok[0], eng, t) <= 1e-4  # every sampled token: paths, summaries, continuation
    assert gap(model_tok[0], eng, t, structured=False) > 1e-2  # causal scoring would disagree


def test_positions_fed_are_the_multiverse_positions(tiny):
    """Every token fed to the model goes in at the position `build_structure` gives it."""
    eng = engine(tiny, max_tokens=60, num_paths=2, max_blocks=2, max_path_tokens=4)
    fed: Counter = Counter()
    forward = eng.decoder.forward

    def recording(rows, tokens, positions):
        for toks, posns in zip(tokens, positions, strict=True):
            fed.update(zip(toks, posns, strict=True))
        return forward(rows, tokens, positions)

    eng.decoder.forward = recording
    # path 0 closes itself after 2 tokens, path 1 hits the 4-token cap (an inserted </Path>)
    (t,) = eng.generate(
        ["Go on"], logits_processor=schedule(eng, fork_after=3, path_tokens=[2, 50], summary_tokens=2)
    )
    seq = t.prompt_ids + t.completion_ids
    st = build_structure(seq, eng.tag_ids, len(t.prompt_ids))
    expected = Counter(zip(seq[:-1], st.position_ids[:-1], strict=True))  # the last token is never fed
    for i, tok in enumerate(seq):  # a block's <Path> is fed once, before its paths fork
        if tok == eng.tags["<Path>"] and st.path[i] > 0:
            expected[tok, st.position_ids[i]] -= 1
    assert expected == fed
    assert blocks(eng, t) == 2


def test_a_path_does_not_depend_on_its_siblings(tiny):
    runs = {}
    for bias in (False, True):
        eng = engine(tiny, max_tokens=60, num_paths=3, max_blocks=1)
        forced = schedule(eng, fork_after=3, path_tokens=[6, 4, 8], summary_tokens=3)
        processor = other_path_1(forced) if bias else forced
        (t,) = eng.generate(["Two roads"], logits_processor=processor)
        st = build_structure(t.completion_ids, eng.tag_ids)
        runs[bias] = (
            t,
            {
                p: [
                    (tok, lp)
                    for tok, lp, q in zip(t.completion_ids, t.logprobs, st.path, strict=True)
                    if q == p
                ]
                for p in range(3)
            },
        )
        assert gap(tiny[0], eng, t) <= 1e-4
    (_, paths), (_, biased_paths) = runs[False], runs[True]
    assert biased_paths[1] != paths[1]
    for p in (0, 2):
        assert [x for x, _ in biased_paths[p]] == [x for x, _ in paths[p]]
        assert [y for _, y in biased_paths[p]] == pytest.approx([y for _, y in paths[p]], abs=1e-5)


def test_batched_trajectories_fork_at_different_times(sharp):
    """Trajectories of one batch open their blocks at different steps (paths of some decode beside the main
    text of others); each is exact, and equals the same trajectory decoded alone (batch size 1)."""
    kw = dict(max_tokens=70, num_paths=2, max_blocks=2, temperature=1.0)
    eng = engine(sharp, rollout_batch=16, **kw)
    forced = {k: schedule(eng, fork_after=2 + 5 * k, path_tokens=[3 + k, 7 - k], summary_tokens=2 + k)
              for k in range(4)}  # fmt: skip

    def processor(ctxs: list[SampleContext], logits: torch.Tensor) -> torch.Tensor:
        for i, c in enumerate(ctxs):
            logits[i : i + 1] = forced[c.trajectory % 4]([c], logits[i : i + 1])
        return logits

    prompts = ["Hi", "What is two plus two?", "A longer prompt " * 5, "Go"]
    together = eng.generate(prompts, logits_processor=processor)
    assert [blocks(eng, t) for t in together] == [2, 2, 2, 2]
    starts = {t.completion_ids.index(eng.tags["<Parallel>"]) for t in together}
    assert len(starts) == 4
    for t in together:
        assert gap(sharp[0], eng, t) <= 1e-4
    queued = engine(sharp, rollout_batch=1, **kw).generate(
        prompts, logits_processor=processor
    )  # one at a time
    for alone, t in zip(queued, together, strict=True):
        assert alone.completion_ids == t.completion_ids
        assert alone.logprobs == pytest.approx(t.logprobs, abs=1e-4)


def test_limits_hold(tiny):
    eng = engine(tiny, max_tokens=70, max_blocks=2)
    for t in eng.generate(["Go"], n=2, logits_processor=schedule(eng, fork_after=2, path_tokens=2,
                                                                  summary_tokens=2)):  # fmt: skip
        assert blocks(eng, t) == 2 and t.truncated and len(t.completion_ids) == 70
        assert gap(tiny[0], eng, t) <= 1e-4
    (t,) = engine(tiny, max_tokens=20, max_blocks=0).generate(
        ["Go"], logits_processor=schedule(eng, fork_after=0)
    )
    assert blocks(eng, t) == 0 and len(t.completion_ids) == 20
    for budget in (1, 7, 8, 30):  # a budget spent inside a block stops the trajectory there
        eng = engine(tiny, max_tokens=budget)
        (t,) = eng.generate(["Go"], logits_processor=schedule(eng, fork_after=5, path_tokens=20))
        assert len(t.completion_ids) == len(t.logprobs) == len(t.inserted) <= budget and t.truncated
        assert t.completion_ids.count(eng.tags["<Path>"]) <= 1  # an unclosed path's sibling is dropped
        assert gap(tiny[0], eng, t) <= 1e-4


def test_path_cap_and_eos_in_a_path(tiny):
    eng = engine(tiny, max_tokens=80, max_path_tokens=5, max_blocks=1)
    tags, eos = eng.tags, min(eng.eos_ids)
    (t,) = eng.generate(
        ["Go"], logits_processor=eos_in_path_1(eng, schedule(eng, fork_after=2, summary_tokens=2))
    )
    st = build_structure(t.completion_ids, eng.tag_ids)
    assert st.path.count(0) == 7 and st.path.count(1) == 4  # cap: <Path> + 5 + </Path>; EOS -> </Path>
    assert eos not in t.completion_ids and t.completion_ids.count(tags["</Parallel>"]) == 1
    assert gap(tiny[0], eng, t) <= 1e-4


def test_eos_in_a_summary_is_repaired_on_policy(tiny):
    eng = engine(tiny, max_tokens=60, max_blocks=1)
    (t,) = eng.generate(
        ["Go"], logits_processor=eos_in_summary(eng, schedule(eng, fork_after=2, path_tokens=3))
    )
    close = t.completion_ids.index(eng.tags["</Summary>"])
    assert t.inserted[close] and not t.truncated and validate(t.text) == []
    assert gap(tiny[0], eng, t) <= 1e-4  # the main text after the inserted </Summary> included


@pytest.mark.parametrize("mode", ["fork", "structured"])
def test_no_parallel_where_the_engine_does_not_fork(tiny, mode):
    """A `<Parallel>` the model writes inside a path or a summary is banned (as after the last block), so every
    `<Parallel>` of a trace opens a block for the sampler, the scorer (`build_structure`) and the checker
    alike; `<Path>` spans written in the main text afterwards are plain text to all three, and structured
    sampling stays on-policy."""
    eng = engine(tiny, mode=mode, max_tokens=50)
    tags = eng.tags
    (t,) = eng.generate(
        ["Go"], logits_processor=stray_tags(eng, schedule(eng, path_tokens=4, summary_tokens=3))
    )
    ids = t.completion_ids
    assert blocks(eng, t) == 1  # the forced <Parallel> of each path and of the summary was not sampled
    assert ids.count(tags["<Path>"]) == 4 and ids.count(tags["</Summary>"]) == 1  # 2 seeds, 2 written spans
    st = build_structure(t.prompt_ids + ids, eng.tag_ids, len(t.prompt_ids))
    after = len(t.prompt_ids) + ids.index(tags["</Summary>"])
    assert st.path[after:] == [-1] * (len(st.path) - after)  # the spans after the block are main text
    assert st.position_ids[after:] == list(
        range(st.position_ids[after], st.position_ids[after] + len(st.path) - after)
    )
    errors = validate(t.text)
    assert len(errors) == 4 and all(e.startswith(("<Path> outside", "</Path> without")) for e in errors)
    if mode == "structured":
        assert gap(tiny[0], eng, t) <= 1e-4


def test_fork_sampling_is_off_policy_for_structured_scoring(tiny):
    """What the RL diagnostic `logprob_gap` shows: fork-mode samples scored the structured way disagree."""
    eng = engine(tiny, mode="fork", max_tokens=60, max_blocks=1)
    (t,) = eng.generate(["Go"], logits_processor=schedule(eng, fork_after=3, path_tokens=5, summary_tokens=4))
    assert gap(tiny[0], eng, t, structured=True) > 1e-2
    assert gap(tiny[0], eng, t, structured=False) > 1e-2  # fork reads path 2 after path 1: neither matches


def test_rl_structured_variant_samples_in_structured_mode():
    assert RLConfig(**{"model": "m", "variant": "structured"}).mode == "structured"
    assert RLConfig(**{"model": "m", "variant": "structured", "mode": "fork"}).mode == "fork"
    assert RLConfig(**{"model": "m"}).mode == "fork"


@pytest.mark.parametrize(("mode", "on_policy"), [(None, True), ("fork", False)])
def test_rl_logprob_gap_of_structured_training(tmp_path, mode, on_policy):
    """The trainer's own diagnostic under `--variant structured`: ~0 with the default (structured) sampling,
    clearly non-zero with fork sampling."""
    from rl_stub import with_new_adapter

    from pr1.models import tiny_model
    from pr1.rl.rollout import EngineRollout
    from pr1.rl.trainer import build_dataset, build_trainer

    (tmp_path / "template.txt").write_text("Q: {problem}")
    data = tmp_path / "problems.jsonl"
    data.write_text('{"id": "p0", "problem": "What is 1+1?", "answer": "2"}\n')
    settings = {"model": "tiny", "data": str(data), "prompt_file": str(tmp_path / "template.txt")}
    cfg = RLConfig(**{**settings, "variant": "structured", "mode": mode, "batch": 1, "samples": 2,
                   "max_tokens": 40, "lora_r": 4})  # fmt: skip
    assert cfg.mode == ("structured" if on_policy else "fork")
    model, tok = tiny_model("llama")
    forced = ForcedSchedule.for_tokenizer(tok, fork_after=3, path_tokens=[4, 6], summary_tokens=3)
    rollout = EngineRollout(cfg, tok, "hf", logits_processor=forced)
    policy = with_new_adapter(model, tok, cfg)
    trainer = build_trainer(cfg, policy, build_dataset(cfg), backend="hf", output_dir=tmp_path / "o",
                            rollout_func=rollout)  # fmt: skip
    trainer.model.train()
    trainer._generate_and_score_completions([dict(trainer.train_dataset[0]) for _ in range(2)])
    stats = trainer.pr1_recorder.round
    assert all(r["n_blocks"] >= 1 for r in stats.records)
    if on_policy:
        assert stats.logprob_gap_max < 1e-4
    else:  # a random tiny model: small, but 1000x float noise (the embedded model: 2.0, docs/BENCHMARKS.md)
        assert stats.logprob_gap_max > 1e-3


def test_append_rows_copies_in_order_and_grows_the_cache(tiny):
    from pr1.rollout.row_decoder import RowDecoder

    backend = RowDecoder(tiny[0])
    with torch.inference_mode():
        row = backend.new_row()
        backend.forward([row], [list(range(10, 70))], [list(range(60))])
        a, b, c = backend.fork_row(row, 3)
        backend.forward([a, b, c], [[5, 6, 7], [8, 9, 10], [11, 12]], [[60, 61, 62]] * 2 + [[60, 61]])
        assert backend.capacity == 64
        expected = [torch.cat([k[backend._slot[r], :, s:e] for r, s, e in ((a, 0, 63), (b, 60, 63), (c, 60, 62))], 1)
                    for k in (*backend.keys, *backend.values)]  # fmt: skip
        backend.append_rows(a, [(b, 3), (c, 2)])
    assert backend.length(a) == 68 and backend.capacity >= 68
    for cache, exp in zip((*backend.keys, *backend.values), expected, strict=True):
        assert torch.equal(cache[backend._slot[a], :, :68], exp)


@pytest.mark.gpu
def test_structured_mode_on_cuda(tiny):
    import copy

    model = copy.deepcopy(tiny[0]).to("cuda")
    eng = engine((model, tiny[1]), max_tokens=60, num_paths=3, max_blocks=2)
    trajs = eng.generate(["Go", "Two roads diverged"], n=2,
                         logits_processor=schedule(eng, fork_after=4, path_tokens=[3, 7, 5], summary_tokens=3))  # fmt: skip
    for t in trajs:
        assert blocks(eng, t) == 2 and len(t.completion_ids) == 60
        assert gap(model, eng, t) <= 1e-3  # TF32 matmuls may be on
