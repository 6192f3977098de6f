"""The `pr1` command. Each command only parses its options and calls into the module that does the work."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from pr1.errors import Pr1Error

app = typer.Typer(
    name="pr1",
    help="Teach language models parallel thinking with reinforcement learning (Parallel-R1).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def score(
    file: Annotated[
        Path, typer.Argument(help="JSON Lines file with a completion and a gold answer per row.")
    ],
    reward: Annotated[
        str, typer.Option(help="accuracy | tiered | parallel-accuracy | alternating | scaffold")
    ] = "accuracy",
    step: Annotated[int, typer.Option(help="Training step (first = 1) for scheduled rewards.")] = 1,
    completion_key: Annotated[str, typer.Option(help="Key of the completion text.")] = "completion",
    answer_key: Annotated[str, typer.Option(help="Key of the gold answer.")] = "answer",
    json_out: Annotated[
        bool, typer.Option("--json", help="One JSON object per input row on stdout.")
    ] = False,
    skip_bad: Annotated[bool, typer.Option(help="Skip malformed rows instead of stopping.")] = False,
) -> None:
    """Grade completions: accuracy, format validity, blocks and reward, per row or as a summary table."""
    from pr1.commands.score import run_score

    run_score(file, reward, step, completion_key, answer_key, json_out, skip_bad)


@app.command()
def datasets() -> None:
    """List the named datasets and where each one would load from."""
    from pr1.commands.score import list_datasets

    list_datasets()


data_app = typer.Typer(
    help="Cold-start parallel-thinking data: generate traces with a teacher, inspect them, build SFT/RL sets.",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")


@data_app.command("generate")
def data_generate(
    teacher: Annotated[
        str, typer.Option(help="http(s)://HOST:PORT/v1 (OpenAI-compatible), hf:MODEL_OR_PATH, or synthetic.")
    ],
    out: Annotated[Path, typer.Option(help="Kept traces (.jsonl); rejected ones go to OUT.rejected.jsonl.")],
    source: Annotated[
        str, typer.Option(help="Problems: a dataset name, a .jsonl/.parquet file, or synthetic.")
    ] = "gsm8k-train",
    limit: Annotated[int | None, typer.Option(help="Use the first N problems (synthetic: make N).")] = None,
    samples_per_problem: Annotated[int, typer.Option(help="Traces asked for per problem.")] = 1,
    concurrency: Annotated[int, typer.Option(help="Requests in flight (HTTP) or batch size (hf:).")] = 16,
    prompt_file: Annotated[
        str | None, typer.Option(help="Instruction template with {problem} (default: pr1's parallel prompt).")
    ] = None,
    max_tokens: Annotated[int, typer.Option(help="The teacher's generation budget per trace.")] = 4096,
    max_length: Annotated[
        int, typer.Option(help="Keep only traces whose prompt + trace fit in N tokens.")
    ] = 4096,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (0: greedy).")] = 0.6,
    teacher_model: Annotated[
        str | None, typer.Option(help="Model name to request from an HTTP teacher.")
    ] = None,
    api_key_env: Annotated[
        str, typer.Option(help="Environment variable holding the HTTP teacher's API key (optional).")
    ] = "OPENAI_API_KEY",
    tokenizer: Annotated[
        str, typer.Option(help="Tokenizer that counts --max-length tokens.")
    ] = "smollm2-135m",
    seed: Annotated[int, typer.Option(help="Seed of --source synthetic and of local sampling.")] = 0,
) -> None:
    """Prompt a teacher on each problem and keep the format-valid, correct traces that fit (Algorithm 1).
    Resumable: a rerun with the same --out skips what is done."""
    from pr1.coldstart.generate import GenerateConfig
    from pr1.commands.data import run_generate

    run_generate(
        GenerateConfig(
            teacher=teacher,
            out=out,
            source=source,
            limit=limit,
            samples_per_problem=samples_per_problem,
            concurrency=concurrency,
            prompt_file=prompt_file,
            max_tokens=max_tokens,
            max_length=max_length,
            temperature=temperature,
            teacher_model=teacher_model,
            api_key_env=api_key_env,
            tokenizer=tokenizer,
            seed=seed,
        )
    )


@data_app.command("stats")
def data_stats(
    file: Annotated[Path, typer.Argument(help="A file written by `pr1 data generate` (or any trace file).")],
    trace_key: Annotated[str, typer.Option(help="Key of the trace text.")] = "trace",
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Acceptance rate, rejection reasons, blocks per trace, paths per block and lengths."""
    from pr1.commands.data import run_stats

    run_stats(file, trace_key, json_out)


@data_app.command("build")
def data_build(
    file: Annotated[Path, typer.Argument(help="Kept traces: rows with id, problem, answer and a trace.")],
    out: Annotated[Path | None, typer.Option(help="Folder for sft.jsonl and rl.jsonl.")] = None,
    sft_out: Annotated[Path | None, typer.Option(help="SFT file (prompt-completion chat rows).")] = None,
    rl_out: Annotated[Path | None, typer.Option(help="RL file (prompt + answer rows).")] = None,
    trace_key: Annotated[
        str, typer.Option(help="Key of the trace text (the shared sample: solution).")
    ] = "trace",
    prompt_file: Annotated[
        str | None, typer.Option(help="Instruction template with {problem} (default: pr1's parallel prompt).")
    ] = None,
    check: Annotated[
        bool, typer.Option(help="Leave out rows whose trace is malformed or has a wrong answer.")
    ] = True,
) -> None:
    """Write the SFT-ready and RL-ready forms of a trace file (atomically)."""
    from pr1.commands.data import run_build

    run_build(file, out, sft_out, rl_out, trace_key, prompt_file, check)


@app.command()
def rl(
    model: Annotated[str | None, typer.Option(help="Model name/path, or a `pr1 sft` run folder.")] = None,
    data: Annotated[str | None, typer.Option(help="Dataset name or file (problem + answer rows).")] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder to write (required).")] = None,
    reward: Annotated[
        str | None, typer.Option(help="accuracy | tiered | parallel-accuracy | alternating | scaffold")
    ] = None,
    variant: Annotated[str | None, typer.Option(help="causal | structured (how traces are scored).")] = None,
    mode: Annotated[
        str | None,
        typer.Option(help="fork | free | structured (default: structured for --variant structured)."),
    ] = None,
    group: Annotated[int | None, typer.Option(help="Samples per prompt (default 8).")] = None,
    batch: Annotated[int | None, typer.Option(help="Prompts per RL step (default 16).")] = None,
    steps: Annotated[int | None, typer.Option(help="RL steps (generation rounds).")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate (constant; default 5e-6).")] = None,
    clip_low: Annotated[float | None, typer.Option(help="Lower clip epsilon (default 0.2).")] = None,
    clip_high: Annotated[float | None, typer.Option(help="Upper clip epsilon (default 0.28).")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Response budget in tokens (default 3000).")] = None,
    switch_step: Annotated[
        int | None, typer.Option(help="scaffold: last alternating step (default 200).")
    ] = None,
    eval_every: Annotated[int | None, typer.Option(help="Evaluate every N steps (needs --eval).")] = None,
    eval_bench: Annotated[
        str | None, typer.Option("--eval", help="Benchmark for periodic evaluation.")
    ] = None,
    save_every: Annotated[
        int | None, typer.Option(help="Checkpoint every N steps (0 = at the end only).")
    ] = None,
    backend: Annotated[str | None, typer.Option(help="auto | unsloth | hf")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its last checkpoint.")] = False,
    config: Annotated[
        list[Path] | None,
        typer.Option(
            help="TOML settings file (examples/*.toml); repeat to layer several, later ones win; flags win over all."
        ),
    ] = None,
    rollout_batch: Annotated[
        int | None,
        typer.Option(
            help="Trajectories decoded at once per process (default 64): the rollout's KV-cache size."
        ),
    ] = None,
    prompt_file: Annotated[str | None, typer.Option(help="parallel | sequential | a template file.")] = None,
    lora_r: Annotated[int | None, typer.Option(help="LoRA rank (0 = full fine-tuning, hf backend).")] = None,
    limit: Annotated[int | None, typer.Option(help="Use only the first N problems.")] = None,
    mask_inserted: Annotated[
        bool | None,
        typer.Option(
            "--mask-inserted/--train-inserted",
            help="Give runtime-inserted tokens zero loss weight (default), or train on them like the reference.",
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default 0).")] = None,
    tui: Annotated[bool, typer.Option("--tui", help="Show the run live in the dashboard.")] = False,
) -> None:
    """Train with GRPO: pr1's fork/join rollouts, the paper's rewards and stages (see docs/RL.md)."""
    from pr1.commands.rl import run_rl

    options = {
        "model": model,
        "data": data,
        "reward": reward,
        "variant": variant,
        "mode": mode,
        "group": group,
        "batch": batch,
        "steps": steps,
        "lr": lr,
        "clip_low": clip_low,
        "clip_high": clip_high,
        "max_tokens": max_tokens,
        "rollout_batch": rollout_batch,
        "switch_step": switch_step,
        "eval_every": eval_every,
        "eval": eval_bench,
        "save_every": save_every,
        "backend": backend,
        "prompt_file": prompt_file,
        "lora_r": lora_r,
        "limit": limit,
        "mask_inserted": mask_inserted,
        "seed": seed,
    }
    run_rl(options, out, config or [], resume, tui=tui)


@app.command()
def sft(
    out: Annotated[Path, typer.Option(help="Run folder to write (see docs/RUN_FOLDER.md).")],
    model: Annotated[
        str | None, typer.Option(help="Base model: smollm2-135m, a local folder or a Hub id.")
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            help="SFT rows (.jsonl: prompt + completion, problem + trace or problem + solution) or a name."
        ),
    ] = None,
    variant: Annotated[
        str | None, typer.Option(help="causal | structured (path-window mask, multiverse positions).")
    ] = None,
    prompt_file: Annotated[
        str | None, typer.Option(help="parallel | sequential | a template file (rows without a prompt).")
    ] = None,
    lora_r: Annotated[int | None, typer.Option(help="LoRA rank (default 64).")] = None,
    lora_alpha: Annotated[int | None, typer.Option(help="LoRA alpha (default 2 x rank).")] = None,
    quant: Annotated[
        str | None, typer.Option(help="auto | 4bit | 8bit | none (auto: 4bit on CUDA, none on CPU).")
    ] = None,
    epochs: Annotated[float | None, typer.Option(help="Epochs (default 5).")] = None,
    lr: Annotated[
        float | None, typer.Option(help="Peak learning rate, cosine schedule (default 1e-5).")
    ] = None,
    tag_lr: Annotated[
        float | None, typer.Option(help="Learning rate of the six new tag rows (default: --lr).")
    ] = None,
    batch: Annotated[int | None, typer.Option(help="Sequences per optimizer step (default 128).")] = None,
    micro_batch: Annotated[
        int | None, typer.Option(help="Sequences per forward pass (default: 1 hf, 2 unsloth).")
    ] = None,
    max_length: Annotated[
        int | None, typer.Option(help="Drop rows whose prompt + trace exceed N tokens (default 4096).")
    ] = None,
    max_steps: Annotated[
        int | None, typer.Option(help="Stop after N optimizer steps (0: all epochs).")
    ] = None,
    save_every: Annotated[int | None, typer.Option(help="Checkpoint every N steps (default 50).")] = None,
    keep_checkpoints: Annotated[
        int | None, typer.Option(help="Complete checkpoints kept (default 3, 0: all).")
    ] = None,
    backend: Annotated[
        str | None, typer.Option(help="auto | unsloth | hf (auto: the fastest available).")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its last checkpoint.")] = False,
    config: Annotated[
        list[Path] | None,
        typer.Option(
            help="TOML settings file (examples/sft-*.toml); repeat to layer several, later ones win; flags win."
        ),
    ] = None,
    format_check: Annotated[
        int | None,
        typer.Option(help="Problems for the quick format check after training (default 8, 0: off)."),
    ] = None,
    format_check_base: Annotated[
        bool | None, typer.Option(help="Also check the base model before training, to show the gain.")
    ] = None,
    format_check_data: Annotated[
        str | None, typer.Option(help="Problems of the format check: a dataset name or file (default gsm8k).")
    ] = None,
    format_check_length: Annotated[
        int | None, typer.Option(help="Max new tokens per format-check completion (default 1024).")
    ] = None,
    gradient_checkpointing: Annotated[
        bool | None, typer.Option(help="Recompute activations to save memory (default on).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default 0).")] = None,
    trust_remote_code: Annotated[
        bool | None, typer.Option(help="Run code shipped with the model (off by default).")
    ] = None,
    tui: Annotated[bool, typer.Option("--tui", help="Show the run live in the dashboard.")] = False,
) -> None:
    """Cold-start SFT: LoRA/QLoRA on parallel-thinking traces, prompt tokens masked (see docs/SFT.md)."""
    from pr1.commands.sft import run_sft

    options = {
        "model": model,
        "data": data,
        "variant": variant,
        "prompt_file": prompt_file,
        "lora_r": lora_r,
        "lora_alpha": lora_alpha,
        "quant": quant,
        "epochs": epochs,
        "lr": lr,
        "tag_lr": tag_lr,
        "batch": batch,
        "micro_batch": micro_batch,
        "max_length": max_length,
        "max_steps": max_steps,
        "save_every": save_every,
        "keep_checkpoints": keep_checkpoints,
        "backend": backend,
        "format_check": format_check,
        "format_check_base": format_check_base,
        "format_check_data": format_check_data,
        "format_check_length": format_check_length,
        "gradient_checkpointing": gradient_checkpointing,
        "seed": seed,
        "trust_remote_code": trust_remote_code,
    }
    run_sft(
        out, {k: v for k, v in options.items() if v is not None}, resume, config_files=config or [], tui=tui
    )


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="A `pr1 sft` or `pr1 rl` run folder.")],
    out: Annotated[Path, typer.Option(help="Folder to write (must not exist, or be empty).")],
    merge: Annotated[
        bool, typer.Option(help="Merge the adapter into the base model: a full model folder without peft.")
    ] = False,
    dtype: Annotated[str, typer.Option(help="Merged weights: auto | float32 | bfloat16 | float16.")] = "auto",
    trust_remote_code: Annotated[bool, typer.Option(help="Run code shipped with the base model.")] = False,
) -> None:
    """Export a run's adapter, or with --merge a merged model (safetensors + tokenizer with the tags)."""
    from pr1.commands.export import run_export

    run_export(run_dir, out, merge, dtype, trust_remote_code)


@app.command()
def watch(
    run_dir: Annotated[Path, typer.Argument(help="A run folder (pr1 sft / rl / eval / data / demo).")],
    interval: Annotated[float, typer.Option(help="Seconds between reads of the folder.")] = 1.0,
) -> None:
    """Live dashboard of a run folder: curves, rollouts as trees, events. Only reads, so it works over SSH."""
    from pr1.commands.watch import run_watch_command

    run_watch_command(run_dir, interval)


@app.command()
def chat(
    model: Annotated[str, typer.Option(help="Model name, Hub id or folder.")] = "smollm2-135m",
    adapter: Annotated[Path | None, typer.Option(help="A peft (LoRA) adapter folder to apply.")] = None,
    mode: Annotated[str, typer.Option(help="fork | free | structured")] = "fork",
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 0.7,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling mass.")] = 1.0,
    max_tokens: Annotated[int, typer.Option(help="Response budget (all paths included).")] = 3000,
    paths: Annotated[int, typer.Option(help="Paths forked at each <Parallel> (fork mode).")] = 2,
    seed: Annotated[int | None, typer.Option(help="Sampling seed (default: random).")] = None,
    prompt_file: Annotated[
        str | None, typer.Option(help="parallel | sequential | a template file with {problem}.")
    ] = None,
    save: Annotated[
        Path | None, typer.Option(help="Session file (ctrl+s appends to it); default pr1-chat-<time>.jsonl.")
    ] = None,
    device: Annotated[str | None, typer.Option(help="cuda | cpu (default: cuda when available).")] = None,
    dtype: Annotated[str, typer.Option(help="auto | float32 | bfloat16 | float16.")] = "auto",
    trust_remote_code: Annotated[bool, typer.Option(help="Run code shipped with the model.")] = False,
) -> None:
    """Chat with a model and watch its parallel paths branch, grow side by side and fold into summaries."""
    from pr1.commands.chat import run_chat_command
    from pr1.tui.chat_session import ChatSettings

    settings = ChatSettings(temperature, top_p, max_tokens, paths, mode, seed)
    run_chat_command(model, adapter, settings, prompt_file, save, device, dtype, trust_remote_code)


@app.command(name="eval")
def eval_(
    benches: Annotated[
        list[str],
        typer.Argument(help="aime25 | aime24 | amc23 | math500 | gsm8k | a .jsonl file (several allowed)."),
    ],
    model: Annotated[str, typer.Option(help="Model name (smollm2-135m), local folder or Hub id.")],
    adapter: Annotated[
        str | None, typer.Option(help="A peft (LoRA) adapter folder, merged for decoding.")
    ] = None,
    samples: Annotated[
        int | None, typer.Option(help="Samples per problem (default: 16 for AIME/AMC, 1 otherwise).")
    ] = None,
    mode: Annotated[
        str, typer.Option(help="fork | free (one causal stream) | structured (merged paths).")
    ] = "fork",
    temperature: Annotated[float, typer.Option(help="Sampling temperature (0 = greedy).")] = 1.0,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling mass.")] = 1.0,
    top_k: Annotated[int, typer.Option(help="Top-k sampling (0 = off).")] = 0,
    max_tokens: Annotated[
        int, typer.Option(help="Response budget, paths and inserted tags included.")
    ] = 3000,
    num_paths: Annotated[int, typer.Option(help="Paths forked at each <Parallel>.")] = 2,
    max_blocks: Annotated[int, typer.Option(help="Blocks per response; then the text goes on unforked.")] = 4,
    limit: Annotated[int | None, typer.Option(help="Only the first N problems of each benchmark.")] = None,
    batch_size: Annotated[int, typer.Option(help="Trajectories decoded at once.")] = 64,
    backend: Annotated[str, typer.Option(help="Decoding backend: hf.")] = "hf",
    prompt_file: Annotated[str | None, typer.Option(help="parallel | sequential | a template file.")] = None,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    out: Annotated[
        Path | None, typer.Option(help="Run folder (default runs/eval-<model>-<mode>); rerun to resume.")
    ] = None,
    dtype: Annotated[str, typer.Option(help="auto | float32 | bfloat16 | float16.")] = "auto",
    tui: Annotated[bool, typer.Option("--tui", help="Show the evaluation live in the dashboard.")] = False,
) -> None:
    """Evaluate on math benchmarks: mean@k, pass@k, maj@k and parallel-thinking behaviour (docs/EVAL.md)."""
    from pr1.commands.live import run_job
    from pr1.eval.run import EvalConfig, default_out, run_eval

    cfg = EvalConfig(
        benches=benches,
        model=model,
        adapter=adapter,
        samples=samples,
        mode=mode,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        max_tokens=max_tokens,
        num_paths=num_paths,
        max_blocks=max_blocks,
        limit=limit,
        batch_size=batch_size,
        backend=backend,
        prompt_file=prompt_file,
        seed=seed,
        out=str(out) if out else None,
        dtype=dtype,
    )
    run_job(out or default_out(cfg), lambda: run_eval(cfg), tui=tui)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Run folder of the demo (resumes when it exists).")] = Path(
        "runs/demo"
    ),
    fast: Annotated[bool, typer.Option("--fast", help="A 2-minute smoke version.")] = False,
    tui: Annotated[bool, typer.Option("--tui", help="Show the demo live in the dashboard.")] = False,
    model: Annotated[
        str, typer.Option(help="Model to train (default: the embedded SmolLM2-135M).")
    ] = "smollm2-135m",
    seed: Annotated[int, typer.Option(help="Seed of the data, training and sampling.")] = 0,
) -> None:
    """The whole curriculum at toy scale, offline: synthetic cold-start data, SFT, GRPO with the alternating
    reward, and evaluation before and after, into one run folder."""
    from pr1.commands.demo import run_demo_command

    run_demo_command(out, fast=fast, tui=tui, model=model, seed=seed)


@app.command()
def bench(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help="Benchmarks to run: rollout, structured, sft, grpo (default: all).", show_default=False
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for bench.jsonl and BENCH.md (reruns reuse it).")] = Path(
        "runs/bench"
    ),
    model: Annotated[
        str | None,
        typer.Option(
            help="Model: a name or folder, or qwen3-0.6b / qwen3-1.7b / qwen3-4b for random weights of that "
            "architecture (default: the embedded model on CPU, qwen3-0.6b on CUDA)."
        ),
    ] = None,
    backends: Annotated[
        str, typer.Option(help="Training backends for sft and grpo, comma-separated.")
    ] = "hf,unsloth",
    quick: Annotated[bool, typer.Option("--quick", help="Smoke-test sizes, not figures to publish.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Measure again what --out already holds.")] = False,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="KEY=VALUE: change a benchmark setting (e.g. mode=free, paths=4, max_tokens=512); repeatable.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Rollout throughput, structured-decoding speedup, and SFT and GRPO step time and memory per backend,
    as tables (BENCH.md) and figures (bench.jsonl)."""
    from pr1.bench.suite import BENCHMARKS, BenchConfig
    from pr1.commands.bench import run_bench_command

    config = BenchConfig(
        names=tuple(names or BENCHMARKS),
        model=model,
        backends=tuple(b.strip() for b in backends.split(",") if b.strip()),
        quick=quick,
        force=force,
        overrides=dict(_key_value(item) for item in set_ or []),
    )
    run_bench_command(config, out)


def _key_value(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise Pr1Error(f"--set {item!r}: expected KEY=VALUE")
    return key.strip(), value.strip()


def main() -> None:
    try:
        app()
    except Pr1Error as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
