"""Teachers that write cold-start traces: an OpenAI-compatible endpoint, a local transformers model, or pr1's
synthetic generator.

One interface: `teacher.generate(requests)` yields `(index, reply)` for each request as it finishes, in any
order, where `reply` is a `Reply` or a `TeacherError` (a failure of that one request, which becomes a
rejection). Anything that would fail every request (a bad URL, model name or key, a server that stays down)
raises a `Pr1Error` instead and stops the run; what finished before is already on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import os
import queue
import random
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from pr1.errors import Pr1Error


@dataclass
class Request:
    row: dict[str, Any]  # the problem: id, problem, answer, ...
    sample: int
    messages: list[dict[str, str]]  # one user turn


@dataclass
class Reply:
    text: str
    truncated: bool = False  # stopped by the token budget, not by the model


class TeacherError(Exception):
    """One request failed in a way that says nothing about the others (e.g. a reply with no content)."""


class Teacher(Protocol):
    name: str  # recorded in every row

    def generate(self, requests: Sequence[Request]) -> Iterator[tuple[int, Reply | TeacherError]]: ...


def make_teacher(
    spec: str,
    *,
    model: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    max_tokens: int = 4096,
    temperature: float = 0.6,
    concurrency: int = 16,
    seed: int = 0,
    engine: str = "auto",
) -> Teacher:
    """`--teacher`: `http(s)://host:port/v1` (with `--teacher-model`), `hf:NAME_OR_PATH`, or `synthetic`."""
    check_teacher_spec(spec, model)
    if spec == "synthetic":
        return SyntheticTeacher()
    if spec.startswith("hf:"):
        return LocalTeacher(
            spec[3:],
            max_tokens=max_tokens,
            temperature=temperature,
            batch_size=concurrency,
            seed=seed,
            engine=engine,
        )
    return HttpTeacher(
        spec,
        model,
        api_key=os.environ.get(api_key_env) or None,
        max_tokens=max_tokens,
        temperature=temperature,
        concurrency=concurrency,
    )


def check_teacher_spec(spec: str, model: str | None) -> None:
    """Fail fast on a `--teacher` (with its `--teacher-model`) that cannot work, before loading anything."""
    if spec == "synthetic" or (spec.startswith("hf:") and len(spec) > 3):
        return
    if not spec.startswith(("http://", "https://")):
        raise Pr1Error(
            f"--teacher {spec!r}: expected an http(s)://host:port/v1 endpoint, hf:MODEL or synthetic"
        )
    if not model:
        raise Pr1Error(
            f"--teacher {_public_url(spec)} needs --teacher-model (the model name the server serves)"
        )


def _public_url(url: str) -> str:
    """The URL without any user:password part, for messages and rows."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", "")).rstrip("/")


# ------------------------------------------------------------------------------------------ HTTP teacher


class HttpTeacher:
    """`POST {base_url}/chat/completions` with one user message, `concurrency` requests in flight.

    429, 5xx, timeouts and connection errors are retried with exponential back-off (honouring a numeric
    `Retry-After`); after `max_retries` retries, or on any other 4xx, the run stops with a Pr1Error naming
    the endpoint, the status and the server's message. The API key goes only into the Authorization header,
    and is cut out of everything the server sends back (a server may echo it in an error or a reply).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        max_tokens: int = 4096,
        temperature: float = 0.6,
        concurrency: int = 16,
        timeout: float = 900.0,
        max_retries: int = 6,
        backoff: float = 1.0,
    ):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.public_url = _public_url(base_url)
        self.name = f"{model} @ {self.public_url}"
        self.model = model
        self._api_key = api_key
        self.max_tokens, self.temperature = max_tokens, temperature
        self.concurrency, self.timeout = concurrency, timeout
        self.max_retries, self.backoff = max_retries, backoff

    def generate(self, requests: Sequence[Request]) -> Iterator[tuple[int, Reply | TeacherError]]:
        # The requests run on an event loop in a daemon thread; results come back through a queue, so the
        # caller writes each row as soon as it is done, and closing this generator (Ctrl-C, a fatal error)
        # cancels whatever is still in flight.
        results: queue.Queue = queue.Queue()
        loop = asyncio.new_event_loop()
        task = loop.create_task(self._run_all(requests, results))
        thread = threading.Thread(target=_run_loop, args=(loop, task), daemon=True)
        thread.start()
        try:
            for _ in range(len(requests)):
                item = results.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            loop.call_soon_threadsafe(task.cancel)  # a no-op once the task is done
            thread.join(timeout=10)
            if not thread.is_alive():
                loop.close()

    async def _run_all(self, requests: Sequence[Request], results: queue.Queue) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        timeout = httpx.Timeout(self.timeout, connect=30.0)
        slots = asyncio.Semaphore(self.concurrency)
        async with httpx.AsyncClient(headers=headers, limits=limits, timeout=timeout) as client:

            async def one(i: int, request: Request) -> None:
                async with slots:
                    try:
                        reply = await self._complete(client, request)
                        results.put((i, Reply(self.redact(reply.text), reply.truncated)))
                    except TeacherError as e:
                        results.put((i, TeacherError(self.redact(str(e)))))
                    except Pr1Error as e:  # fatal: stops the run
                        results.put(Pr1Error(self.redact(str(e))))
                    except Exception as e:  # a bug: stops the run with its traceback
                        results.put(e)

            await asyncio.gather(*(one(i, r) for i, r in enumerate(requests)))

    def redact(self, text: str) -> str:
        """`text` without the API key's value."""
        return text.replace(self._api_key, "<redacted>") if self._api_key else text

    async def _complete(self, client: Any, request: Request) -> Reply:
        import httpx

        body = {
            "model": self.model,
            "messages": request.messages,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        problem = ""
        for attempt in range(self.max_retries + 1):
            retry_after = None
            try:
                response = await client.post(self.url, json=body)
            except httpx.TransportError as e:  # connection refused or reset, timeouts
                problem = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            else:
                status = response.status_code
                if status < 400:
                    return _parse_reply(response)
                problem = f"HTTP {status}: {_server_message(response)}"
                if status != 429 and status < 500:
                    raise Pr1Error(f"teacher {self.public_url} answered {problem}")
                retry_after = _retry_after(response)
            if attempt == self.max_retries:
                break
            delay = retry_after if retry_after is not None else self.backoff * 2**attempt
            await asyncio.sleep(min(delay, 60.0) * random.uniform(0.8, 1.0))
        raise Pr1Error(
            f"teacher {self.public_url}: gave up after {self.max_retries + 1} attempts ({problem})"
        )


def _run_loop(loop: asyncio.AbstractEventLoop, task: asyncio.Task) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        loop.run_until_complete(task)


def _parse_reply(response: Any) -> Reply:
    try:
        choice = response.json()["choices"][0]
        text = choice["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError):
        raise TeacherError(f"unexpected response: {response.text[:200]!r}") from None
    if not isinstance(text, str):
        raise TeacherError("the reply has no text content")
    return Reply(text, truncated=isinstance(choice, dict) and choice.get("finish_reason") == "length")


def _server_message(response: Any) -> str:
    """The error message from an OpenAI-style ({"error": {"message"}}) or FastAPI-style ({"detail"}) body."""
    try:
        data = response.json()
    except (ValueError, RecursionError):
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(data, dict):
        err = data.get("error")
        msg = (
            err.get("message") if isinstance(err, dict) else err or data.get("detail") or data.get("message")
        )
        if msg:
            return str(msg)[:300]
    return str(data)[:300]


def _retry_after(response: Any) -> float | None:
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None


# ----------------------------------------------------------------------------------------- local model


class LocalTeacher:
    """A local model (`hf:smollm2-135m`, `hf:PATH`, `hf:org/name`) sampled by pr1's rollout engine in free mode
    (one causal stream: the model writes every tag itself; on `engine` vllm or hf, `auto` as
    `pr1.rollout.engines` picks), `batch_size` prompts at a time, with per-request seeds: a reply does not
    depend on what else is in the batch."""

    def __init__(
        self,
        name: str,
        *,
        max_tokens: int,
        temperature: float,
        batch_size: int,
        seed: int,
        engine: str = "auto",
    ) -> None:
        from pr1.rollout import RolloutConfig
        from pr1.rollout.engines import pick_engine, vllm_engine

        self.name = f"hf:{name}"
        self.config = RolloutConfig(
            mode="free",
            max_tokens=max_tokens,
            temperature=temperature,
            seed=seed,
            rollout_batch=batch_size,
            engine=engine,
        )
        if pick_engine(self.config)[0] == "vllm":
            self.engine = vllm_engine(name, None, self.config)
        else:
            from pr1.models import load_model
            from pr1.rollout import RolloutEngine

            self.engine = RolloutEngine(*load_model(name), self.config)

    @property
    def batch_size(self) -> int:
        return self.config.rollout_batch

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self.config = dataclasses.replace(self.config, rollout_batch=value)

    def generate(self, requests: Sequence[Request]) -> Iterator[tuple[int, Reply | TeacherError]]:
        for start in range(0, len(requests), self.batch_size):
            batch = requests[start : start + self.batch_size]
            self.engine.config = self.config
            keys = [_request_key(r) for r in batch]
            trajectories = self.engine.generate([r.messages for r in batch], sample_keys=keys)
            for j, t in enumerate(trajectories):
                yield start + j, Reply(t.text, truncated=t.truncated)


def _request_key(request: Request) -> int:
    """A request's randomness key: its row id and sample number (so its reply is the same in any batch)."""
    digest = hashlib.blake2b(f"{request.row.get('id')}\0{request.sample}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


# ------------------------------------------------------------------------------------- synthetic teacher


class SyntheticTeacher:
    """pr1's own generator (`synthetic.write_trace`); it answers only problems from `--source synthetic`."""

    name = "synthetic"

    def generate(self, requests: Sequence[Request]) -> Iterator[tuple[int, Reply | TeacherError]]:
        from pr1.coldstart.synthetic import DEFAULT_DIFFICULTY, make_problem, write_trace

        for i, request in enumerate(requests):
            row = request.row
            if "seed" not in row or "index" not in row:
                raise Pr1Error(
                    f"--teacher synthetic writes traces only for its own problems (--source synthetic); "
                    f"problem {row.get('id')!r} is not one"
                )
            difficulty = str(row.get("difficulty", DEFAULT_DIFFICULTY))
            problem = make_problem(int(row["seed"]), int(row["index"]), difficulty)
            if problem.text != row["problem"]:
                raise Pr1Error(
                    f"problem {row['id']!r} is not synthetic problem {row['index']} of seed {row['seed']}"
                    + (f" at difficulty {difficulty}" if "difficulty" in row else "")
                )
            yield i, Reply(write_trace(problem, request.sample))
