"""`pr1 data generate`: the paper's Algorithm 1. Prompt a teacher with the parallel-thinking instruction on
each problem, keep only what follows a `</think>`, and keep a trace iff it is format-valid, its final answer
is correct, and prompt + trace fit in `max_length` tokens.

Kept rows go to FILE, rejected ones (with their reasons) to FILE.rejected.jsonl, one line each as soon as
it is judged. A rerun with the same FILE skips every (id, sample) already in either file. One process at a
time writes FILE (FILE.lock, `pr1.files.WriterLock`): a second run on the same FILE is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from pr1.coldstart.synthetic import DEFAULT_DIFFICULTY, DIFFICULTIES, synthetic_problems
from pr1.coldstart.teachers import Reply, Request, Teacher, TeacherError, check_teacher_spec, make_teacher
from pr1.embedded import EMBEDDED_MODEL
from pr1.errors import Pr1Error
from pr1.files import WriterLock
from pr1.format import TAGS, stats, strip_think, validate
from pr1.grading import grade
from pr1.jsonl import JsonlWriter, iter_jsonl
from pr1.progress import progress_bar
from pr1.prompts import build_messages, load_template
from pr1.rollout.config import ENGINES
from pr1.settings import SettingError, Settings, invalid, setting


@dataclass
class GenerateConfig(Settings):
    teacher: str | None = setting(
        None, "http(s)://HOST:PORT/v1 (OpenAI-compatible), hf:MODEL_OR_PATH, or synthetic."
    )
    out: Path | None = setting(None, "Kept traces (.jsonl); rejected ones go to OUT.rejected.jsonl.")
    source: str = setting("gsm8k-train", "Problems: a dataset name, a .jsonl/.parquet file, or synthetic.")
    limit: int | None = setting(None, "Use the first N problems (synthetic: make N).", min=1)
    samples: int = setting(1, "Traces per problem.", min=1)
    concurrency: int = setting(16, "Requests in flight (HTTP) or batch size (hf:).", min=1)
    prompt_file: str | None = setting(
        None, "Instruction template with {problem}.", shown="pr1's parallel prompt"
    )
    max_tokens: int = setting(4096, "The teacher's generation budget per trace.", min=1)
    max_length: int = setting(4096, "Keep only traces whose prompt + trace fit in N tokens.", min=1)
    temperature: float = setting(0.6, "Sampling temperature (0: greedy).", min=0)
    teacher_model: str | None = setting(None, "Model name to request from an HTTP teacher.")
    api_key_env: str = setting(
        "OPENAI_API_KEY", "Environment variable holding the HTTP teacher's API key (optional)."
    )
    tokenizer: str = setting(EMBEDDED_MODEL, "Tokenizer that counts --max-length tokens.")
    seed: int = setting(0, "Seed of --source synthetic and of local sampling.")
    engine: str = setting(
        "auto", "The rollout engine an hf: teacher samples with (pr1.rollout.engines).", choices=ENGINES
    )
    difficulty: str = setting(DEFAULT_DIFFICULTY, "Problems of --source synthetic.", choices=DIFFICULTIES)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.teacher:
            raise SettingError("{teacher:name} is required", teacher=None)
        if self.out is None:
            raise SettingError("{out:name} is required", out=None)
        self.out = Path(self.out)
        if self.out.suffix != ".jsonl":
            raise invalid("out", str(self.out), "expected a .jsonl file name")
        if self.difficulty != DEFAULT_DIFFICULTY and self.source != "synthetic":
            raise invalid("difficulty", self.difficulty, "only the synthetic source has difficulties")


@dataclass
class GenerateResult:
    kept: int  # in this run
    rejected: int
    skipped: int  # already done by an earlier run
    out: Path
    rejected_out: Path


def rejected_path(out: str | Path) -> Path:
    """FILE.jsonl -> FILE.rejected.jsonl"""
    out = Path(out)
    return out.with_name(f"{out.stem}.rejected{out.suffix or '.jsonl'}")


class TokenCounter:
    """Token counts with a model's tokenizer, the six tags counted as one token each (as after SFT)."""

    def __init__(self, name: str):
        from pr1.models import load_tokenizer

        self.tokenizer = load_tokenizer(name)
        missing = [t for t in TAGS if t not in self.tokenizer.get_vocab()]
        if missing:
            self.tokenizer.add_special_tokens(
                {"extra_special_tokens": missing}, replace_extra_special_tokens=False
            )

    def prompt(self, messages: list[dict[str, str]]) -> int:
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return self.text(text)

    def text(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])


def check_trace(
    trace: str,
    answer: Any,
    *,
    n_tokens: int | None = None,
    max_length: int = 4096,
    truncated: bool = False,
) -> list[str]:
    """Why `trace` must not be kept (empty list = keep): format errors, "no answer", "wrong answer: got X",
    "too long: N tokens > L", "truncated: ..."."""
    reasons = validate(trace)
    g = grade(trace, answer)
    if g.pred is None:
        reasons.append("no answer")
    elif not g.correct:
        detail = f" ({g.reason})" if g.reason and g.reason != "wrong answer" else ""
        reasons.append(f"wrong answer: got {g.pred}{detail}")
    if n_tokens is not None and n_tokens > max_length:
        reasons.append(f"too long: {n_tokens} tokens > {max_length}")
    if truncated:
        reasons.append("truncated: the teacher hit --max-tokens")
    return reasons


def trace_stats(trace: str) -> dict[str, Any]:
    s = stats(trace)
    return {
        "n_blocks": s.n_blocks,
        "paths_per_block": s.paths_per_block,
        "parallel_positions": [round(p, 4) for p in s.parallel_positions],
        "main_chars": s.main_chars,
        "path_chars": s.path_chars,
        "summary_chars": s.summary_chars,
        "total_chars": s.total_chars,
    }


def load_source(cfg: GenerateConfig) -> list[dict[str, Any]]:
    if cfg.source == "synthetic":
        if cfg.limit is None:
            raise Pr1Error("--source synthetic makes its own problems: say how many with --limit")
        return synthetic_problems(cfg.limit, seed=cfg.seed, difficulty=cfg.difficulty)
    from pr1.datasets import load_problems

    return load_problems(cfg.source, limit=cfg.limit)


def _done_keys(path: Path) -> set[tuple[str, int]]:
    """(id, sample) of every row already in `path` (a malformed line stops with its line number)."""
    keys = set()
    for lineno, row in iter_jsonl(path):
        row_id, sample = row.get("id"), row.get("sample", 0)
        if not isinstance(sample, int) or isinstance(sample, bool) or isinstance(row_id, (dict, list)):
            raise Pr1Error(
                f"{path}:{lineno}: expected an 'id' and an integer 'sample' (a row of pr1 data generate)"
            )
        keys.add((str(row_id), sample))
    return keys


def lock_path(out: str | Path) -> Path:
    """FILE.jsonl -> FILE.jsonl.lock, held while a run writes FILE."""
    out = Path(out)
    return out.with_name(f"{out.name}.lock")


def generate(
    cfg: GenerateConfig, *, teacher: Teacher | None = None, console: Console | None = None
) -> GenerateResult:
    """Run (or resume) a generation; `teacher` overrides `cfg.teacher` (tests, library use). Refused while
    another process writes `cfg.out`."""
    if teacher is None:
        check_teacher_spec(cfg.teacher, cfg.teacher_model)
    if cfg.out.is_dir():
        raise Pr1Error(f"--out {cfg.out}: is a folder, expected a .jsonl file name")
    with WriterLock.acquire(lock_path(cfg.out), str(cfg.out)):
        return _generate(cfg, teacher, console or Console(stderr=True))


def _generate(cfg: GenerateConfig, teacher: Teacher | None, console: Console) -> GenerateResult:
    template = load_template(cfg.prompt_file)
    problems = load_source(cfg)
    rej_out = rejected_path(cfg.out)
    with JsonlWriter(cfg.out) as kept_w, JsonlWriter(rej_out) as rej_w:  # opening repairs a torn last line
        kept_before = _done_keys(cfg.out)
        done = kept_before | _done_keys(rej_out)
        todo = [
            Request(row, s, build_messages(row["problem"], template))
            for row in problems
            for s in range(cfg.samples)
            if (str(row["id"]), s) not in done
        ]
        total = len(problems) * cfg.samples
        skipped = total - len(todo)
        if skipped:
            console.print(
                f"resuming {cfg.out}: {skipped} of {total} already done, {len(todo)} to go", soft_wrap=True
            )
        if not todo:
            return GenerateResult(0, 0, skipped, cfg.out, rej_out)
        teacher = teacher or make_teacher(
            cfg.teacher,
            model=cfg.teacher_model,
            api_key_env=cfg.api_key_env,
            max_tokens=cfg.max_tokens,
            temperature=cfg.temperature,
            concurrency=cfg.concurrency,
            seed=cfg.seed,
            engine=cfg.engine,
        )
        counter = TokenCounter(cfg.tokenizer)
        kept = rejected = 0
        with progress_bar(console, "rate") as progress:
            task = progress.add_task("generating", total=total, completed=skipped, rate="")
            for i, reply in teacher.generate(todo):
                row, reasons = judge(todo[i], reply, teacher.name, counter, cfg.max_length)
                if reasons:
                    rej_w.write({**row, "reasons": reasons})
                    rejected += 1
                else:
                    kept_w.write(row)
                    kept += 1
                n_kept = len(kept_before) + kept
                rate = n_kept / (len(done) + kept + rejected)
                progress.update(task, advance=1, rate=f"kept {n_kept} ({rate:.1%})")
    console.print(
        f"kept {kept} and rejected {rejected} of {len(todo)} new traces"
        + (f" ({skipped} done before)" if skipped else "")
        + f": {cfg.out}, {rej_out}",
        soft_wrap=True,
    )
    return GenerateResult(kept, rejected, skipped, cfg.out, rej_out)


def judge(
    request: Request, reply: Reply | TeacherError, teacher: str, counter: TokenCounter, max_length: int
) -> tuple[dict[str, Any], list[str]]:
    """The output row for one reply and the reasons to reject it (empty: keep)."""
    row = request.row
    base = {"id": row["id"], "sample": request.sample, "problem": row["problem"], "answer": row["answer"]}
    if isinstance(reply, TeacherError):
        return {**base, "trace": None, "teacher": teacher}, [f"teacher error: {reply}"]
    trace = strip_think(reply.text)
    prompt_tokens, trace_tokens = counter.prompt(request.messages), counter.text(trace)
    reasons = check_trace(
        trace,
        row["answer"],
        n_tokens=prompt_tokens + trace_tokens,
        max_length=max_length,
        truncated=reply.truncated,
    )
    out = {**base, "trace": trace, "teacher": teacher, **trace_stats(trace)}
    return {**out, "prompt_tokens": prompt_tokens, "trace_tokens": trace_tokens}, reasons
