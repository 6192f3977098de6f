"""`pr1 rl` settings: one dataclass with the paper's values (METHOD.md §4-§7) scaled to one GPU.

A value comes, in order of precedence, from a command-line flag, the run folder's run.json (on --resume),
the TOML files given with `--config` (flat `key = value` pairs named like the fields below; a later file
overrides an earlier one, e.g. a stage preset then a hardware profile: `pr1.presets`), and the defaults here.
What changed from the paper for one GPU: 16 prompts x 8 samples per step instead of 256 x 8, LoRA instead
of full fine-tuning, and lr 5e-6 instead of 1e-6 (METHOD.md §7). Everything else is the paper's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from pr1.errors import Pr1Error
from pr1.presets import checked, layer
from pr1.rewards import REWARD_NAMES, Schedule
from pr1.rollout.config import MODES  # the rollout engine's sampling modes

VARIANTS = ("causal", "structured")
BACKENDS = ("auto", "unsloth", "hf")


@dataclass
class RLConfig:
    model: str | None = None  # model name/path, or an `pr1 sft` / `pr1 rl` run folder
    data: str = "dapo"  # dataset name or file (rows with a problem and an answer)
    reward: str = "alternating"  # accuracy | tiered | parallel-accuracy | alternating | scaffold
    variant: str = "causal"  # causal | structured (how the trainer scores a laid-out trace)
    # the rollout engine's sampling mode: fork | free | structured; None: structured for the structured
    # variant (sampling as it is scored), else fork
    mode: str | None = None
    prompt_file: str = "parallel"  # parallel | sequential | a template file with {problem}
    limit: int | None = None  # use only the first N problems of the data
    # GRPO (METHOD.md §7): one step = `batch` prompts x `group` samples, then `updates_per_step` optimizer steps
    group: int = 8
    batch: int = 16  # paper: 256 prompts per step on 8 GPUs
    updates_per_step: int = 2
    micro_batch: int = (
        8  # sequences per forward/backward pass (per device); gradient accumulation fills the rest
    )
    steps: int = 300
    lr: float = 5e-6  # paper: 1e-6 (full fine-tuning); constant schedule
    clip_low: float = 0.2
    clip_high: float = 0.28  # paper: 0.2 in stage 1, 0.28 in stage 2
    max_grad_norm: float = 1.0
    weight_decay: float = 0.0
    # Rollout (METHOD.md §5)
    max_tokens: int = 3000
    max_prompt_tokens: int = 2000
    num_paths: int = 2
    max_blocks: int = 4
    max_path_tokens: int = 4096
    temperature: float = 1.0
    top_p: float = 1.0
    # trajectories the engine decodes at once (per process; their paths decode alongside): THE memory knob
    # of the rollout, whose KV cache holds rollout_batch x num_paths rows of prompt + max_tokens (examples/)
    rollout_batch: int = 64
    mask_inserted: bool = True  # False = reference behaviour: runtime-inserted tokens are trained on
    # Alternating / scaffold schedule (METHOD.md §4)
    window: int = 10
    accuracy_steps: int = 8
    switch_step: int = 200
    # Model and adapter
    backend: str = "auto"  # auto (unsloth on CUDA when installed, else hf) | unsloth | hf
    lora_r: int = 32  # 0 = full fine-tuning (hf backend)
    lora_alpha: int = 64
    lora_dropout: float = 0.0
    load_in_4bit: bool = True  # unsloth backend: 4-bit base weights (QLoRA)
    gradient_checkpointing: bool | None = None  # None = on for CUDA, off on CPU
    dtype: str = "auto"
    trust_remote_code: bool = False
    # Run folder
    save_every: int = 25  # steps between checkpoints (0 = only at the end)
    eval_every: int = 0  # steps between evaluations (0 = never)
    eval: str | None = None  # benchmark for the periodic evaluation
    eval_limit: int | None = None  # evaluate on the first N problems only
    log_rollouts: int = 8  # full rollouts written to rollouts.jsonl per step
    seed: int = 0

    def schedule(self) -> Schedule:
        return Schedule(self.reward, self.window, self.accuracy_steps, self.switch_step)

    def validate(self) -> RLConfig:
        if not self.model:
            raise Pr1Error("--model is required (a model name or path, or an SFT run folder)")
        if self.mode is None:
            self.mode = "structured" if self.variant == "structured" else "fork"
        choices = {"reward": REWARD_NAMES, "variant": VARIANTS, "mode": MODES, "backend": BACKENDS}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise Pr1Error(f"--{_flag(key)} {getattr(self, key)!r}: expected one of {', '.join(allowed)}")
        positive = (
            "group",
            "batch",
            "updates_per_step",
            "micro_batch",
            "steps",
            "max_tokens",
            "num_paths",
            "rollout_batch",
        )
        for key in positive:
            if getattr(self, key) < 1:
                raise Pr1Error(f"--{_flag(key)} {getattr(self, key)}: must be at least 1")
        if self.group < 2:
            raise Pr1Error(f"--group {self.group}: GRPO needs at least 2 samples per prompt")
        for key in ("save_every", "eval_every", "lora_r", "max_blocks", "log_rollouts"):
            if getattr(self, key) < 0:
                raise Pr1Error(f"--{_flag(key)} {getattr(self, key)}: must not be negative")
        if self.lr <= 0 or not 0 <= self.clip_low < 1 or self.clip_high < 0:
            raise Pr1Error("--lr must be positive, --clip-low in [0, 1) and --clip-high non-negative")
        if self.eval_every and not self.eval:
            raise Pr1Error("--eval-every needs --eval BENCH (the benchmark to evaluate on)")
        if (self.batch * self.group) % self.updates_per_step:
            raise Pr1Error(
                f"--batch {self.batch} x --group {self.group} rollouts do not split into "
                f"updates_per_step={self.updates_per_step} equal optimizer steps"
            )
        try:
            self.schedule()
        except ValueError as e:
            raise Pr1Error(f"reward schedule: {e}") from None
        return self


def _flag(key: str) -> str:
    return key.replace("_", "-")


FIELDS = frozenset(f.name for f in fields(RLConfig))


def resolve(
    cli: dict[str, Any], presets: Sequence[str | Path] = (), saved: dict[str, Any] | None = None
) -> RLConfig:
    """Defaults <- the `presets` files, left to right <- saved run config (resume) <- flags given on the
    command line (None = not given)."""
    values = layer(presets, RLConfig)
    if saved:
        known = {k: v for k, v in saved.items() if k in FIELDS}
        values.update(checked(known, RLConfig, "the run's saved settings (run.json)"))
    values.update(checked({k: v for k, v in cli.items() if v is not None}, RLConfig, "command line"))
    return RLConfig(**values).validate()


def as_dict(config: RLConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)
