"""`pr1 sft` settings: METHOD.md §7's SFT recipe scaled to one GPU. No torch import here (the CLI's help uses it).

Paper (8 GPUs, full fine-tuning of Qwen3-4B-Base): 5 epochs, global batch 128, lr 1e-5 cosine, warmup 0.1,
weight decay 0.01, max length 4,096. Kept as the defaults; what changes on one GPU is how the batch is built
(micro-batches plus gradient accumulation) and that the weights train through a LoRA adapter, with the six tag
rows of the embedding and output matrices trained in full (docs/SFT.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from pr1.prompts import NAMES
from pr1.settings import BACKENDS, TRACKERS, VARIANTS, SettingError, Settings, setting

QUANTS = ("auto", "4bit", "8bit", "none")
SCHEDULERS = ("cosine", "linear", "constant", "constant_with_warmup")

# What a resumed run may change (pr1.runs.check_resume): where it stops, how often it saves, the format check.
MAY_CHANGE_ON_RESUME = frozenset(
    {"max_steps", "save_every", "keep_checkpoints", "format_check", "format_check_base"}
)


@dataclass
class Pr1SFTConfig(Settings):
    model: str | None = setting(None, "Base model: smollm2-135m, a local folder or a Hub id.")
    data: str | None = setting(
        None, "SFT rows (.jsonl: prompt + completion, problem + trace or problem + solution) or a name."
    )
    variant: str = setting(
        "causal",
        "How traces are trained (structured: path-window mask, multiverse positions).",
        choices=VARIANTS,
    )
    prompt_file: str | None = setting(
        None, f"{NAMES} | a template file (rows without a prompt).", shown="parallel"
    )
    # LoRA
    lora_r: int = setting(64, "LoRA rank.", min=1)
    lora_alpha: int | None = setting(None, "LoRA alpha.", min=1, shown="2 x rank")
    lora_dropout: float = setting(0.0, "LoRA dropout (Unsloth's fast path needs 0).", min=0, below=1)
    quant: str = setting("auto", "Base weights (auto: 4bit on CUDA, none on CPU).", choices=QUANTS)
    # optimisation (METHOD.md §7)
    epochs: float = setting(5.0, "Epochs.", above=0)
    lr: float = setting(1e-5, "Peak learning rate, cosine schedule.", above=0)
    tag_lr: float | None = setting(None, "Learning rate of the six new tag rows.", above=0, shown="--lr")
    lr_scheduler: str = setting("cosine", "Learning-rate schedule.", choices=SCHEDULERS)
    warmup_ratio: float = setting(0.1, "Warmup, as a fraction of the steps.", min=0, below=1)
    weight_decay: float = setting(0.01, "AdamW weight decay.", min=0)
    max_length: int = setting(
        4096, "Drop rows whose prompt + trace exceed N tokens (the paper's filter).", min=1
    )
    batch: int = setting(128, "Sequences per optimizer step.", min=1)
    micro_batch: int | None = setting(
        None, "Sequences per forward pass.", min=1, shown="1 hf, 2 unsloth (a 24 GB GPU)"
    )
    max_steps: int | None = setting(
        None, "Stop after N optimizer steps (0: all epochs).", min=0, shown="all epochs"
    )
    gradient_checkpointing: bool = setting(True, "Recompute activations to save memory.")
    # run folder
    save_every: int = setting(50, "Checkpoint every N steps.", min=1)
    keep_checkpoints: int = setting(3, "Complete checkpoints kept (0: all).", min=0)
    backend: str = setting("auto", "Training backend (auto: the fastest available).", choices=BACKENDS)
    # quick format check after training (0 disables)
    format_check: int = setting(8, "Problems for the quick format check after training (0: off).", min=0)
    format_check_data: str = setting("gsm8k", "Problems of the format check: a dataset name or file.")
    format_check_length: int = setting(1024, "Max new tokens per format-check completion.", min=1)
    format_check_base: bool = setting(False, "Also check the base model before training, to show the gain.")
    report_to: str = setting(
        "none",
        "Also log to a tracker (TRL's report_to; the run folder stays the record): none | tensorboard (event files "
        "in RUN_DIR/tensorboard) | wandb | trackio | mlflow.",
        choices=TRACKERS,
    )
    seed: int = setting(0, "Random seed.")
    trust_remote_code: bool = setting(False, "Run code shipped with the model (off by default).")

    def __post_init__(self) -> None:
        super().__post_init__()
        missing = [name for name in ("model", "data") if not getattr(self, name)]
        if missing:
            names = " and ".join(f"{{{name}:name}}" for name in missing)
            raise SettingError(f"{names} required (as flags or in a --config file)", **dict.fromkeys(missing))
        if self.micro_batch is not None and self.batch % self.micro_batch:
            raise SettingError(
                "{batch} is not a multiple of {micro_batch}: the global batch is micro-batch x "
                "gradient-accumulation steps",
                batch=self.batch,
                micro_batch=self.micro_batch,
            )

    @property
    def alpha(self) -> int:
        return self.lora_alpha if self.lora_alpha is not None else 2 * self.lora_r
