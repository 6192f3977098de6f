"""`pr1 rl` settings: one dataclass with the paper's values (METHOD.md §4-§7) scaled to one GPU.

A value comes, in order of precedence, from a command-line flag, the run folder's run.json (on --resume),
the TOML files given with `--config` (flat `key = value` pairs named like the fields below; a later file
overrides an earlier one, e.g. a stage preset then a hardware profile), and the defaults here
(`pr1.settings.resolve`). What changed from the paper for one GPU: 16 prompts x 8 samples per step instead
of 256 x 8, LoRA instead of full fine-tuning, and lr 5e-6 instead of 1e-6 (METHOD.md §7). Everything else
is the paper's. The rollout settings (budget, paths, temperature, ...) are the engine's: `RolloutConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pr1.format import FORMAT_RULES
from pr1.prompts import NAMES
from pr1.rewards import REWARD_NAMES, Schedule
from pr1.rollout.config import MODES, RolloutConfig
from pr1.settings import BACKENDS, TRACKERS, VARIANTS, SettingError, invalid, setting

# What a resumed run may change (pr1.runs.check_resume): how far it goes, how often it saves, evaluates and
# logs, and how many trajectories it decodes at once (sampling seeds do not depend on it).
MAY_CHANGE_ON_RESUME = frozenset(
    {"steps", "save_every", "eval_every", "eval", "eval_limit", "log_rollouts", "rollout_batch"}
)


@dataclass
class RLConfig(RolloutConfig):
    model: str | None = setting(None, "Model name/path, or a `pr1 sft` run folder (its adapter trains on).")
    data: str = setting("dapo", "Dataset name or file (rows with a problem and an answer).")
    reward: str = setting("alternating", "Reward (METHOD.md §4).", choices=REWARD_NAMES)
    variant: str = setting(
        "causal", "How the trainer scores a laid-out trace (structured: path-window mask).", choices=VARIANTS
    )
    mode: str | None = setting(
        None,
        "The rollout engine's sampling mode.",
        choices=MODES,
        shown="structured for --variant structured, else fork",
    )
    prompt_file: str = setting("parallel", f"{NAMES} | a template file with {{problem}}.")
    limit: int | None = setting(None, "Use only the first N problems.", min=1)
    # GRPO (METHOD.md §7): one step = `batch` prompts x `samples` samples, then `updates_per_step` optimizer steps
    samples: int = setting(8, "Samples per prompt (the GRPO group).", min=1)
    batch: int = setting(16, "Prompts per RL step (paper: 256 on 8 GPUs).", min=1)
    updates_per_step: int = setting(2, "Optimizer steps per RL step.", min=1)
    micro_batch: int = setting(
        8, "Sequences per forward/backward pass per device; gradient accumulation fills the rest.", min=1
    )
    steps: int = setting(300, "RL steps (generation rounds).", min=1)
    lr: float = setting(5e-6, "Learning rate, constant (paper: 1e-6 with full fine-tuning).", above=0)
    clip_low: float = setting(0.2, "Lower clip epsilon.", min=0, below=1)
    clip_high: float = setting(
        0.2, "Upper clip epsilon (the reference: 0.2, and 0.28 in its stage-2 scripts).", min=0
    )
    dual_clip: float | None = setting(
        3.0,
        "Dual clip: the importance ratio of a token with a negative advantage is capped here (verl's "
        "clip_ratio_c, TRL's delta; None: off).",
        above=1,
    )
    max_grad_norm: float = setting(1.0, "Gradient clipping norm.", above=0)
    weight_decay: float = setting(0.01, "AdamW weight decay (the reference's 0.01).", min=0)
    mask_inserted: bool = setting(
        True,
        "Give runtime-inserted tokens zero loss weight (default), or train on them like the reference.",
        flag="--mask-inserted/--train-inserted",
    )
    # Alternating / scaffold schedule (METHOD.md §4)
    window: int = setting(10, "Alternating reward: steps per window.", min=1)
    accuracy_steps: int = setting(8, "Alternating reward: accuracy steps at the start of each window.", min=0)
    switch_step: int = setting(200, "scaffold: the last alternating step.", min=0)
    scaffold_clip_high: float | None = setting(
        None,
        "scaffold: the upper clip epsilon after switch_step (the reference's accuracy phase: 0.2; None: "
        "clip_high throughout).",
        min=0,
    )
    format_rules: str = setting(
        "pr1",
        "Format validity in the rewards: pr1's rules (METHOD.md §1) or the reference code's more lenient ones.",
        choices=FORMAT_RULES,
    )
    # Model and adapter
    backend: str = setting(
        "auto", "Training backend (auto: unsloth on CUDA when installed, else hf).", choices=BACKENDS
    )
    lora_r: int = setting(32, "LoRA rank (0 = full fine-tuning, hf backend).", min=0)
    lora_alpha: int = setting(64, "LoRA alpha.", min=1)
    lora_dropout: float = setting(0.0, "LoRA dropout.", min=0, below=1)
    load_in_4bit: bool = setting(True, "unsloth backend: 4-bit base weights (QLoRA).")
    gradient_checkpointing: bool | None = setting(
        None, "Recompute activations to save memory.", shown="on on CUDA, off on CPU"
    )
    dtype: str = setting("auto", "Model dtype: auto | float32 | bfloat16 | float16.")
    trust_remote_code: bool = setting(False, "Run code shipped with the model.")
    # Run folder
    save_every: int = setting(25, "Checkpoint every N steps (0 = at the end only).", min=0)
    eval_every: int = setting(0, "Evaluate every N steps (0 = never; needs --eval).", min=0)
    eval: str | None = setting(None, "Benchmark for the periodic evaluation.")
    eval_limit: int | None = setting(None, "Evaluate on the first N problems only.", min=1)
    log_rollouts: int = setting(8, "Full rollouts written to rollouts.jsonl per step.", min=0)
    vllm_gpu_memory: float = setting(
        0.3,
        "--engine vllm on a GPU: the share of its memory vLLM takes (weights and KV cache) beside training.",
        above=0,
        below=1,
    )
    report_to: str = setting(
        "none",
        "Also log to a tracker (TRL's report_to; the run folder stays the record): none | tensorboard (event files "
        "in RUN_DIR/tensorboard) | wandb | trackio | mlflow.",
        choices=TRACKERS,
    )
    seed: int = setting(0, "Random seed (training and sampling).")

    def __post_init__(self) -> None:
        if self.mode is None:  # sample the way the trainer scores
            self.mode = "structured" if self.variant == "structured" else "fork"
        super().__post_init__()
        if not self.model:
            raise SettingError(
                "{model:name} is required (a model name or path, or an SFT run folder)", model=None
            )
        if self.samples < 2:
            raise invalid("samples", self.samples, "GRPO needs at least 2 samples per prompt")
        if self.eval_every and not self.eval:
            raise SettingError(
                "{eval_every:name} needs {eval:name} BENCH (the benchmark to evaluate on)",
                eval_every=self.eval_every,
                eval=None,
            )
        if (self.batch * self.samples) % self.updates_per_step:
            raise SettingError(
                "{batch} x {samples} rollouts do not split into {updates_per_step} equal optimizer steps",
                batch=self.batch,
                samples=self.samples,
                updates_per_step=self.updates_per_step,
            )
        if self.dual_clip is not None and self.dual_clip <= 1 + self.clip_high:
            raise SettingError(
                "{dual_clip} must exceed 1 + {clip_high} (it caps ratios above the clip range)",
                dual_clip=self.dual_clip,
                clip_high=self.clip_high,
            )
        if self.accuracy_steps > self.window:
            raise SettingError(
                "reward schedule: {accuracy_steps} exceeds {window}",
                accuracy_steps=self.accuracy_steps,
                window=self.window,
            )

    def clip_high_at(self, step: int) -> float:
        """The upper clip epsilon of RL step `step` (first = 1): `scaffold_clip_high` after a scaffold's switch."""
        if self.reward == "scaffold" and self.scaffold_clip_high is not None and step > self.switch_step:
            return self.scaffold_clip_high
        return self.clip_high

    def schedule(self) -> Schedule:
        return Schedule(self.reward, self.window, self.accuracy_steps, self.switch_step, self.format_rules)
