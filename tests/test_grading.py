import json
import threading
import time

import pytest
from orphans import outlives_its_killed_parent

from pr1 import verifier
from pr1.grading import answers_match, extract_answer, grade, last_boxed, to_number


def test_final_answer_line_wins_over_boxed():
    text = "so \\boxed{4}\nFinal Answer: 5"
    assert extract_answer(text) == ("5", "final_answer")


def test_last_final_answer_line():
    assert extract_answer("Final Answer: 1\nwait\nFinal Answer: 2.") == ("2", "final_answer")


def test_boxed_with_nested_braces():
    assert last_boxed("x \\boxed{\\frac{1}{2}} y \\boxed{\\sqrt{\\frac{3}{4}}}") == "\\sqrt{\\frac{3}{4}}"
    assert extract_answer("we get \\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}.") == (
        "\\left( 3, \\frac{\\pi}{2} \\right)",
        "boxed",
    )


def test_final_answer_with_boxed_or_dollars_inside():
    assert extract_answer("Final Answer: $\\boxed{12}$") == ("12", "final_answer")
    assert extract_answer("Final Answer: $\\frac{1}{2}$.") == ("\\frac{1}{2}", "final_answer")
    assert extract_answer("**Final Answer:** **42**") == ("42", "final_answer")


def test_no_answer():
    assert extract_answer("I give up") == (None, None)
    assert extract_answer("\\boxed{unclosed") == (None, None)
    g = grade("nothing here", "3")
    assert not g.correct and g.reason == "no answer" and g.answer_source is None


def test_an_answer_inside_a_path_does_not_count():
    """A response cut by the budget inside a block, whose first path wrote the right number, has no answer:
    a path is exploration, not the model's answer (METHOD.md §1)."""
    cut = "Let x be 3. <Parallel><Path>3+3=6\nFinal Answer: 6\n</Path><Path>Or 2*3 \\boxed{6"
    g = grade(cut, "6")
    assert not g.correct and g.pred is None and g.reason == "no answer"
    assert extract_answer(
        "<Parallel><Path>so \\boxed{6}</Path><Path>b</Path></Parallel>\n<Summary>s</Summary>"
    ) == (
        None,
        None,
    )
    # the main text and the summaries are read, in order: the last Final Answer line there wins
    par = "<Parallel><Path>Final Answer: 5\n</Path><Path>b</Path></Parallel>\n<Summary>Final Answer: 7\n</Summary>"
    assert extract_answer(par) == ("7", "final_answer")
    assert extract_answer(par + "Final Answer: 8") == ("8", "final_answer")
    assert extract_answer("\\boxed{4} " + par.replace("Final Answer: 7", "so 7")) == ("4", "boxed")


def test_pred_has_no_tags():
    text = "<Parallel><Path>a</Path><Path>b</Path></Parallel>\n<Summary>Final Answer: 12</Summary>"
    g = grade(text, "12")
    assert g.correct and g.pred == "12" and g.answer_source == "final_answer"
    assert grade("Final Answer: 12<Parallel><Path>x", "12").pred == "12"


@pytest.mark.parametrize(
    ("gold", "pred"),
    [
        ("025", "25"),  # AIME24: leading zeros
        (70, "70"),  # aime25_mathai: int
        (27.0, "27"),  # AMC23: float
        (-1.0, "-1"),
        ("1,080", "1080"),  # GSM8K: thousands commas
        ("18", "$18"),
        ("18", "\\$18.00"),
        ("18", "18 dollars"),
        ("50", "50\\%"),
        ("50", "50%"),
        ("106^\\circ", "106"),
        ("\\frac{14}{3}", "\\dfrac{14}{3}"),
        ("\\frac{14}{3}", "14/3"),
        ("0.5", "\\frac{1}{2}"),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3, \\frac{\\pi}{2})"),
        ("p - q", "p-q"),
        ("\\sqrt{2}/2", "\\frac{\\sqrt{2}}{2}"),
    ],
)
def test_equivalent(gold, pred):
    ok, reason = answers_match(gold, pred)
    assert ok, reason


@pytest.mark.parametrize(
    ("gold", "pred"),
    [
        ("025", "52"),
        (27.0, "27.5"),
        ("1,080", "108"),
        ("18", "18 5"),
        ("\\frac{14}{3}", "\\frac{3}{14}"),
        ("p - q", "q - p"),
    ],
)
def test_not_equivalent(gold, pred):
    ok, reason = answers_match(gold, pred)
    assert not ok and reason


def test_to_number():
    assert to_number("007") == 7
    assert to_number("1,234,567") == 1234567
    assert to_number("-3.50") == to_number("-3.5")
    assert to_number(True) is None
    assert to_number("5x") is None  # a variable is not a unit
    assert to_number("3, 5") is None


DEEP = "$9^{9^{9}}$"  # sympy would compute a 370-million-digit integer, in one C call no signal interrupts
HUGE = "1" * 200_000  # int() refuses it (Python's 4,300-digit limit)


def _warm() -> None:
    """Start the math-verify helper (its start-up is not part of a comparison's time)."""
    assert answers_match("x^2+1", "1+x^2") == (True, None)


def test_deep_latex_times_out_as_incorrect_on_the_main_thread():
    _warm()
    for gold, pred in (("5", DEEP), (DEEP, "5")):
        t = time.monotonic()
        ok, reason = answers_match(gold, pred, timeout=1)
        assert not ok and reason == "timeout: comparison took over 1s"
        assert time.monotonic() - t < 4  # the helper is killed; the next comparison starts a new one


def test_the_bound_holds_outside_the_main_thread_too():
    out = {}

    def work() -> None:
        out["deep"] = answers_match("5", DEEP, timeout=1)
        out["after"] = answers_match("x^2+1", "1+x^2", timeout=30)  # a fresh helper after the kill

    t = time.monotonic()
    th = threading.Thread(target=work)
    th.start()
    th.join(60)
    assert out["deep"][1].startswith("timeout") and out["after"] == (True, None)
    assert time.monotonic() - t < 10


def test_huge_integers_neither_raise_nor_hang():
    t = time.monotonic()
    assert to_number(HUGE) is None and to_number(f"\\frac{{{HUGE}}}{{3}}") is None  # left to math-verify
    assert to_number("1" * 4000) == int("1" * 4000)
    assert grade(f"Final Answer: {HUGE}", HUGE).correct  # the same digits
    assert not grade(f"Final Answer: {HUGE}", "5", timeout=3).correct
    assert not grade("Final Answer: 5", HUGE, timeout=3).correct
    assert time.monotonic() - t < 12


def test_extraction_is_linear_in_the_text():
    t = time.monotonic()
    assert last_boxed("\\boxed{7}" + "\\boxed{" * 100_000) == "7"  # unclosed boxes: one pass, not one each
    assert last_boxed("\\boxed{" * 100_000) is None
    assert extract_answer("\\boxed{" * 100_000 + " so \\boxed{3}") == ("3", "boxed")
    assert time.monotonic() - t < 2


def test_the_helper_outlives_the_thread_that_started_it():
    # the parent-death signal follows the thread that started a child: a worker that ends must not take the
    # helper with it (pr1.verifier starts it from a thread of its own)
    verifier.shutdown()
    worker = threading.Thread(target=_warm)
    worker.start()
    worker.join()
    pid = verifier._helper.proc.pid
    time.sleep(0.3)
    _warm()
    assert verifier._helper.proc.pid == pid


def test_the_math_verify_helper_dies_with_its_parent():
    code = (
        "from pr1.grading import answers_match; from pr1 import verifier; import time\n"
        "answers_match('x^2+1', '1+x^2'); print(verifier._helper.proc.pid, flush=True); time.sleep(60)"
    )
    assert not outlives_its_killed_parent(code)


def _grade_file(path, key, fix=lambda s: s):
    rows = [json.loads(line) for line in path.open()]
    return rows, [grade(fix(r[key]), r["answer"]) for r in rows]


def test_math500_gold_solutions_grade_correct(shared_data):
    rows, grades = _grade_file(shared_data / "math500.jsonl", "solution")
    assert all(g.correct for g in grades), [
        (r["answer"], g.pred) for r, g in zip(rows, grades, strict=False) if not g.correct
    ]
    assert {g.answer_source for g in grades} == {"boxed"}


def test_gsm8k_gold_solutions_grade_correct(shared_data):
    rows, grades = _grade_file(
        shared_data / "gsm8k_test.jsonl", "solution", lambda s: s.replace("#### ", "Final Answer: ")
    )
    assert all(g.correct for g in grades)


def test_mismatched_pairs_do_not_grade_correct(shared_data):
    rows = [json.loads(line) for line in (shared_data / "math500.jsonl").open()]
    shifted = [grade(a["solution"], b["answer"]) for a, b in zip(rows, rows[1:], strict=False)]
    wrong = sum(not g.correct for g in shifted)
    same = sum(a["answer"] == b["answer"] for a, b in zip(rows, rows[1:], strict=False))
    assert wrong >= len(shifted) - same - 5  # only pairs that really share an answer may match


@pytest.mark.parametrize(
    "name", ["aime24.jsonl", "aime25.jsonl", "aime25_mathai.jsonl", "amc23.jsonl", "dapo_math_17k_en.jsonl"]
)
def test_every_answer_type_of_the_shared_data(shared_data, name):
    rows = [json.loads(line) for line in (shared_data / name).open()][:300]
    for r in rows:
        gold = r["answer"]
        plain = str(int(float(gold)))
        assert grade(f"Final Answer: {plain}", gold).correct, gold
        assert grade(f"so \\boxed{{{plain}}}", gold).correct, gold
        assert not grade(f"Final Answer: {int(float(gold)) + 1}", gold).correct, gold
