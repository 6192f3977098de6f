import json

import pytest

from pr1.demo import FAST, run_demo
from pr1.runs import read_metrics, read_run_info


@pytest.mark.slow
def test_fast_demo_runs_the_whole_curriculum(tmp_path):
    out = tmp_path / "demo"
    results = run_demo(out, FAST)
    assert set(results) == {"base", "sft", "rl"}
    for figures in results.values():
        assert 0.0 <= figures["accuracy"] <= 1.0 and 0.0 <= figures["parallel_ratio"] <= 1.0
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
    # a rerun finds every stage finished and only re-reads the evaluations
    again = run_demo(out, FAST)
    assert again == results
