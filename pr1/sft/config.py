"""`pr1 sft` settings: METHOD.md §7's SFT recipe scaled to one GPU. No torch import here (the CLI's help uses it).

Paper (8 GPUs, full fine-tuning of Qwen3-4B-Base): 5 epochs, global batch 128, lr 1e-5 cosine, warmup 0.1,
weight decay 0.01, max length 4,096. Kept as the defaults; what changes on one GPU is how the batch is built
(micro-batches plus gradient accumulation) and that the weights train through a LoRA adapter, with the six tag
rows of the embedding and output matrices trained in full (docs/SFT.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pr1.errors import Pr1Error
from pr1.presets import checked, layer

VARIANTS = ("causal", "structured")
BACKENDS = ("auto", "unsloth", "hf")
QUANTS = ("auto", "4bit", "8bit", "none")
SCHEDULERS = ("cosine", "linear", "constant", "constant_with_warmup")

# A resumed run keeps the settings it started with, except these.
RESUMABLE_CHANGES = frozenset(
    {"max_steps", "save_every", "keep_checkpoints", "format_check", "format_check_base"}
)


@dataclass
class Pr1SFTConfig:
    model: str
    data: str
    variant: str = "causal"
    prompt_file: str | None = None  # a template name (parallel, sequential) or file; None = parallel
    # LoRA
    lora_r: int = 64
    lora_alpha: int | None = None  # None = 2 * lora_r
    lora_dropout: float = 0.0  # Unsloth's fast path needs 0
    quant: str = "auto"  # auto = 4bit (QLoRA) on CUDA, none on CPU
    # optimisation (METHOD.md §7)
    epochs: float = 5.0
    lr: float = 1e-5
    tag_lr: float | None = None  # learning rate of the six tag rows (new parameters); None = lr
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_length: int = 4096  # rows whose prompt + trace is longer are dropped, as the paper's data filter does
    batch: int = 128  # sequences per optimizer step
    micro_batch: int | None = None  # per forward pass; None = the backend's default for a 24 GB GPU
    max_steps: int | None = None  # stop after this many optimizer steps (None or 0: run all epochs)
    gradient_checkpointing: bool = True
    # run folder
    save_every: int = 50
    keep_checkpoints: int = 3  # complete checkpoints kept (0 = all)
    backend: str = "auto"
    # quick format check after training (0 disables)
    format_check: int = 8
    format_check_data: str = "gsm8k"
    format_check_length: int = 1024  # max new tokens per completion
    format_check_base: bool = False  # also check the base model first, to show the gain
    seed: int = 0
    trust_remote_code: bool = False

    @property
    def alpha(self) -> int:
        return self.lora_alpha if self.lora_alpha is not None else 2 * self.lora_r

    def validate(self) -> None:
        """Raise Pr1Error naming the first bad flag."""
        choices = {
            "variant": VARIANTS,
            "backend": BACKENDS,
            "quant": QUANTS,
            "lr_scheduler": SCHEDULERS,
        }
        for name, allowed in choices.items():
            value = getattr(self, name)
            if value not in allowed:
                raise Pr1Error(f"{flag(name)} {value!r}: expected one of {', '.join(allowed)}")
        positive = ("lora_r", "batch", "max_length", "save_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise Pr1Error(f"{flag(name)} {getattr(self, name)}: must be at least 1")
        if self.micro_batch is not None and self.micro_batch < 1:
            raise Pr1Error(f"--micro-batch {self.micro_batch}: must be at least 1")
        if self.micro_batch is not None and self.batch % self.micro_batch:
            raise Pr1Error(
                f"--batch {self.batch} is not a multiple of --micro-batch {self.micro_batch}: the global batch "
                "is micro-batch x gradient-accumulation steps"
            )
        if self.epochs <= 0:
            raise Pr1Error(f"--epochs {self.epochs}: must be positive")
        for name in ("lr", "tag_lr"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise Pr1Error(f"{flag(name)} {value}: must be positive")
        if not 0 <= self.warmup_ratio < 1:
            raise Pr1Error(f"--warmup-ratio {self.warmup_ratio}: expected a fraction in [0, 1)")
        if self.format_check_length < 1:
            raise Pr1Error(f"--format-check-length {self.format_check_length}: must be at least 1")
        for name in ("max_steps", "format_check", "keep_checkpoints"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise Pr1Error(f"{flag(name)} {value}: must not be negative")


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def resolve_config(
    overrides: dict[str, Any], stored: dict[str, Any] | None = None, files: Sequence[str | Path] = ()
) -> Pr1SFTConfig:
    """The config of a run: defaults <- the `--config` `files`, left to right <- `stored` (the config in
    run.json of a resumed run) <- the flags given on the command line (`overrides`, unset flags left out).

    `--model` and `--data` must come from somewhere. A resumed run keeps its stored settings: a flag may change
    only what RESUMABLE_CHANGES lists (config files do not override the stored settings)."""
    flags = checked(overrides, Pr1SFTConfig, "command line")
    values = layer(files, Pr1SFTConfig)
    if stored is not None:
        names = {f.name for f in dataclasses.fields(Pr1SFTConfig)}
        base = {k: v for k, v in stored.items() if k in names}
        for name, value in flags.items():
            if name not in RESUMABLE_CHANGES and base.get(name) != value:
                raise Pr1Error(
                    f"{flag(name)} {value!r}: this run started with {base.get(name)!r}, and a resumed run keeps "
                    f"its settings (it may change only {', '.join(sorted(flag(n) for n in RESUMABLE_CHANGES))})"
                )
        values.update(base)
    values.update(flags)
    missing = [flag(n) for n in ("model", "data") if not values.get(n)]
    if missing:
        raise Pr1Error(f"{' and '.join(missing)} required (as flags or in a --config file)")
    config = Pr1SFTConfig(**values)
    config.validate()
    return config
