"""`pr1 sft`'s trainer: TRL's SFTTrainer with pr1's overrides, its settings, and the callback that writes
the run folder's metrics.

`Pr1SFTMixin` overrides four methods of TRL's trainer, each for one reason:

  create_optimizer   the tag rows in parameter groups of their own when they have their own learning rate
  create_scheduler   warmup of floor(warmup_ratio x steps), not transformers' ceil: a 3-step smoke run does
                     not spend its first step at lr 0
  compute_loss       counts the trained tokens (`tokens_per_s`); on `hf` the loss of the model's own forward:
                     TRL 1.15 computes it with a fused LM head that needs Triton (absent on CPU builds of
                     torch) and reads `lm_head.bias`, which peft's trainable-token wrapper of the LM head does
                     not expose, so the tag rows could not train through it
  _save              the adapter without the resized embedding matrices, and the tokenizer; no pickles
  _save_checkpoint   adopts transformers' `checkpoint-N` as RUN_DIR/checkpoints/step-NNNNNN (pr1.checkpoints)
                     and keeps the newest `keep_checkpoints`

The mixin sits on top of TRL's SFTTrainer or of the one Unsloth patches into TRL (`pr1.backends.with_base`).
Import this module after `pr1.backends.import_unsloth_first` when training on Unsloth.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
import trl
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from transformers import Trainer, TrainerCallback
from transformers.trainer_callback import PrinterCallback

from pr1 import checkpoints
from pr1.backends import LoadedModel, with_base
from pr1.runs import Run, log_trackers_into, peak_memory_gb
from pr1.sft.config import Pr1SFTConfig
from pr1.sft.data import StructuredCollator, count_tokens
from pr1.structured import TagIds


class RunLogger(TrainerCallback):
    """Writes `loss`, `lr`, `grad_norm`, `epoch`, `tokens_per_s` and `memory_gb` to metrics.jsonl at every
    logging step, and shows the progress (step, loss, lr, tokens/s, s/step, ETA); `tokens` counts the trained
    tokens since the last row (the trainer adds to it)."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.tokens = 0
        self.since = time.time()
        self.progress: Progress | None = None

    def on_train_begin(self, args, state, control, lr_scheduler=None, **kwargs):
        self.run.update_info(total_steps=state.max_steps)
        self.tokens, self.since = 0, time.time()
        self.progress = Progress(
            TextColumn("[bold]sft"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
        )
        self.task = self.progress.add_task("", total=state.max_steps, completed=state.global_step)
        self.progress.start()
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
        self.run.log_metrics(
            state.global_step,
            loss=logs["loss"],
            lr=logs.get("learning_rate"),
            grad_norm=logs.get("grad_norm"),
            epoch=logs.get("epoch"),
            tokens_per_s=self.tokens / max(now - self.since, 1e-9),
            memory_gb=peak_memory_gb(),
        )
        if self.progress is not None:
            speed = self.tokens / max(now - self.since, 1e-9)
            self.progress.update(
                self.task,
                completed=state.global_step,
                description=f"loss {logs['loss']:.4f}  lr {logs.get('learning_rate', 0):.2g}  {speed:.0f} tok/s  "
                f"{now - self.since:.1f} s/step",
            )
        self.tokens, self.since = 0, now

    def on_train_end(self, args, state, control, **kwargs):
        self.close()

    def close(self) -> None:
        """Stop the progress display (also when training stops with an error)."""
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


class Pr1SFTMixin:
    """pr1's additions to an SFTTrainer class; set the `pr1_*` attributes right after construction."""

    pr1_run: Run
    pr1_logger: RunLogger
    pr1_keep_checkpoints: int = 0  # <= 0: keep all
    pr1_tag_lr: float | None = None  # the tag rows' own learning rate; None: --lr
    pr1_own_loss: bool = False  # the loss of the model's own forward instead of TRL's
    pr1_warmup_ratio: float = 0.0

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        self.args.warmup_steps = int(self.pr1_warmup_ratio * num_training_steps)
        return super().create_scheduler(num_training_steps, optimizer)

    def create_optimizer(self, model=None):
        """The tag rows in parameter groups of their own when they have their own learning rate (the
        scheduler scales every group's rate alike)."""
        optimizer = super().create_optimizer(model)
        if self.pr1_tag_lr is None:
            return optimizer
        tags = {id(p) for n, p in self.model.named_parameters() if "trainable_tokens_delta" in n}
        groups = []
        for group in optimizer.param_groups:
            own = [p for p in group["params"] if id(p) in tags]
            rest = [p for p in group["params"] if id(p) not in tags]
            if rest:
                groups.append({**group, "params": rest})
            if own:
                groups.append({**group, "params": own, "lr": self.pr1_tag_lr})
        optimizer.param_groups = groups
        return optimizer

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """Counts the trained tokens; with `pr1_own_loss`, the model's own causal-LM loss (transformers'
        Trainer.compute_loss, skipping TRL's fused LM head: see the module docstring)."""
        self.pr1_logger.tokens += count_tokens(inputs)
        if not self.pr1_own_loss:
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
        """transformers' checkpoint (TRL's override only adds a model card), adopted as
        RUN_DIR/checkpoints/step-NNNNNN and marked complete; then the oldest beyond `keep_checkpoints` go."""
        Trainer._save_checkpoint(self, model, trial)
        step = self.state.global_step
        written = Path(self.args.output_dir) / f"checkpoint-{step}"
        target = checkpoints.adopt(written, self.pr1_run.path, step)
        self.pr1_run.event("checkpoint", step=step, path=str(target))
        checkpoints.prune(self.pr1_run.path, self.pr1_keep_checkpoints)


def sft_args(config: Pr1SFTConfig, run_dir: Path, *, backend: str, micro_batch: int) -> trl.SFTConfig:
    """TRL's settings for `config`: checkpoints written under RUN_DIR/checkpoints, pr1's tokenized dataset."""
    cuda = torch.cuda.is_available()
    return trl.SFTConfig(
        output_dir=str(run_dir / checkpoints.CHECKPOINTS_DIR),
        per_device_train_batch_size=micro_batch,
        gradient_accumulation_steps=config.batch // micro_batch,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,
        learning_rate=config.lr,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=0,  # floor(warmup_ratio x steps), set by Pr1SFTMixin.create_scheduler
        weight_decay=config.weight_decay,
        logging_steps=1,
        save_strategy="steps",
        save_steps=config.save_every,
        report_to=config.report_to,
        disable_tqdm=True,  # RunLogger shows the progress
        seed=config.seed,
        bf16=cuda and torch.cuda.is_bf16_supported(),
        fp16=False,
        use_cpu=not cuda,
        gradient_checkpointing=config.gradient_checkpointing and backend == "hf",  # Unsloth does its own
        max_length=None,  # build_dataset already dropped the long rows
        dataset_kwargs={"skip_prepare_dataset": True},
        dataloader_pin_memory=cuda,
    )


def build_trainer(
    config: Pr1SFTConfig, loaded: LoadedModel, dataset: Any, run: Run, *, backend: str, micro_batch: int
) -> Any:
    """A ready SFTTrainer (TRL's or Unsloth's, with pr1's overrides) writing into `run`."""
    log_trackers_into(run.path)
    args = sft_args(config, run.path, backend=backend, micro_batch=micro_batch)
    collator = None
    if config.variant == "structured":
        dtype = torch.bfloat16 if args.bf16 else next(loaded.model.parameters()).dtype
        tags = TagIds.from_tokenizer(loaded.tokenizer)
        collator = StructuredCollator(tags, loaded.tokenizer.pad_token_id, dtype)
    logger = RunLogger(run)
    trainer = with_base(Pr1SFTMixin, trl.SFTTrainer)(
        model=loaded.model,
        args=args,
        train_dataset=dataset,
        processing_class=loaded.tokenizer,
        peft_config=loaded.peft_config,
        data_collator=collator,
        callbacks=[logger],
    )
    trainer.pr1_run = run
    trainer.pr1_logger = logger
    trainer.pr1_keep_checkpoints = config.keep_checkpoints
    trainer.pr1_tag_lr = config.tag_lr
    trainer.pr1_own_loss = backend == "hf"
    trainer.pr1_warmup_ratio = config.warmup_ratio
    trainer.remove_callback(PrinterCallback)  # it prints every log dict; RunLogger shows the progress
    return trainer
