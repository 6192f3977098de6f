"""`pr1 demo`: the whole curriculum at toy scale, offline, on the embedded model, into one run folder.

    RUN/data/      synthetic cold-start traces (pr1 data generate --teacher synthetic), SFT and RL sets,
                   and held-out evaluation problems
    RUN/eval-base/ evaluation of the untrained model           (pr1 eval)
    RUN/sft/       cold-start SFT                              (pr1 sft)
    RUN/eval-sft/  evaluation after SFT
    RUN/rl/        GRPO with the alternating reward            (pr1 rl)
    RUN/eval-rl/   evaluation after RL

The demo's own run.json, metrics.jsonl (one row per evaluated stage) and events.jsonl sit in RUN/, so
`pr1 watch RUN` shows its progress and `pr1 watch RUN/rl` the RL dashboard. Each stage is skipped when
its folder is already complete, so an interrupted demo resumes where it stopped.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from pr1.coldstart.synthetic import DIFFICULTIES
from pr1.embedded import EMBEDDED_MODEL
from pr1.prompts import TEMPLATES
from pr1.runs import ROLLOUTS_FILE, RUN_FILE, Run, read_metrics, read_run_info
from pr1.settings import Settings, setting

STAGES = ("base", "sft", "rl")


@dataclass
class DemoConfig(Settings):
    model: str = setting(EMBEDDED_MODEL, "Model to train (default: the embedded SmolLM2-135M).")
    seed: int = setting(0, "Seed of the data, training and sampling.")
    prompt: str = setting(
        "parallel-short",
        "Prompt template of every stage (pr1.prompts: the short one halves the tokens).",
        choices=tuple(TEMPLATES),
    )
    # data: synthetic problems (pr1.coldstart.synthetic's difficulties). One-step arithmetic: the base 135M
    # model solves 1.6% of it with this prompt, the SFT model 59%, so RL's groups have mixed rewards
    sft_difficulty: str = setting("one-step", "Difficulty of the cold-start traces.", choices=DIFFICULTIES)
    rl_difficulty: str = setting(
        "one-step", "Difficulty of the RL and held-out evaluation problems.", choices=DIFFICULTIES
    )
    sft_traces: int = setting(200, "Synthetic cold-start traces for SFT.", min=1)
    rl_problems: int = setting(64, "Synthetic RL problems.", min=1)
    eval_problems: int = setting(
        48, "Held-out synthetic evaluation problems (none of them an RL problem).", min=1
    )
    # SFT (LoRA on CPU; high rates so a few dozen steps teach the format)
    sft_steps: int = setting(30, "SFT optimizer steps.", min=1)
    sft_batch: int = setting(4, "SFT sequences per optimizer step.", min=1)
    sft_micro_batch: int = setting(4, "SFT sequences per forward pass.", min=1)
    sft_lr: float = setting(1e-3, "SFT learning rate.", above=0)
    tag_lr: float = setting(1e-2, "SFT learning rate of the tag rows.", above=0)
    sft_max_length: int = setting(512, "SFT max tokens per row.", min=1)
    lora_r: int = setting(16, "LoRA rank.", min=1)
    # RL (GRPO, alternating reward: steps 9-10 and 19-20 use the tiered reward)
    rl_steps: int = setting(20, "RL steps.", min=1)
    rl_batch: int = setting(2, "RL prompts per step.", min=1)
    rl_samples: int = setting(8, "RL samples per prompt.", min=2)
    rl_micro_batch: int = setting(
        4,
        "RL sequences per forward pass; the rest by gradient accumulation (peak RSS on CPU: 4.3-5.8 GB at 4, "
        "13.6 GB at 16).",
        min=1,
    )
    rl_lr: float = setting(2e-4, "RL learning rate (LoRA, a few dozen steps).", above=0)
    # rollouts (evaluation and RL)
    max_tokens: int = setting(128, "Response budget of every rollout.", min=1)
    eval_samples: int = setting(4, "Evaluation samples per held-out problem.", min=1)
    temperature: float = setting(0.7, "Evaluation sampling temperature.", min=0)


FAST = DemoConfig(
    sft_traces=24,
    rl_problems=4,
    eval_problems=4,
    sft_steps=6,
    sft_batch=4,
    rl_steps=2,
    rl_batch=1,
    rl_samples=2,
    max_tokens=64,
    eval_samples=1,
)


def run_demo(out: str | Path, config: DemoConfig, *, console: Console | None = None) -> dict[str, dict]:
    """Run (or resume) the demo into `out`; return the evaluation figures of each stage."""
    console = console or Console(stderr=True)
    out = Path(out)
    run = open_staged_run(out, "demo", config, len(STAGES), console)
    t0 = time.time()
    with run.recording():
        results = _stages(out, config, run, console)
    run.finish("finished", minutes=round((time.time() - t0) / 60, 2), **results)
    _report(console, out, results, time.time() - t0)
    return results


def open_staged_run(folder: Path, kind: str, config: DemoConfig, stages: int, console: Console) -> Run:
    """Create or resume the run folder of a staged job (the demo, the ablation). Its stages are run folders
    of their own, each reused when finished, so a resume with other settings goes on (and says so)."""
    resume = (folder / RUN_FILE).exists()
    if resume and read_run_info(folder).get("config") != asdict(config):
        console.print(
            f"[yellow]{folder} holds a {kind} with other settings; finished stages are reused as they are"
        )
    run = Run.create(folder, kind, config, resume=resume)
    run.update_info(total_steps=stages)
    return run


def _stages(out: Path, cfg: DemoConfig, run: Run, console: Console) -> dict[str, dict]:
    data = out / "data"
    run_stage(console, run, "data", lambda: make_data(data, cfg, console))
    results = {"base": evaluate(out / "eval-base", data, cfg, None, run, 1, "base", console)}
    sft_stage(out, cfg, run, console)
    results["sft"] = evaluate(out / "eval-sft", data, cfg, out / "sft" / "final", run, 2, "sft", console)
    run_stage(
        console, run, "rl", lambda: train_rl(out / "rl", out / "sft", data, cfg), done=finished(out / "rl")
    )
    results["rl"] = evaluate(out / "eval-rl", data, cfg, out / "rl" / "final", run, 3, "rl", console)
    results["rl_gain"] = rl_gain(out)
    results["rl_live"] = {"live_share": live_share(read_metrics(out / "rl"))}
    return results


def rl_gain(out: Path) -> dict:
    """RL's effect on accuracy: eval-rl against eval-sft, paired by held-out problem (95% interval)."""
    from pr1.eval.metrics import accuracy_difference
    from pr1.jsonl import read_jsonl

    return accuracy_difference(
        read_jsonl(out / "eval-sft" / ROLLOUTS_FILE), read_jsonl(out / "eval-rl" / ROLLOUTS_FILE)
    )


def live_share(rl_metrics: list[dict]) -> float | None:
    """The share of RL's GRPO groups whose rewards differed, over all steps: only those groups have an
    advantage, so only they teach anything (1 - TRL's frac_reward_zero_std, averaged over the steps, which
    all have the same number of groups)."""
    fractions = [r["frac_reward_zero_std"] for r in rl_metrics if r.get("frac_reward_zero_std") is not None]
    return 1 - sum(fractions) / len(fractions) if fractions else None


def sft_stage(out: Path, cfg: DemoConfig, run: Run, console: Console) -> None:
    """The cold-start SFT of OUT/data's traces into OUT/sft (skipped when finished)."""
    sft = out / "sft"
    run_stage(console, run, "sft", lambda: train_sft(sft, out / "data", cfg, console), done=finished(sft))


def finished(folder: Path) -> bool:
    return (folder / RUN_FILE).exists() and read_run_info(folder).get("status") == "finished"


def run_stage(console: Console, run: Run, name: str, fn: Any, *, done: bool = False) -> None:
    """Run `fn` as the stage `name` of `run` (events at its start and end), or say it is reused."""
    if done:
        console.print(f"[dim]{name}: already finished, reused")
        return
    console.rule(f"[bold]{name}")
    run.event("stage", stage=name, status="start")
    t = time.time()
    fn()
    run.event("stage", stage=name, status="end", seconds=round(time.time() - t, 1))


def make_data(data: Path, cfg: DemoConfig, console: Console) -> None:
    """Synthetic cold-start traces for SFT; fresh synthetic problems for RL and for evaluation."""
    from pr1.coldstart.build import build
    from pr1.coldstart.generate import GenerateConfig, generate
    from pr1.coldstart.synthetic import synthetic_problems
    from pr1.jsonl import write_jsonl_atomic

    traces = data / "coldstart.jsonl"
    generate(
        GenerateConfig(
            teacher="synthetic",
            source="synthetic",
            difficulty=cfg.sft_difficulty,
            out=traces,
            limit=cfg.sft_traces,
            seed=cfg.seed,
        ),
        console=console,
    )
    build(traces, sft_out=data / "sft.jsonl", rl_out=None, template=TEMPLATES[cfg.prompt])
    rl = synthetic_problems(cfg.rl_problems, seed=cfg.seed + 1, difficulty=cfg.rl_difficulty)
    # held out: drawn with another seed, leaving out any problem RL trains on (small difficulties repeat)
    seen = {row["problem"] for row in rl}
    drawn = synthetic_problems(cfg.eval_problems + len(rl), seed=cfg.seed + 2, difficulty=cfg.rl_difficulty)
    held_out = [row for row in drawn if row["problem"] not in seen][: cfg.eval_problems]
    for name, rows in (("rl_problems", rl), ("eval_problems", held_out)):
        if not (data / f"{name}.jsonl").exists():
            write_jsonl_atomic(data / f"{name}.jsonl", rows)


def train_sft(folder: Path, data: Path, cfg: DemoConfig, console: Console) -> None:
    from pr1.sft.config import Pr1SFTConfig
    from pr1.sft.train import train

    sft = Pr1SFTConfig(
        model=cfg.model,
        data=str(data / "sft.jsonl"),
        lora_r=cfg.lora_r,
        lr=cfg.sft_lr,
        tag_lr=cfg.tag_lr,
        batch=cfg.sft_batch,
        micro_batch=cfg.sft_micro_batch,
        max_steps=cfg.sft_steps,
        max_length=cfg.sft_max_length,
        gradient_checkpointing=False,  # recomputation costs more than the memory it saves at this size
        save_every=max(cfg.sft_steps // 2, 1),
        format_check=0,  # the demo evaluates every stage itself
        seed=cfg.seed,
    )
    train(sft, folder, resume=(folder / RUN_FILE).exists(), console=console)


def train_rl(
    folder: Path,
    sft: Path,
    data: Path,
    cfg: DemoConfig,
    *,
    reward: str = "alternating",
    seed: int | None = None,
) -> None:
    """GRPO from the SFT adapter on data/rl_problems.jsonl into `folder` (resumes a partial one)."""
    from pr1.rl.config import RLConfig
    from pr1.rl.trainer import train

    rl = RLConfig(
        **{
            "model": str(sft),
            "data": str(data / "rl_problems.jsonl"),
            "reward": reward,
            "prompt_file": cfg.prompt,
            "steps": cfg.rl_steps,
            "batch": cfg.rl_batch,
            "samples": cfg.rl_samples,
            "updates_per_step": 1,
            "micro_batch": min(cfg.rl_micro_batch, cfg.rl_batch * cfg.rl_samples),
            "lr": cfg.rl_lr,
            "max_tokens": cfg.max_tokens,
            "temperature": 1.0,
            "save_every": max(cfg.rl_steps // 2, 1),
            "log_rollouts": cfg.rl_batch * cfg.rl_samples,
            "backend": "hf",
            "seed": cfg.seed if seed is None else seed,
        }
    )
    train(rl, folder, resume=(folder / RUN_FILE).exists())


def evaluate(
    folder: Path,
    data: Path,
    cfg: DemoConfig,
    adapter: Path | None,
    run: Run,
    step: int,
    stage: str,
    console: Console,
) -> dict:
    """Evaluate the model (with `adapter`) on data/eval_problems.jsonl into `folder` (the `pr1 eval`
    metrics; resumes a partial folder) and log it as row `step` of `run`, named `stage`."""
    from pr1.eval import EvalConfig, run_eval

    console.rule(f"[bold]evaluate: {stage}")
    figures = run_eval(
        EvalConfig(
            benches=[str(data / "eval_problems.jsonl")],
            model=cfg.model,
            adapter=str(adapter) if adapter else None,
            samples=cfg.eval_samples,
            prompt_file=cfg.prompt,
            temperature=cfg.temperature,
            max_tokens=cfg.max_tokens,
            seed=cfg.seed,
            out=str(folder),
        )
    )
    result = next(iter(figures.values()))
    keys = ("parallel_ratio", "format_valid_rate", "blocks_mean", "response_tokens_mean", "no_answer_rate")
    summary = {"accuracy": result["mean_at_k"], **{k: result.get(k) for k in keys}}
    run.log_metrics(step, stage=stage, **summary)
    _copy_rollouts(folder, run, step, stage)
    return summary


def _copy_rollouts(folder: Path, run: Run, step: int, stage: str) -> None:
    """The stage's completions, also in the demo's own rollouts stream, so `pr1 watch RUN` browses them."""
    from pr1.jsonl import iter_jsonl

    src = folder / "rollouts.jsonl"
    if src.exists():
        run.log_rollouts(
            step, [{**row, "step": step, "stage": stage} for _, row in iter_jsonl(src, skip_bad=True)]
        )


def _report(console: Console, out: Path, results: dict[str, dict], seconds: float) -> None:
    table = Table(title=f"pr1 demo — {out} ({seconds / 60:.1f} min)")
    table.add_column("stage")
    for col in ("accuracy", "parallel ratio", "format valid", "blocks / response", "tokens / response"):
        table.add_column(col, justify="right")
    labels = {"base": "base model", "sft": "after SFT", "rl": "after RL"}
    for stage in STAGES:
        r = results[stage]
        table.add_row(
            labels[stage],
            f"{r['accuracy']:.1%}",
            f"{r['parallel_ratio']:.1%}",
            f"{r['format_valid_rate']:.1%}",
            f"{r['blocks_mean']:.2f}",
            f"{r['response_tokens_mean']:.0f}",
        )
    console.print(table)
    base, sft = results["base"], results["sft"]
    console.print(f"SFT moved the parallel ratio {base['parallel_ratio']:.0%} → {sft['parallel_ratio']:.0%}.")
    console.print(gain_line(results["rl_gain"]))
    live = results["rl_live"]["live_share"]
    if live is not None:
        console.print(
            f"RL signal: {live:.0%} of the GRPO groups had mixed rewards (the others have no advantage and "
            "teach nothing)."
        )
    console.print(f"Open the dashboards:  pr1 watch {out}   ·   pr1 watch {out / 'rl'}")
    console.print(f"Talk to the trained model:  pr1 chat --adapter {out / 'rl'}")


def gain_line(gain: dict) -> str:
    """RL's accuracy change as a sentence: points, the 95% interval, the number of problems."""
    if gain["difference"] is None:
        return "RL's effect on accuracy: no problems evaluated both after SFT and after RL"
    points = 100 * gain["difference"]
    if gain["low"] is None:
        return f"RL changed accuracy by {points:+.1f} points (on {gain['problems']} problem: no interval)"
    return (
        f"RL changed accuracy by {points:+.1f} points over SFT (95% interval {100 * gain['low']:+.1f} to "
        f"{100 * gain['high']:+.1f}, paired over {gain['problems']} held-out problems)"
    )
