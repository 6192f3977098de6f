"""`pr1 sft`: cold-start SFT with TRL's SFTTrainer, writing a pr1 run folder.

TRL does the LoRA wrapping, QLoRA dtype handling, gradient checkpointing and the training loop (with
transformers' exact resume: optimizer, scheduler, RNG and data position). pr1 tokenizes itself (completion-only
labels, over-long rows dropped rather than cut), supplies the structured variant's collator, and changes two
things in the trainer (docs/SFT.md):
- the loss comes from the model's own forward. TRL 1.15 computes it with a fused LM head that needs Triton
  (absent on CPU builds of torch) and reads `lm_head.bias`, which peft's trainable-token wrapper of the LM head
  does not expose, so the tag rows could not train through it;
- checkpoints are moved to `RUN_DIR/checkpoints/step-NNNNNN` and marked complete once fully written.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from pr1.backends import generation_mode, pick_backend
from pr1.errors import Pr1Error
from pr1.runs import CHECKPOINTS_DIR, Run, latest_checkpoint, mark_checkpoint_complete, peak_memory_gb
from pr1.sft import backends
from pr1.sft.config import Pr1SFTConfig
from pr1.sft.data import StructuredCollator, build_dataset, count_tokens, load_sft_rows

FINAL_DIR = "final"


def make_callback(run: Run):
    from transformers import TrainerCallback

    class RunLogger(TrainerCallback):
        """Writes `loss`, `lr`, `grad_norm`, `epoch`, `tokens_per_s` and `memory_gb` to metrics.jsonl at every
        logging step."""

        def __init__(self) -> None:
            self.tokens = 0
            self.since = time.time()

        def on_train_begin(self, args, state, control, lr_scheduler=None, **kwargs):
            run.update_info(total_steps=state.max_steps)
            self.tokens, self.since = 0, time.time()
            if state.global_step > 0 and lr_scheduler is not None:
                # Resumed: the restored scheduler holds the learning rate of the schedule it was saved under;
                # re-derive it at this step for this run's total steps (they differ when --max-steps changed,
                # and a finished cosine schedule would otherwise start the resumed run at lr 0).
                lr_scheduler.last_epoch -= 1
                lr_scheduler.step()

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or "loss" not in logs:
                return
            now = time.time()
            run.log_metrics(
                state.global_step,
                loss=logs["loss"],
                lr=logs.get("learning_rate"),
                grad_norm=logs.get("grad_norm"),
                epoch=logs.get("epoch"),
                tokens_per_s=self.tokens / max(now - self.since, 1e-9),
                memory_gb=peak_memory_gb(),
            )
            self.tokens, self.since = 0, now

    return RunLogger()


def make_trainer_class(own_loss: bool):
    """A subclass of whichever SFTTrainer is in `trl` now (Unsloth replaces it with its own when imported)."""
    from transformers import Trainer
    from trl import SFTTrainer

    class Pr1SFTTrainer(SFTTrainer):
        def __init__(
            self,
            *args: Any,
            run: Run,
            logger: Any,
            keep_checkpoints: int,
            tag_lr: float | None,
            **kwargs: Any,
        ) -> None:
            self.run, self.logger, self.keep_checkpoints, self.tag_lr = run, logger, keep_checkpoints, tag_lr
            super().__init__(*args, callbacks=[logger], **kwargs)

        def create_optimizer(self, model=None):
            """The tag rows in parameter groups of their own when they have their own learning rate (the
            scheduler scales every group's rate alike)."""
            optimizer = super().create_optimizer(model)
            if self.tag_lr is None:
                return optimizer
            tags = {id(p) for n, p in self.model.named_parameters() if "trainable_tokens_delta" in n}
            groups = []
            for group in optimizer.param_groups:
                own = [p for p in group["params"] if id(p) in tags]
                rest = [p for p in group["params"] if id(p) not in tags]
                if rest:
                    groups.append({**group, "params": rest})
                if own:
                    groups.append({**group, "params": own, "lr": self.tag_lr})
            optimizer.param_groups = groups
            return optimizer

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            self.logger.tokens += count_tokens(inputs)
            if not own_loss:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            inputs["use_cache"] = False
            return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)

        def _save(self, output_dir=None, state_dict=None):
            """The adapter (LoRA weights and the six tag rows) and the tokenizer. peft would also save both
            embedding matrices whole, since adding the tags resized them; pr1 rebuilds those rows on load
            (`pr1.models.load_model` adds the tags the same way), so they stay out. No pickled arguments."""
            output_dir = output_dir or self.args.output_dir
            self.model.save_pretrained(output_dir, state_dict=state_dict, save_embedding_layers=False)
            self.processing_class.save_pretrained(output_dir)

        def _save_checkpoint(self, model, trial):
            Trainer._save_checkpoint(self, model, trial)  # TRL's override only adds a model card
            step = self.state.global_step
            written = Path(self.args.output_dir) / f"checkpoint-{step}"
            final = self.run.checkpoint_dir(step)
            if final.exists():  # an incomplete one from an interrupted save
                shutil.rmtree(final)
            written.rename(final)
            mark_checkpoint_complete(final, step=step)
            self.run.event("checkpoint", step=step, path=str(final))
            self._prune_checkpoints()

        def _prune_checkpoints(self) -> None:
            if self.keep_checkpoints <= 0:
                return
            ckpts = sorted(self.run.path.joinpath(CHECKPOINTS_DIR).glob("step-*"))
            complete = [c for c in ckpts if (c / "COMPLETE").exists()]
            for old in complete[: -self.keep_checkpoints]:
                shutil.rmtree(old, ignore_errors=True)

    return Pr1SFTTrainer


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
    from pr1.datasets import load_problems
    from pr1.prompts import load_template

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
    p = plan(config, console)
    if p.backend == "unsloth":
        backends.import_unsloth_first()
    run = Run.create(out, "sft", config, resume=resume)
    with run.recording():
        summary = _train(config, p, run, resume, console)
    run.finish("finished", **summary)
    return summary


def _train(config: Pr1SFTConfig, p: Plan, run: Run, resume: bool, console: Console) -> dict:
    from trl import SFTConfig

    from pr1.sft.format_check import format_check
    from pr1.structured import TagIds

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

    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    args = SFTConfig(
        output_dir=str(run.path / CHECKPOINTS_DIR),
        per_device_train_batch_size=p.micro_batch,
        gradient_accumulation_steps=config.batch // p.micro_batch,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,
        learning_rate=config.lr,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio,  # a float below 1 is a fraction of the total steps
        weight_decay=config.weight_decay,
        logging_steps=1,
        save_strategy="steps",
        save_steps=config.save_every,
        report_to="none",
        seed=config.seed,
        bf16=bf16,
        fp16=False,
        use_cpu=not cuda,
        gradient_checkpointing=config.gradient_checkpointing and p.backend == "hf",  # Unsloth does its own
        max_length=None,  # build_dataset already dropped the long rows
        dataset_kwargs={"skip_prepare_dataset": True},
        dataloader_pin_memory=cuda,
    )
    collator = None
    if config.variant == "structured":
        dtype = torch.bfloat16 if bf16 else next(model.parameters()).dtype
        collator = StructuredCollator(TagIds.from_tokenizer(tokenizer), tokenizer.pad_token_id, dtype)
    trainer = make_trainer_class(own_loss=p.backend == "hf")(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=loaded.peft_config,
        data_collator=collator,
        run=run,
        logger=make_callback(run),
        keep_checkpoints=config.keep_checkpoints,
        tag_lr=config.tag_lr,
    )
    checkpoint = latest_checkpoint(run.path) if resume else None
    if resume:
        where = f"step {trainer_step(checkpoint)}" if checkpoint else "the start (no complete checkpoint yet)"
        console.print(f"resuming from {where}")
    try:
        result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    except KeyboardInterrupt:
        _save_on_interrupt(trainer, console)
        raise

    final = run.path / FINAL_DIR
    partial = run.path / f".{FINAL_DIR}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    trainer.save_model(str(partial))
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    run.event("final", step=trainer.state.global_step, path=str(final))
    summary.update(steps=trainer.state.global_step, train_loss=result.training_loss, final=str(final))
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


def trainer_step(checkpoint: Path) -> int:
    return int(checkpoint.name.split("-")[1])


def _save_on_interrupt(trainer: Any, console: Console) -> None:
    """Ctrl-C: keep the optimizer steps done since the last checkpoint (the micro-batches of the step in
    progress are seen again on resume)."""
    step = trainer.state.global_step
    if step == 0 or trainer.run.checkpoint_dir(step).joinpath("COMPLETE").exists():
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
