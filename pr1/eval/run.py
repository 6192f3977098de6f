"""`pr1 eval`: sample completions for benchmarks with the rollout engine, score them, report the metrics.

The output folder is a run folder (docs/RUN_FOLDER.md) of kind `eval`: every completion is a row of
rollouts.jsonl (step 0, with `bench`), one metrics.jsonl row and one `eval` event per benchmark, and
summary.json with every benchmark's figures. A problem's rows are written together once all its samples
are done, so rerunning the same command resumes: finished problems are skipped. A rerun whose benchmark file
holds other problems under the same ids (another file of the same name) is refused: each row keeps its
problem and answer, and they must be the ones being evaluated. One process at a time writes a folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Collection
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from pr1.datasets import eval_samples, load_problems, slug
from pr1.embedded import EMBEDDED_MODEL
from pr1.errors import Pr1Error
from pr1.eval.metrics import bench_metrics, flat_metrics
from pr1.formatting import number, percent
from pr1.jsonl import iter_jsonl, write_json_atomic
from pr1.progress import progress_bar
from pr1.prompts import NAMES, build_messages, load_template
from pr1.rollout.config import RolloutConfig
from pr1.rollout.engines import pick_engine
from pr1.runs import (
    ROLLOUTS_FILE,
    SUMMARY_FILE,
    Run,
    adapter_folder,
    check_resume,
    read_run_info,
    saved_settings,
)
from pr1.score import score_completion
from pr1.settings import SettingError, setting, speller

# Settings that change what is sampled; a rerun into the same folder (which resumes it) may change the others.
GENERATION_KEYS = frozenset(
    {
        "model",
        "adapter",
        "mode",
        "temperature",
        "top_p",
        "top_k",
        "max_tokens",
        "num_paths",
        "max_blocks",
        "max_path_tokens",
        "max_prompt_tokens",
        "seed",
    }
)


@dataclass
class EvalConfig(RolloutConfig):
    benches: list[str] = setting(
        factory=list,
        help="aime25 | aime24 | amc23 | math500 | gsm8k | a .jsonl file (several allowed).",
        argument=True,
    )
    model: str = setting(EMBEDDED_MODEL, "Model name, local folder or Hub id.")
    adapter: str | None = setting(
        None, "A peft (LoRA) adapter folder, or a pr1 sft / rl run folder (its final/), merged for decoding."
    )
    samples: int | None = setting(
        None, "Samples per problem (METHOD.md §8).", min=1, shown="16 for AIME/AMC, 1 otherwise"
    )
    limit: int | None = setting(None, "Only the first N problems of each benchmark.", min=1)
    prompt_file: str | None = setting(None, f"{NAMES} | a template file.", shown="parallel")
    seed: int = setting(0, "Sampling seed.")
    out: str | None = setting(
        None, "Run folder; rerun to resume.", shown="runs/eval-<model>-<benchmarks>-<mode>-<settings hash>"
    )
    dtype: str = setting("auto", "auto | float32 | bfloat16 | float16.")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.model:
            raise SettingError("{model:name} is required (a model name, folder or Hub id)", model=None)
        if not self.benches:
            raise SettingError("expected at least one benchmark (BENCH...)")
        if self.adapter is not None:  # a run folder means its final/ adapter
            self.adapter = str(adapter_folder(self.adapter))

    def run_dir(self) -> Path:
        """--out, else a folder named after what is evaluated: another benchmark or sampling setting is another
        folder, so a second evaluation never collides with the first."""
        if self.out:
            return Path(self.out)
        generation = json.dumps({k: getattr(self, k) for k in sorted(GENERATION_KEYS)}, default=str)
        digest = hashlib.sha256(generation.encode()).hexdigest()[:8]
        benches = "+".join(slug(b) for b in self.benches)
        return Path("runs") / f"eval-{slug(self.adapter or self.model)}-{benches}-{self.mode}-{digest}"


MAY_CHANGE_ON_RESUME = frozenset(f.name for f in fields(EvalConfig)) - GENERATION_KEYS


def sample_key(bench: str, problem_id: str) -> int:
    """The randomness key of a problem: its samples are the same whatever else is evaluated with it."""
    digest = hashlib.blake2b(f"{bench}\0{problem_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def run_eval(cfg: EvalConfig, *, flags: Collection[str] = ()) -> dict[str, dict]:
    """Evaluate every benchmark of `cfg` into its run folder, resuming what the folder holds (it must hold
    an eval sampled with the same GENERATION_KEYS and prompt template); return {bench: metrics}. `flags`: the
    settings the command line has flags for (to name them in errors)."""
    if cfg.adapter is not None and not Path(cfg.adapter).is_dir():
        raise Pr1Error(f"--adapter {cfg.adapter}: no such folder")
    template = load_template(cfg.prompt_file)
    benches = {slug(b): load_problems(b, limit=cfg.limit) for b in cfg.benches}
    out = cfg.run_dir()
    saved = saved_settings(out, "eval", resume=None)
    template_sha256 = hashlib.sha256(template.encode()).hexdigest()[:16]
    planned = sum(len(p) * (cfg.samples or eval_samples(b)) for b, p in benches.items()) * cfg.max_tokens
    engine_name, why = pick_engine(cfg, planned)
    if saved is not None:
        check_resume(saved, asdict(cfg), MAY_CHANGE_ON_RESUME, speller(EvalConfig, flags), where=str(out))
        info = read_run_info(out)
        if info.get("template_sha256", template_sha256) != template_sha256:
            raise Pr1Error(f"{out}: holds an eval with another prompt template; choose another --out")
        _check_same_problems(out, benches)
        used = info.get("engine_used", engine_name)
        if used != engine_name:  # its rows were sampled by that engine (the engines draw different samples)
            if cfg.engine != "auto":
                raise Pr1Error(f"{out}: holds an eval sampled with --engine {used}; choose another --out")
            engine_name, why = used, "the engine this folder's rows were sampled with"
    run = Run.create(out, "eval", asdict(cfg), resume=None)
    run.update_info(template_sha256=template_sha256, engine_used=engine_name)
    console = Console()
    console.print(f"engine: [bold]{engine_name}[/] ({why})")
    with run.recording(), contextlib.closing(_engine(cfg, engine_name)) as engine:
        existing = _existing_rows(out)
        results: dict[str, dict] = _read_summary(out)
        for bench, problems in benches.items():
            k = cfg.samples or eval_samples(bench)
            rows = existing.get(bench, [])
            figures = _eval_bench(run, engine, template, bench, problems, k, rows, console)
            results[bench] = figures
            run.log_metrics(0, bench=bench, **flat_metrics(figures))
            run.event("eval", step=0, bench=bench, **flat_metrics(figures))
            write_json_atomic(
                out / SUMMARY_FILE, {"model": cfg.model, "adapter": cfg.adapter, "benchmarks": results}
            )
    run.finish("finished", benchmarks=list(benches))
    _print_table(console, results, [b for b in benches], out)
    return results


def _engine(cfg: EvalConfig, name: str) -> Any:
    """The rollout engine that samples this evaluation: hf on the model loaded here, or vLLM."""
    if name == "vllm":
        from pr1.rollout.engines import vllm_engine

        return vllm_engine(cfg.model, cfg.adapter, RolloutConfig.of(cfg))
    from pr1.rollout import RolloutEngine

    return RolloutEngine(*_load(cfg), RolloutConfig.of(cfg))


def _load(cfg: EvalConfig):  # noqa: ANN202
    from pr1.models import load_model

    return load_model(cfg.model, dtype=cfg.dtype, adapter=cfg.adapter or None)


def _existing_rows(out: Path) -> dict[str, list[dict]]:
    """Rows already written, by benchmark, first copy of each (id, sample) only (rows without a benchmark
    name, an id or an integer sample are not pr1 eval rows, and are left out)."""
    path = out / ROLLOUTS_FILE
    if not path.exists():
        return {}
    seen, rows = set(), {}
    for _, row in iter_jsonl(path, skip_bad=True):
        bench, sample = row.get("bench"), row.get("sample")
        if not isinstance(bench, str) or not isinstance(sample, int) or isinstance(sample, bool):
            continue
        key = (bench, str(row.get("id")), sample)
        if "id" not in row or key in seen:
            continue
        seen.add(key)
        rows.setdefault(bench, []).append(row)
    return rows


def _check_same_problems(out: Path, benches: dict[str, list[dict]]) -> None:
    """Refuse to resume from rows that were made for other problems under the same benchmark name and ids
    (a different file of the same name): their completions answer another question."""
    existing = _existing_rows(out)
    for bench, problems in benches.items():
        by_id = {p["id"]: p for p in problems}
        for row in existing.get(bench, []):
            p = by_id.get(str(row["id"]))
            if p is not None and (row.get("problem"), row.get("answer")) != (p["problem"], p["answer"]):
                raise Pr1Error(
                    f"{out}: its {bench!r} rows were made from other problems (id {p['id']!r} differs: another "
                    "file of the same name?); choose another --out"
                )


def _read_summary(out: Path) -> dict[str, dict]:
    path = out / SUMMARY_FILE
    try:
        figures = json.loads(path.read_text(encoding="utf-8")).get("benchmarks", {}) if path.exists() else {}
    except (OSError, ValueError, AttributeError, RecursionError):  # unreadable: the figures are made again
        return {}
    return figures if isinstance(figures, dict) else {}


def _eval_bench(
    run: Run,
    engine,  # noqa: ANN001
    template: str,
    bench: str,
    problems: list[dict],
    k: int,
    rows: list[dict],
    console: Console,
) -> dict:
    have: dict[str, set[int]] = {}
    for row in rows:
        have.setdefault(str(row["id"]), set()).add(row["sample"])
    todo = [p for p in problems if len(have.get(p["id"], set()) & set(range(k))) < k]
    finished: dict[int, list] = {}
    generated = 0
    start = time.perf_counter()
    done = sum(len(have.get(p["id"], set()) & set(range(k))) for p in problems)
    with progress_bar(console, "speed", "completions") as progress:
        # counted in completions, not problems: with 16 samples a problem is a long wait
        task = progress.add_task(bench, total=len(problems) * k, completed=done, speed="")

        def on_done(t) -> None:  # noqa: ANN001
            nonlocal generated
            generated += t.generated_tokens
            elapsed = time.perf_counter() - start
            progress.update(task, advance=1, speed=f"{generated / elapsed:.0f} tok/s")
            group = finished.setdefault(t.prompt_index, [])
            group.append(t)
            if len(group) < k:
                return
            problem = todo[t.prompt_index]
            new = [_row(bench, problem, tr) for tr in sorted(group, key=lambda tr: tr.sample_index)]
            new = [r for r in new if r["sample"] not in have.get(problem["id"], set())]
            run.log_rollouts(0, new)
            rows.extend({"step": 0, **r} for r in new)
            del finished[t.prompt_index]

        if todo:
            engine.generate(
                [build_messages(p["problem"], template) for p in todo],
                n=k,
                on_done=on_done,
                sample_keys=[sample_key(bench, p["id"]) for p in todo],
            )
    wall = time.perf_counter() - start
    ids = {p["id"] for p in problems}
    figures = bench_metrics([r for r in rows if str(r["id"]) in ids and r["sample"] < k])
    figures.update(
        bench=bench,
        wall_time_s=round(wall, 2) if todo else None,
        generated_tokens=generated,
        tokens_per_s=round(generated / wall, 2) if todo and wall > 0 else None,
    )
    return figures


def _row(bench: str, problem: dict, t) -> dict:  # noqa: ANN001
    record = score_completion(t.text, problem["answer"])
    return {
        "bench": bench,
        "id": problem["id"],
        "sample": t.sample_index,
        "problem": problem["problem"],
        "answer": problem["answer"],
        "completion": t.text,
        **record,
        "tokens": len(t.completion_ids),
        "generated_tokens": t.generated_tokens,
        "critical_path_tokens": t.critical_path_tokens,
        "parallel_positions": t.parallel_positions,
        "truncated": t.truncated,
        "prompt_truncated": t.prompt_truncated,
    }


def _with_stderr(f: dict) -> str:
    """mean@k with its standard error over problems, as lm-evaluation-harness prints it: "43.8% ± 6.2"."""
    stderr = f.get("mean_at_k_stderr")
    return percent(f["mean_at_k"]) + ("" if stderr is None else f" ± {100 * stderr:.1f}")


TABLE_ROWS = (
    ("problems × samples (k)", lambda f: f"{f['problems']} × {f['samples']}"),
    ("mean@k ± stderr", _with_stderr),
    ("pass@k", lambda f: percent(f["pass_at_k"].get(str(f["samples"])))),
    ("maj@k", lambda f: percent(f["maj_at_k"])),
    ("parallel ratio", lambda f: percent(f["parallel_ratio"])),
    ("format valid", lambda f: percent(f["format_valid_rate"])),
    ("blocks / response", lambda f: number(f["blocks_mean"], 2)),
    ("paths / block", lambda f: number(f["paths_per_block_mean"], 2)),
    ("<Parallel> position", lambda f: number(f["parallel_position_mean"], 2)),
    ("tokens (total)", lambda f: number(f["response_tokens_mean"], 0)),
    ("tokens (critical path)", lambda f: number(f["critical_path_tokens_mean"], 0)),
    ("truncated", lambda f: percent(f["truncated_rate"])),
    ("no answer", lambda f: percent(f["no_answer_rate"])),
    ("wall time (s)", lambda f: number(f["wall_time_s"], 0)),
    ("tokens / s", lambda f: number(f["tokens_per_s"], 0)),
)


def _print_table(console: Console, results: dict[str, dict], benches: list[str], out: Path) -> None:
    table = Table(title=f"pr1 eval — {out}")
    table.add_column("")
    for bench in benches:
        table.add_column(bench, justify="right")
    for name, cell in TABLE_ROWS:
        table.add_row(name, *(cell(results[b]) for b in benches))
    console.print(table)
    console.print(f"summary: {out / SUMMARY_FILE} (pass@k for every k)  completions: {out / ROLLOUTS_FILE}")
