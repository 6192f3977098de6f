"""`pr1 demo --ablation`: the paper's reward ablation (its Table 4) at toy scale, from one SFT adapter.

    OUT/data/, OUT/sft/            the demo's synthetic data and cold-start SFT (reused when finished)
    OUT/ablation/REWARD-sSEED/     GRPO with each reward and seed (pr1 rl)
    OUT/ablation/REWARD-sSEED-eval/  its evaluation on the demo's held-out problems (pr1 eval)
    OUT/ablation/ABLATION.md       the table: accuracy and parallel ratio per run, mean and spread per reward
    OUT/ablation/charts/           the RL runs overlaid in the dashboard (pr1 watch --export)

Every run has the same problems, steps and settings; only the reward and the seed differ. The paper's finding
to test: accuracy-only RL lowers the parallel ratio, a structure reward keeps it high, alternating sits
between with the best accuracy. The table reports what comes out, whether or not it agrees.
OUT/ablation has its own run.json (kind "ablation"), so `pr1 watch OUT/ablation` follows its progress, and
each finished run is reused when the command runs again.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pr1.demo import (
    DemoConfig,
    evaluate,
    finished,
    make_data,
    open_staged_run,
    run_stage,
    sft_stage,
    train_rl,
)
from pr1.files import write_text_atomic

REWARDS = ("accuracy", "alternating", "parallel-accuracy")
SEEDS = 2  # runs per reward, seeds seed, seed + 1, …


def run_ablation(
    out: str | Path, config: DemoConfig, *, seeds: int = SEEDS, console: Console | None = None
) -> list[dict]:
    """Run (or resume) the ablation under `out` (a demo folder); return one row per RL run."""
    console = console or Console(stderr=True)
    out = Path(out)
    folder = out / "ablation"
    runs = [(reward, config.seed + i) for reward in REWARDS for i in range(seeds)]
    run = open_staged_run(folder, "ablation", config, len(runs), console)
    t0 = time.time()
    rows = []
    with run.recording():
        run_stage(console, run, "data", lambda: make_data(out / "data", config, console))
        sft_stage(out, config, run, console)
        for step, (reward, seed) in enumerate(runs, start=1):
            name = f"{reward}-s{seed}"
            rl = folder / name
            run_stage(
                console,
                run,
                f"rl {name}",
                lambda rl=rl, reward=reward, seed=seed: train_rl(
                    rl, out / "sft", out / "data", config, reward=reward, seed=seed
                ),
                done=finished(rl),
            )
            figures = evaluate(
                folder / f"{name}-eval", out / "data", config, rl / "final", run, step, name, console
            )
            rows.append({"run": name, "reward": reward, "seed": seed, **figures})
    write_text_atomic(folder / "ABLATION.md", ablation_markdown(rows, config))
    _charts(folder, rows, console)
    run.finish("finished", minutes=round((time.time() - t0) / 60, 2), runs=rows)
    _report(console, folder, rows)
    return rows


def by_reward(rows: list[dict]) -> dict[str, dict]:
    """Per reward: the mean, min and max over its seeds of accuracy and parallel ratio."""
    summary = {}
    for reward in dict.fromkeys(r["reward"] for r in rows):
        mine = [r for r in rows if r["reward"] == reward]
        summary[reward] = {
            "runs": len(mine),
            **{
                f"{key}_{stat}": fn([r[key] for r in mine])
                for key in ("accuracy", "parallel_ratio")
                for stat, fn in (("mean", statistics.fmean), ("min", min), ("max", max))
            },
        }
    return summary


def ablation_markdown(rows: list[dict], config: DemoConfig) -> str:
    """ABLATION.md: the per-run table, the per-reward summary and the settings."""
    lines = [
        "# Reward ablation (pr1 demo --ablation)",
        "",
        f"Each run: GRPO from the demo's SFT adapter, {config.rl_steps} steps of {config.rl_batch} prompts x "
        f"{config.rl_samples} samples, lr {config.rl_lr:g}, on {config.rl_difficulty} problems; evaluated on "
        f"{config.eval_problems} held-out problems x {config.eval_samples} samples at temperature "
        f"{config.temperature:g}, {config.max_tokens} tokens.",
        "",
        "| reward | runs | accuracy (mean, min–max) | parallel ratio (mean, min–max) |",
        "|---|---|---|---|",
    ]
    for reward, s in by_reward(rows).items():
        lines.append(
            f"| {reward} | {s['runs']} | {s['accuracy_mean']:.1%} ({s['accuracy_min']:.1%}–{s['accuracy_max']:.1%}) "
            f"| {s['parallel_ratio_mean']:.1%} ({s['parallel_ratio_min']:.1%}–{s['parallel_ratio_max']:.1%}) |"
        )
    lines += [
        "",
        "| run | accuracy | parallel ratio | format valid | blocks / response |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['run']} | {r['accuracy']:.1%} | {r['parallel_ratio']:.1%} | {r['format_valid_rate']:.1%} "
            f"| {r['blocks_mean']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def _charts(folder: Path, rows: list[dict], console: Console) -> None:
    """The RL runs' dashboards overlaid, as pictures in folder/charts."""
    from pr1.tui.export import export_runs

    written = export_runs([folder / r["run"] for r in rows], folder / "charts")
    console.print(f"charts: {', '.join(str(p) for p in written)}")


def _report(console: Console, folder: Path, rows: list[dict]) -> None:
    table = Table(title=f"pr1 demo --ablation — {folder}")
    for col in ("reward", "runs", "accuracy", "parallel ratio"):
        table.add_column(col, justify="left" if col == "reward" else "right")
    for reward, s in by_reward(rows).items():
        table.add_row(
            reward,
            str(s["runs"]),
            f"{s['accuracy_mean']:.1%} ({s['accuracy_min']:.0%}–{s['accuracy_max']:.0%})",
            f"{s['parallel_ratio_mean']:.1%} ({s['parallel_ratio_min']:.0%}–{s['parallel_ratio_max']:.0%})",
        )
    console.print(table)
    console.print(f"Compare the runs:  pr1 watch {' '.join(str(folder / r['run']) for r in rows)}")
