from types import SimpleNamespace

import pytest

from pr1.rewards import Schedule, accuracy, make_reward_func, parallel_accuracy, tiered

PAR = "<Parallel><Path>a</Path><Path>b</Path></Parallel>\n<Summary>s</Summary>\nFinal Answer: 6"
SEQ = "six\nFinal Answer: 6"
BROKEN = "<Parallel><Path>a</Path></Parallel>\n<Summary>s</Summary>\nFinal Answer: 6"


def test_accuracy_values():
    assert accuracy(True) == 1.0 and accuracy(False) == -1.0


@pytest.mark.parametrize(
    ("correct", "n", "valid", "value"),
    [
        (True, 1, True, 1.2),
        (True, 3, True, 1.2),
        (True, 0, True, 1.0),
        (True, 1, False, -1.0),
        (False, 1, True, -1.0),
        (False, 0, True, -1.0),
    ],
)
def test_tiered_values(correct, n, valid, value):
    assert tiered(correct, n, valid) == value


@pytest.mark.parametrize(
    ("correct", "n", "valid", "value"),
    [(True, 1, True, 1.0), (True, 0, True, -1.0), (True, 2, False, -1.0), (False, 1, True, -1.0)],
)
def test_parallel_accuracy_values(correct, n, valid, value):
    assert parallel_accuracy(correct, n, valid) == value


def test_alternating_schedule_boundaries():
    s = Schedule("alternating")
    phases = {step: s.active(step) for step in range(1, 31)}
    tiered_steps = [k for k, v in phases.items() if v == "tiered"]
    assert tiered_steps == [9, 10, 19, 20, 29, 30]
    assert phases[1] == phases[8] == phases[11] == "accuracy"


def test_alternating_schedule_is_configurable():
    s = Schedule("alternating", window=4, accuracy_steps=3)
    assert [s.active(k) for k in range(1, 9)] == ["accuracy"] * 3 + ["tiered"] + ["accuracy"] * 3 + ["tiered"]
    with pytest.raises(ValueError):
        Schedule("alternating", window=4, accuracy_steps=5)
    with pytest.raises(ValueError):
        Schedule("nope")


def test_scaffold_switches_to_accuracy_after_switch_step():
    s = Schedule("scaffold", switch_step=200)
    assert s.active(199) == "tiered" and s.active(200) == "tiered"
    assert s.active(198) == "accuracy"
    assert all(s.active(k) == "accuracy" for k in range(201, 260))


def test_fixed_schedules():
    for name in ("accuracy", "tiered", "parallel-accuracy"):
        assert {Schedule(name).active(k) for k in range(1, 50)} == {name}


def test_trl_reward_func_reads_tagged_text_and_trainer_state():
    f = make_reward_func("alternating")
    # what TRL shows (special tokens dropped) vs what the rollout passes in `tagged_text`
    stripped = ["ab\ns\nFinal Answer: 6"] * 3
    tagged = [PAR, SEQ, BROKEN]
    at_step_1 = f(
        prompts=["p"] * 3,
        completions=stripped,
        tagged_text=tagged,
        answer=["6"] * 3,
        trainer_state=SimpleNamespace(global_step=0),
    )
    assert at_step_1 == [1.0, 1.0, 1.0]  # accuracy phase
    at_step_9 = f(
        prompts=["p"] * 3,
        completions=stripped,
        tagged_text=tagged,
        answer=["6"] * 3,
        trainer_state=SimpleNamespace(global_step=8),
    )
    assert at_step_9 == [1.2, 1.0, -1.0]  # tiered phase: parallel, sequential, malformed


def test_trl_reward_func_without_tagged_text_uses_completions():
    f = make_reward_func("tiered")
    out = f(
        completions=[
            [{"role": "assistant", "content": PAR}],
            [{"role": "assistant", "content": "Final Answer: 7"}],
        ],
        answer=["6", "6"],
    )
    assert out == [1.2, -1.0]
    assert f.__name__ == "tiered_reward"
    with pytest.raises(KeyError):
        f(completions=[PAR])


OPEN_SUMMARY = "<Parallel><Path>a</Path><Path>b</Path></Parallel>\n<Summary>so 6\nFinal Answer: 6"


def test_format_rules_choose_the_checker_of_the_rewards():
    """The reference code's checker accepts a summary left open at the end; pr1's rules do not (METHOD.md §1)."""
    state = SimpleNamespace(global_step=0)
    strict = make_reward_func("tiered")(completions=[OPEN_SUMMARY], answer=["6"], trainer_state=state)
    lenient = make_reward_func(Schedule("tiered", format_rules="reference"))(
        completions=[OPEN_SUMMARY], answer=["6"], trainer_state=state
    )
    assert strict == [-1.0] and lenient == [1.2]
    with pytest.raises(ValueError, match="unknown format rules 'paper'"):
        Schedule("tiered", format_rules="paper")
