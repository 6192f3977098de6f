"""Cold-start generation: the filter, the HTTP teacher (against a scripted in-test server), accounting, resume."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pr1.coldstart.generate import GenerateConfig, check_trace, generate, rejected_path
from pr1.coldstart.teachers import HttpTeacher, Reply, Request, SyntheticTeacher, TeacherError, make_teacher
from pr1.errors import Pr1Error
from pr1.jsonl import read_jsonl

GOOD = "Two ways.\n<Parallel><Path>\n2 + 3 = 5\n</Path><Path>\n3 + 2 = 5\n</Path></Parallel>\n<Summary>\nBoth give 5.\n</Summary>\nFinal Answer: 5"


# ----------------------------------------------------------------------------------------------- filter


def test_filter_keeps_every_valid_correct_trace_of_the_shared_sample(shared_data: Path) -> None:
    rows = read_jsonl(shared_data / "parallel_gsm8k_v2_partial.jsonl")
    assert len(rows) == 341
    rejected = {}
    for row in rows:
        reasons = check_trace(row["solution"], row["answer"], n_tokens=1000)
        if reasons:
            rejected[row["id"]] = reasons
    assert rejected == {475: ["unclosed at end: <Summary>"]}


def test_filter_reasons() -> None:
    assert check_trace(GOOD, "5") == []
    assert check_trace(GOOD, 5.0, n_tokens=4096) == []
    assert check_trace(GOOD, "6") == ["wrong answer: got 5"]
    assert check_trace(GOOD.replace("Final Answer: 5", "so five"), "5") == ["no answer"]
    assert check_trace(GOOD, "5", n_tokens=4097) == ["too long: 4097 tokens > 4096"]
    assert check_trace(GOOD, "5", n_tokens=600, max_length=512) == ["too long: 600 tokens > 512"]
    one_path = GOOD.replace("<Path>\n3 + 2 = 5\n</Path>", "")
    assert check_trace(one_path, "5") == ["block 1: 1 closed path(s), need at least 2"]
    assert check_trace(GOOD, "5", truncated=True) == ["truncated: the teacher hit --max-tokens"]


# ---------------------------------------------------------------------------------- a scripted server


class FakeServer:
    """An OpenAI-style `/v1/chat/completions` on 127.0.0.1. `failures` are statuses answered first (one per
    request, in order), with `error(status, headers)` as their message; then every request gets
    `reply(body)` as its message content."""

    def __init__(
        self,
        reply=lambda body: GOOD,  # noqa: ANN001
        failures: Sequence[int] = (),
        delay: float = 0.0,
        error=lambda status, headers: f"scripted failure {status}",  # noqa: ANN001
    ):
        self.reply, self.failures, self.delay, self.error = reply, list(failures), delay, error
        self.requests: list[tuple[dict, dict]] = []
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append((body, dict(self.headers)))
                    status = server.failures.pop(0) if server.failures else 200
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                time.sleep(server.delay)
                with server.lock:
                    server.in_flight -= 1
                if self.path != "/v1/chat/completions":
                    status, payload = 404, {"detail": "Not Found"}
                elif status == 200:
                    content = server.reply(body)
                    payload = {
                        "choices": [{"index": 0, "finish_reason": "stop", "message": {"content": content}}]
                    }
                else:
                    payload = {"error": {"message": server.error(status, dict(self.headers))}}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake_server() -> Iterator[type[FakeServer]]:
    servers: list[FakeServer] = []

    def start(*args: object, **kwargs: object) -> FakeServer:
        servers.append(FakeServer(*args, **kwargs))
        return servers[-1]

    yield start  # type: ignore[misc]
    for s in servers:
        s.close()


def _requests(n: int) -> list[Request]:
    return [
        Request(
            {"id": str(i), "problem": f"What is 2 + {i}?", "answer": "5"},
            0,
            [{"role": "user", "content": f"q{i}"}],
        )
        for i in range(n)
    ]


def test_http_teacher_retries_429_and_5xx_then_succeeds(fake_server) -> None:  # noqa: ANN001
    server = fake_server(failures=[429, 500, 503])
    teacher = HttpTeacher(server.url, "m", backoff=0.01, concurrency=1)
    results = dict(teacher.generate(_requests(2)))
    assert results == {0: Reply(GOOD), 1: Reply(GOOD)}
    assert len(server.requests) == 5
    body = server.requests[-1][0]
    assert body["model"] == "m" and body["messages"] == [{"role": "user", "content": "q1"}]
    assert body["max_tokens"] == 4096 and body["temperature"] == 0.6


def test_http_teacher_gives_up_after_the_retries(fake_server) -> None:  # noqa: ANN001
    server = fake_server(failures=[500] * 10)
    teacher = HttpTeacher(server.url, "m", backoff=0.01, max_retries=2, concurrency=1)
    with pytest.raises(Pr1Error, match=r"gave up after 3 attempts \(HTTP 500: scripted failure 500\)"):
        list(teacher.generate(_requests(1)))


def test_http_teacher_stops_on_a_client_error_with_the_servers_message(fake_server) -> None:  # noqa: ANN001
    server = fake_server(failures=[400])
    teacher = HttpTeacher(server.url, "m", backoff=0.01, concurrency=1)
    with pytest.raises(Pr1Error) as err:
        list(teacher.generate(_requests(3)))
    assert str(err.value) == f"teacher {server.url} answered HTTP 400: scripted failure 400"
    assert len(server.requests) == 1  # no retry on a 4xx


def test_http_teacher_connection_refused_is_retried_then_reported() -> None:
    teacher = HttpTeacher("http://127.0.0.1:9/v1", "m", backoff=0.01, max_retries=1, concurrency=1)
    with pytest.raises(
        Pr1Error, match=r"teacher http://127.0.0.1:9/v1: gave up after 2 attempts \(ConnectError"
    ):
        list(teacher.generate(_requests(1)))


def test_http_teacher_keeps_concurrency_requests_in_flight(fake_server) -> None:  # noqa: ANN001
    server = fake_server(delay=0.2)
    teacher = HttpTeacher(server.url, "m", concurrency=4)
    start = time.monotonic()
    assert len(list(teacher.generate(_requests(8)))) == 8
    assert server.max_in_flight == 4
    assert time.monotonic() - start < 1.2  # 2 waves of 0.2 s, not 8


def test_http_teacher_sends_the_key_only_in_the_header(fake_server, monkeypatch, tmp_path) -> None:  # noqa: ANN001
    monkeypatch.setenv("MY_TEACHER_KEY", "sk-secret-123")

    def wrong_on_p3(body: dict) -> str:
        return GOOD.replace("5", "7") if "What is 3 " in body["messages"][0]["content"] else GOOD

    server = fake_server(reply=wrong_on_p3)
    teacher = make_teacher(server.url, model="m", api_key_env="MY_TEACHER_KEY")
    cfg = GenerateConfig(teacher=server.url, out=tmp_path / "t.jsonl", source=_problem_file(tmp_path, 4))
    result = generate(cfg, teacher=teacher)
    assert server.requests and all(h["Authorization"] == "Bearer sk-secret-123" for _, h in server.requests)
    assert (result.kept, result.rejected) == (3, 1)
    for path in (cfg.out, rejected_path(cfg.out)):
        assert "sk-secret" not in path.read_text()


def test_a_server_that_echoes_the_key_never_gets_it_printed_or_written(
    fake_server, monkeypatch, tmp_path
) -> None:  # noqa: ANN001
    monkeypatch.setenv("MY_TEACHER_KEY", "sk-secret-123")
    echo = fake_server(failures=[401], error=lambda status, headers: f"bad key {headers['Authorization']}")
    teacher = make_teacher(echo.url, model="m", api_key_env="MY_TEACHER_KEY")
    with pytest.raises(Pr1Error) as err:
        list(teacher.generate(_requests(1)))
    assert str(err.value) == f"teacher {echo.url} answered HTTP 401: bad key Bearer <redacted>"
    parrot = fake_server(reply=lambda body: GOOD + " (your key: sk-secret-123)")
    cfg = GenerateConfig(teacher=parrot.url, out=tmp_path / "t.jsonl", source=_problem_file(tmp_path, 2))
    generate(cfg, teacher=make_teacher(parrot.url, model="m", api_key_env="MY_TEACHER_KEY"))
    written = cfg.out.read_text() + rejected_path(cfg.out).read_text()
    assert "<redacted>" in written and "sk-secret" not in written


def test_a_teachers_unbounded_answer_is_rejected_in_bounded_time(fake_server, monkeypatch, tmp_path) -> None:  # noqa: ANN001
    from pr1 import grading

    monkeypatch.setattr(grading, "DEFAULT_TIMEOUT", 1.0)
    answers = {"What is 0 ": "$9^{9^{9}}$", "What is 1 ": "1" * 200_000}

    def hostile(body: dict) -> str:
        question = body["messages"][0]["content"]
        answer = next((a for q, a in answers.items() if q in question), "5")
        return GOOD.replace("Final Answer: 5", f"Final Answer: {answer}")

    server = fake_server(reply=hostile)
    cfg = GenerateConfig(teacher=server.url, out=tmp_path / "t.jsonl", source=_problem_file(tmp_path, 3))
    start = time.monotonic()
    result = generate(cfg, teacher=make_teacher(server.url, model="m"))
    assert (result.kept, result.rejected) == (1, 2) and time.monotonic() - start < 20
    reasons = {r["id"]: r["reasons"] for r in read_jsonl(rejected_path(cfg.out))}
    assert reasons["p0"] == ["wrong answer: got 9^{9^{9}} (timeout: comparison took over 1s)"]
    assert reasons["p1"][0].startswith("wrong answer: got 111")


def test_teacher_spec_errors() -> None:
    with pytest.raises(Pr1Error, match="needs --teacher-model"):
        make_teacher("http://user:pw@localhost:8000/v1")
    with pytest.raises(Pr1Error, match="expected an http"):
        make_teacher("gpt-4o")
    teacher = make_teacher("http://user:pw@localhost:8000/v1/", model="m")
    assert teacher.name == "m @ http://localhost:8000/v1"  # credentials never reach rows or messages


# ---------------------------------------------------------------------------------- generate: accounting


def _problem_file(tmp_path: Path, n: int) -> str:
    path = tmp_path / "problems.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": f"p{i}", "problem": f"What is {i} + 5 - {i}?", "answer": "5"}) + "\n"
            for i in range(n)
        )
    )
    return str(path)


class ScriptedTeacher:
    """Replies by problem id: a good trace, a wrong one, a malformed one, or a TeacherError."""

    name = "scripted"

    def __init__(self, script: dict[str, str | TeacherError], interrupt_after: int | None = None):
        self.script, self.interrupt_after = script, interrupt_after
        self.asked: list[tuple[str, int]] = []

    def generate(self, requests: Sequence[Request]) -> Iterator[tuple[int, Reply | TeacherError]]:
        for i, r in reversed(list(enumerate(requests))):  # out of order, like a concurrent teacher
            if self.interrupt_after is not None and len(self.asked) == self.interrupt_after:
                raise KeyboardInterrupt
            self.asked.append((r.row["id"], r.sample))
            reply = self.script.get(r.row["id"], GOOD)
            yield i, reply if isinstance(reply, TeacherError) else Reply(f"<think>hmm</think>{reply}")


def test_generate_accounts_for_every_problem(tmp_path: Path) -> None:
    script = {
        "p1": GOOD.replace("Final Answer: 5", "Final Answer: 6"),
        "p2": GOOD.replace("</Summary>", ""),
        "p3": TeacherError("the reply has no text content"),
    }
    cfg = GenerateConfig(
        teacher="scripted",
        out=tmp_path / "out.jsonl",
        source=_problem_file(tmp_path, 5),
        samples=2,
    )
    result = generate(cfg, teacher=ScriptedTeacher(script))
    kept, rejected = read_jsonl(cfg.out), read_jsonl(rejected_path(cfg.out))
    assert (result.kept, result.rejected, len(kept), len(rejected)) == (4, 6, 4, 6)
    assert sorted((r["id"], r["sample"]) for r in kept + rejected) == [
        (f"p{i}", s) for i in range(5) for s in (0, 1)
    ]
    for row in kept:
        assert row["trace"] == GOOD  # the <think> part is gone
        assert row["teacher"] == "scripted" and row["answer"] == "5" and row["problem"].startswith("What is")
        assert row["n_blocks"] == 1 and row["paths_per_block"] == [2] and len(row["parallel_positions"]) == 1
        assert (
            row["total_chars"] == len(GOOD) and 20 < row["trace_tokens"] < 60 and row["prompt_tokens"] > 100
        )
    reasons = {r["id"]: r["reasons"] for r in rejected}
    assert reasons["p1"] == ["wrong answer: got 6"]
    assert reasons["p2"] == ["unclosed at end: <Summary>"]
    assert reasons["p3"] == ["teacher error: the reply has no text content"]
    assert all(r["trace"] is None for r in rejected if r["id"] == "p3")


def test_resume_after_an_interrupt_loses_and_repeats_nothing(tmp_path: Path) -> None:
    cfg = GenerateConfig(teacher="scripted", out=tmp_path / "out.jsonl", source=_problem_file(tmp_path, 12))
    script = {"p4": GOOD.replace("5", "9")}
    with pytest.raises(KeyboardInterrupt):
        generate(cfg, teacher=ScriptedTeacher(script, interrupt_after=5))
    done = read_jsonl(cfg.out) + read_jsonl(rejected_path(cfg.out))
    assert len(done) == 5
    with cfg.out.open("a") as f:  # a writer killed mid-line
        f.write('{"id": "p0", "sam')
    second = ScriptedTeacher(script)
    result = generate(cfg, teacher=second)
    assert result.skipped == 5 and result.kept + result.rejected == 7
    assert {i for i, _ in second.asked}.isdisjoint(d["id"] for d in done)
    kept, rejected = read_jsonl(cfg.out), read_jsonl(rejected_path(cfg.out))
    ids = [r["id"] for r in kept + rejected]
    assert sorted(ids) == sorted(f"p{i}" for i in range(12))  # no duplicates, no losses
    assert [r["id"] for r in rejected] == ["p4"]
    assert generate(cfg, teacher=ScriptedTeacher(script)).skipped == 12  # a third run has nothing to do


def test_synthetic_teacher_end_to_end(tmp_path: Path) -> None:
    cfg = GenerateConfig(
        teacher="synthetic", out=tmp_path / "syn.jsonl", source="synthetic", limit=20, seed=7
    )
    result = generate(cfg)
    assert (result.kept, result.rejected) == (20, 0)
    rows = read_jsonl(cfg.out)
    assert [r["id"] for r in rows] == [f"synthetic-7-{i}" for i in range(20)]
    assert all(r["teacher"] == "synthetic" and r["n_blocks"] >= 1 for r in rows)


def test_synthetic_teacher_at_an_easy_difficulty(tmp_path: Path) -> None:
    cfg = GenerateConfig(
        teacher="synthetic", out=tmp_path / "easy.jsonl", source="synthetic", limit=10, difficulty="one-step"
    )
    assert generate(cfg).kept == 10
    rows = read_jsonl(cfg.out)
    assert [r["id"] for r in rows] == [f"synthetic-one-step-0-{i}" for i in range(10)]
    assert all(re.fullmatch(r"\D*\d [+-] \d\D*", r["problem"]) for r in rows)
    with pytest.raises(Pr1Error, match="expected one of one-step, two-step, short-word, word"):
        generate(
            GenerateConfig(teacher="synthetic", out=tmp_path / "x.jsonl", source="synthetic", difficulty="x")
        )
    with pytest.raises(Pr1Error, match="only the synthetic source has difficulties"):
        generate(GenerateConfig(teacher="synthetic", out=tmp_path / "y.jsonl", difficulty="one-step"))


def test_synthetic_teacher_refuses_other_problems(tmp_path: Path) -> None:
    cfg = GenerateConfig(teacher="synthetic", out=tmp_path / "x.jsonl", source=_problem_file(tmp_path, 2))
    with pytest.raises(Pr1Error, match="only for its own problems"):
        generate(cfg, teacher=SyntheticTeacher())
    with pytest.raises(Pr1Error, match="--limit"):
        generate(GenerateConfig(teacher="synthetic", out=tmp_path / "y.jsonl", source="synthetic"))


def test_bad_options_name_the_flag(tmp_path: Path) -> None:
    from pr1.commands.data import GENERATE_FLAGS
    from pr1.settings import resolve

    def command_line(**flags: object) -> GenerateConfig:
        return resolve(GenerateConfig, flags, flags=GENERATE_FLAGS)

    with pytest.raises(Pr1Error, match="--samples 0: must be at least 1"):
        command_line(teacher="synthetic", out=tmp_path / "a.jsonl", samples=0)
    with pytest.raises(Pr1Error, match="expected a .jsonl file name"):
        command_line(teacher="synthetic", out=tmp_path / "a.txt")
    bad = tmp_path / "b.jsonl"
    bad.write_text('{"id": "p0", "sample": 0}\nnot json\n{"id": "p1"}\n')
    with pytest.raises(Pr1Error, match=r"b.jsonl:2: invalid JSON"):
        generate(GenerateConfig(teacher="synthetic", out=bad, source="synthetic", limit=3))


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """On a busy 2-core machine, one intra-op thread is several times faster than two spinning ones."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")
def test_local_teacher_batches_with_left_padding() -> None:
    """Greedy replies are the same in a batch of prompts of different lengths as one by one, and stop at EOS."""
    from pr1.coldstart.teachers import LocalTeacher

    teacher = LocalTeacher("smollm2-135m", max_tokens=9, temperature=0, batch_size=3, seed=0)
    questions = ["What is 2+3?", "Write a long story about a dragon who learns to count.", "Hi"]
    requests = [Request({"id": str(i)}, 0, [{"role": "user", "content": q}]) for i, q in enumerate(questions)]
    batched = dict(teacher.generate(requests))
    teacher.batch_size = 1
    assert dict(teacher.generate(requests)) == batched
    assert batched[0] == Reply("2 + 3 = 5", truncated=False)  # ended by the model, EOS not in the text
    assert batched[1].truncated and batched[1].text  # cut by the 9-token budget
    assert teacher.name == "hf:smollm2-135m"
