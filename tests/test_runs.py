import json

import pytest

from pr1.errors import Pr1Error
from pr1.jsonl import JsonlTail, JsonlWriter, iter_jsonl, write_json_atomic
from pr1.runs import Run, read_metrics, read_run_info, redact


def test_run_folder_layout_and_streams(tmp_path):
    run = Run.create(
        tmp_path / "r", "rl", {"lr": 1e-6, "api_key": "sk-secret", "nested": {"hf_token": "hf_x"}}
    )
    run.log_metrics(1, reward_mean=0.5, phase="accuracy")
    run.log_rollouts(1, [{"completion": "x", "reward": 1.0}])
    run.finish(accuracy=0.5)
    info = read_run_info(tmp_path / "r")
    assert info["kind"] == "rl" and info["status"] == "finished" and info["summary"] == {"accuracy": 0.5}
    assert info["config"]["lr"] == 1e-6
    text = (tmp_path / "r" / "run.json").read_text()
    assert "sk-secret" not in text and "hf_x" not in text
    assert {"torch", "transformers", "python"} <= set(info["versions"])
    m = read_metrics(tmp_path / "r")
    assert m[0]["step"] == 1 and m[0]["phase"] == "accuracy" and "time" in m[0]
    events = [json.loads(line)["event"] for line in (tmp_path / "r" / "events.jsonl").open()]
    assert events == ["start", "end"]


def test_existing_run_needs_resume(tmp_path):
    Run.create(tmp_path, "sft", {}).finish()
    with pytest.raises(Pr1Error, match="--resume"):
        Run.create(tmp_path, "sft", {})
    with pytest.raises(Pr1Error, match="holds a 'sft' run"):
        Run.create(tmp_path, "rl", {}, resume=True)
    run = Run.create(tmp_path, "sft", {}, resume=True)
    assert run.info["status"] == "running" and len(run.info["resumed_at"]) == 1


def test_writer_repairs_a_partial_last_line(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"step": 1}\n{"step": 2, "lo')  # a writer killed mid-line
    with JsonlWriter(p) as w:
        w.write({"step": 2})
    assert [r["step"] for _, r in iter_jsonl(p)] == [1, 2]


def test_tail_follows_a_growing_file_and_reports_bad_lines(tmp_path):
    p = tmp_path / "m.jsonl"
    tail = JsonlTail(p)
    assert tail.poll() == ([], [])  # not there yet
    p.write_text('{"step": 1}\n{"step": 2')
    rows, problems = tail.poll()
    assert rows == [{"step": 1}] and problems == []  # the partial line waits
    with p.open("a") as f:
        f.write('}\nnot json\n[1]\n{"step": 3}\n')
    rows, problems = tail.poll()
    assert rows == [{"step": 2}, {"step": 3}]
    assert problems == ["m.jsonl:3: malformed line skipped", "m.jsonl:4: not a JSON object, skipped"]
    p.write_text('{"step": 9}\n')  # replaced by a shorter file
    assert tail.poll()[0] == [{"step": 9}]


def test_atomic_json(tmp_path):
    write_json_atomic(tmp_path / "a.json", {"x": 1})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_redact_lists_and_dataclasses():
    from dataclasses import dataclass

    @dataclass
    class C:
        api_key: str = "k"
        lr: float = 1.0

    assert redact(C()) == {"api_key": "<redacted>", "lr": 1.0}
    assert redact([{"password": "p"}]) == [{"password": "<redacted>"}]
    kept = {"max_tokens": 3000, "max_path_tokens": 4096, "api_key_env": "OPENAI_API_KEY", "tokenizer": "x"}
    assert redact(kept) == kept
    secret = {"hf_token": "a", "OPENAI_API_KEY": "b", "apikey": "c", "client_secret": "d"}
    assert set(redact(secret).values()) == {"<redacted>"}


def test_recording_marks_interrupted_and_failed_runs(tmp_path):
    run = Run.create(tmp_path / "a", "eval", {})
    with pytest.raises(KeyboardInterrupt), run.recording():
        raise KeyboardInterrupt
    assert read_run_info(tmp_path / "a")["status"] == "interrupted"
    run = Run.create(tmp_path / "b", "eval", {})
    with pytest.raises(ValueError), run.recording():
        raise ValueError("bad value\nmore detail")
    info = read_run_info(tmp_path / "b")
    assert info["status"] == "failed" and info["summary"] == {"error": "bad value"}
    run = Run.create(tmp_path / "d", "eval", {})
    with pytest.raises(RuntimeError), run.recording():
        raise RuntimeError("\n  ")
    assert read_run_info(tmp_path / "d")["summary"] == {"error": "RuntimeError"}  # never an empty error
    run = Run.create(tmp_path / "c", "eval", {})
    with run.recording():
        pass
    assert read_run_info(tmp_path / "c")["status"] == "running"  # success is the caller's to record


def test_a_run_that_failed_before_its_first_step_may_be_replaced(tmp_path, capsys):
    run = Run.create(tmp_path, "rl", {"lr": 1.0})
    run.finish("failed", error="bad data")
    again = Run.create(tmp_path, "rl", {"lr": 2.0})  # no --resume needed: nothing was logged
    assert "replacing a run that failed before its first step" in capsys.readouterr().err
    assert read_run_info(tmp_path)["config"] == {"lr": 2.0}
    again.log_metrics(1, loss=1.0)
    again.finish("failed", error="later")
    with pytest.raises(Pr1Error, match="pass --resume"):  # this one logged a step: it is kept
        Run.create(tmp_path, "rl", {"lr": 3.0})


def test_a_resumed_run_keeps_the_first_copy_of_replayed_steps(tmp_path):
    run = Run.create(tmp_path, "rl", {})
    for step in (1, 2, 3):
        run.log_metrics(step, loss=float(step))
        run.log_rollouts(step, [{"completion": f"c{step}"}])
    run.finish("interrupted")
    again = Run.create(tmp_path, "rl", {}, resume=True)  # resumed from a step-1 checkpoint: replays 2 and 3
    for step in (2, 3, 4):
        again.log_metrics(step, loss=10.0 * step)
        again.log_rollouts(step, [{"completion": f"again {step}"}])
    again.log_metrics(0, note="step 0 rows (jobs without steps) are always written")
    again.finish()
    assert [(r["step"], r.get("loss")) for r in read_metrics(tmp_path)] == [
        (1, 1.0),
        (2, 2.0),
        (3, 3.0),
        (4, 40.0),
        (0, None),
    ]
    rollouts = [r["completion"] for _, r in iter_jsonl(tmp_path / "rollouts.jsonl")]
    assert rollouts == ["c1", "c2", "c3", "again 4"]
