import json

import pytest

from pr1.ablation import REWARDS, by_reward, run_ablation
from pr1.demo import FAST, STAGES, gain_line, live_share, run_demo
from pr1.jsonl import read_jsonl
from pr1.runs import read_metrics, read_run_info


def test_live_share_counts_the_groups_with_mixed_rewards():
    rows = [{"step": 1, "frac_reward_zero_std": 1.0}, {"step": 2, "frac_reward_zero_std": 0.5}, {"step": 3}]
    assert live_share(rows) == 0.25 and live_share([]) is None


def test_gain_line_says_points_interval_and_problems():
    gain = {"difference": 0.125, "low": 0.05, "high": 0.2, "stderr": 0.038, "problems": 48}
    assert gain_line(gain) == (
        "RL changed accuracy by +12.5 points over SFT (95% interval +5.0 to +20.0, paired over 48 held-out problems)"
    )


def test_by_reward_gives_mean_and_spread_over_seeds():
    rows = [
        {"reward": "accuracy", "accuracy": 0.2, "parallel_ratio": 0.1},
        {"reward": "accuracy", "accuracy": 0.4, "parallel_ratio": 0.3},
        {"reward": "alternating", "accuracy": 0.5, "parallel_ratio": 0.6},
    ]
    summary = by_reward(rows)
    assert list(summary) == ["accuracy", "alternating"] and summary["accuracy"]["runs"] == 2
    assert summary["accuracy"]["accuracy_mean"] == pytest.approx(0.3)
    assert (summary["accuracy"]["parallel_ratio_min"], summary["accuracy"]["parallel_ratio_max"]) == (
        0.1,
        0.3,
    )


@pytest.mark.slow
def test_fast_demo_runs_the_whole_curriculum(tmp_path):
    out = tmp_path / "demo"
    results = run_demo(out, FAST)
    assert set(results) == {*STAGES, "rl_gain", "rl_live"}
    for stage in STAGES:
        assert 0.0 <= results[stage]["accuracy"] <= 1.0 and 0.0 <= results[stage]["parallel_ratio"] <= 1.0
    gain = results["rl_gain"]
    assert gain["problems"] == FAST.eval_problems
    assert gain["difference"] == pytest.approx(results["rl"]["accuracy"] - results["sft"]["accuracy"])
    assert 0.0 <= results["rl_live"]["live_share"] <= 1.0
    info = read_run_info(out)
    assert info["kind"] == "demo" and info["status"] == "finished"
    assert [m["stage"] for m in read_metrics(out)] == ["base", "sft", "rl"]
    for stage in ("sft", "rl"):
        assert read_run_info(out / stage)["status"] == "finished"
        assert (out / stage / "final" / "adapter_config.json").exists()
    rl_phases = [m["phase"] for m in read_metrics(out / "rl")]
    assert rl_phases == ["accuracy", "accuracy"]
    kept = [json.loads(line) for line in (out / "data" / "coldstart.jsonl").open()]
    assert len(kept) == FAST.sft_traces
    # the difficulty knob: traces at one difficulty, RL and held-out problems at another, no problem shared
    assert all(r["id"].startswith(f"synthetic-{FAST.sft_difficulty}-") for r in kept)
    rl, held_out = (read_jsonl(out / "data" / f"{n}_problems.jsonl") for n in ("rl", "eval"))
    assert {r["difficulty"] for r in rl + held_out} == {FAST.rl_difficulty}
    assert len(held_out) == FAST.eval_problems and not {r["problem"] for r in rl} & {
        r["problem"] for r in held_out
    }
    # a rerun finds every stage finished and only re-reads the evaluations
    again = run_demo(out, FAST)
    assert again == results
    # the ablation starts from the same SFT (not trained again) and runs every reward, same problems
    sft_rows = (out / "sft" / "metrics.jsonl").read_text()
    rows = run_ablation(out, FAST, seeds=1)
    assert [(r["reward"], r["seed"]) for r in rows] == [(reward, FAST.seed) for reward in REWARDS]
    assert (out / "sft" / "metrics.jsonl").read_text() == sft_rows
    for r in rows:
        rl = read_run_info(out / "ablation" / r["run"])
        assert rl["config"]["reward"] == r["reward"] and rl["config"]["data"].endswith("rl_problems.jsonl")
    table = (out / "ablation" / "ABLATION.md").read_text()
    assert all(f"| {reward} | 1 |" in table for reward in REWARDS)
    assert [m["stage"] for m in read_metrics(out / "ablation")] == [r["run"] for r in rows]
    assert any((out / "ablation" / "charts").iterdir())
