"""`pr1 sft`: cold-start SFT with TRL's SFTTrainer, writing a pr1 run folder.

TRL does the LoRA wrapping, QLoRA dtype handling, gradient checkpointing and the training loop (with
transformers' exact resume: optimizer, scheduler, RNG and data position). pr1 tokenizes itself (completion-only
labels, over-long rows dropped rather than cut), supplies the structured variant's collator, and changes the
trainer where pr1/sft/trainer.py says (the loss of the model's own forward on `hf`; checkpoints adopted as
`RUN_DIR/checkpoints/step-NNNNNN`, pr1/checkpoints.py). docs/SFT.md.

This module imports no transformers, trl or peft at module level: `train` imports Unsloth first when it trains
on Unsloth, so that its patches apply to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from pr1 import checkpoints
from pr1.backends import generation_mode, import_unsloth_first, pick_backend
from pr1.datasets import load_problems
from pr1.errors import Pr1Error
from pr1.prompts import load_template
from pr1.runs import Run, read_metrics, read_run_info
from pr1.sft import backends
from pr1.sft.config import Pr1SFTConfig
from pr1.sft.data import build_dataset, load_sft_rows


@dataclass
class Plan:
    """What `train` settles before it opens the run folder, so that bad input fails without leaving one."""

    backend: str
    quant: str
    micro_batch: int
    template: str
    rows: list[dict]
    problems: list[dict]  # of the format check


def plan(config: Pr1SFTConfig, console: Console) -> Plan:
    backend, why = pick_backend(config.backend, config.variant)
    quant = backends.resolve_quant(config.quant, backend)
    micro = config.micro_batch or min(backends.DEFAULT_MICRO_BATCH[backend], config.batch)
    if config.batch % micro:
        raise Pr1Error(
            f"--batch {config.batch} is not a multiple of the micro-batch {micro}; set --micro-batch"
        )
    template = load_template(config.prompt_file)
    rows = load_sft_rows(config.data, template)
    problems = (
        load_problems(config.format_check_data, limit=config.format_check) if config.format_check else []
    )
    console.print(f"backend: [bold]{backend}[/] ({why}); quantization: {quant}; micro-batch: {micro}")
    return Plan(backend, quant, micro, template, rows, problems)


def train(
    config: Pr1SFTConfig, out: str | Path, *, resume: bool = False, console: Console | None = None
) -> dict:
    """Run SFT into the run folder `out` and return the run's summary (what `run.json` records at the end)."""
    console = console or Console(stderr=True)
    if resume and (done := _finished_summary(Path(out), config)) is not None:
        console.print(f"{out}: this run is finished ({done['steps']} steps); --max-steps N trains it further")
        return done
    p = plan(config, console)
    if p.backend == "unsloth":
        import_unsloth_first()
    run = Run.create(out, "sft", config, resume=resume)
    with run.recording():
        summary = _train(config, p, run, resume, console)
    run.finish("finished", **summary)
    return summary


def _train(config: Pr1SFTConfig, p: Plan, run: Run, resume: bool, console: Console) -> dict:
    # transformers and trl, after Unsloth (`train`)
    from pr1.sft.format_check import format_check
    from pr1.sft.trainer import build_trainer

    loaded = backends.load(config, p.backend, p.quant)
    model, tokenizer = loaded.model, loaded.tokenizer
    dataset, dropped = build_dataset(p.rows, tokenizer, config.max_length)
    run.update_info(backend=p.backend, quant=p.quant, micro_batch=p.micro_batch, train_rows=len(dataset))
    if dropped:
        message = f"{dropped} of {len(p.rows)} rows are longer than --max-length {config.max_length} and were dropped"
        run.event("notice", message=message)
        console.print(f"[yellow]{message}[/]")

    summary: dict[str, Any] = {}
    if config.format_check_base and p.problems and not resume:
        with generation_mode(model, p.backend):
            base, base_rows = format_check(
                model, tokenizer, p.problems, template=p.template, max_new_tokens=config.format_check_length
            )
        _report_check(run, console, "base", 0, base, base_rows)
        summary["base_check"] = base

    trainer = build_trainer(config, loaded, dataset, run, backend=p.backend, micro_batch=p.micro_batch)
    checkpoint = checkpoints.latest_checkpoint(run.path) if resume else None
    if checkpoint is not None:
        checkpoints.refuse_pickle_weights(checkpoint)  # transformers would torch.load a pytorch_model.bin
    if resume:
        where = (
            f"step {checkpoints.checkpoint_step(checkpoint)}"
            if checkpoint
            else "the start (no complete checkpoint yet)"
        )
        console.print(f"resuming from {where}")
    try:
        result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    except KeyboardInterrupt:
        trainer.pr1_logger.close()
        _save_on_interrupt(trainer, console)
        raise
    finally:
        trainer.pr1_logger.close()

    final = checkpoints.save_final(run.path, trainer.save_model)
    run.event("final", step=trainer.state.global_step, path=str(final))
    # the mean loss of every step the run made (transformers' training_loss covers only this process's)
    losses = [r["loss"] for r in read_metrics(run.path) if isinstance(r.get("loss"), (int, float))]
    train_loss = sum(losses) / len(losses) if losses else result.training_loss
    summary.update(steps=trainer.state.global_step, train_loss=train_loss, final=str(final))
    console.print(f"adapter saved in {final}")

    if p.problems:
        with generation_mode(trainer.model, p.backend):
            check, check_rows = format_check(
                trainer.model,
                tokenizer,
                p.problems,
                template=p.template,
                max_new_tokens=config.format_check_length,
            )
        _report_check(run, console, "sft", trainer.state.global_step, check, check_rows)
        summary["format_check"] = check
    return summary


def _finished_summary(out: Path, config: Pr1SFTConfig) -> dict | None:
    """The summary of a finished run that `config` would not take further (no --max-steps beyond the steps it
    made): resuming it again must not train another step."""
    info = read_run_info(out)
    summary = info.get("summary")
    if (
        info.get("status") != "finished"
        or not isinstance(summary, dict)
        or not (out / checkpoints.FINAL_DIR).is_dir()
    ):
        return None
    steps = summary.get("steps")
    return summary if isinstance(steps, int) and (not config.max_steps or config.max_steps <= steps) else None


def _save_on_interrupt(trainer: Any, console: Console) -> None:
    """Ctrl-C: keep the optimizer steps done since the last checkpoint (the micro-batches of the step in
    progress are seen again on resume)."""
    step = trainer.state.global_step
    if step == 0 or checkpoints.is_complete(checkpoints.checkpoint_dir(trainer.pr1_run.path, step)):
        return
    console.print(f"interrupted: saving a checkpoint at step {step}")
    trainer._save_checkpoint(trainer.model, trial=None)


def _report_check(run: Run, console: Console, which: str, step: int, summary: dict, rows: list[dict]) -> None:
    run.event("format_check", model=which, step=step, **summary)
    run.log_rollouts(step, [{**row, "source": which} for row in rows])
    if step > 0:  # metrics rows count steps from 1; the base model's check stays in events and rollouts
        run.log_metrics(step, **{f"format_check/{k}": v for k, v in summary.items() if k != "n"})
    console.print(
        f"format check ({which}, {summary['n']} problems): "
        f"format-valid {summary['format_valid_rate']:.0%}, parallel {summary['parallel_ratio']:.0%}, "
        f"parallel and valid {summary['parallel_valid_rate']:.0%}, accuracy {summary['accuracy']:.0%}, "
        f"finished {summary['finished_rate']:.0%}"
    )
