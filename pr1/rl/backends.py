"""Where `pr1 rl` gets its model, its GRPO trainer class and its generation mode from.

`hf`: transformers + PEFT LoRA (or full fine-tuning with lora_r=0) and TRL's own GRPOTrainer; runs anywhere,
CPU included. `unsloth` (CUDA only): Unsloth's 4-bit base + LoRA with its fused kernels, and the GRPOTrainer
that Unsloth patches into TRL (`PatchFastRL`), whose loss honours TRL's `tool_mask` (pr1's `env_mask`).
The choice of backend, Unsloth's loading and the model a run folder holds are shared with `pr1 sft`
(pr1/backends.py).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from pr1 import backends
from pr1.errors import Pr1Error
from pr1.rl.config import RLConfig


def resolve_backend(name: str, variant: str) -> str:
    """`auto` -> `unsloth` on CUDA when it is installed and the variant is causal, else `hf`."""
    return backends.pick_backend(name, variant)[0]


def trl_classes(backend: str) -> tuple[type, type]:
    """(GRPOTrainer, GRPOConfig) for the backend: TRL's own, or the ones Unsloth patches into `trl`."""
    if backend == "unsloth":
        import unsloth
        from unsloth import FastLanguageModel

        patch = getattr(unsloth, "PatchFastRL", None)  # recent versions patch on import; older ones need it
        if patch is not None:
            patch("GRPO", FastLanguageModel)
        import trl  # attribute access after the patch: Unsloth replaces trl.GRPOTrainer / trl.GRPOConfig

        return trl.GRPOTrainer, trl.GRPOConfig
    from trl import GRPOConfig, GRPOTrainer

    return GRPOTrainer, GRPOConfig


def generation_mode(backend: str, model: Any) -> contextlib.AbstractContextManager[None]:
    """Eval mode and no gradients while the rollout engine samples from `model`; training mode after."""
    return backends.generation_mode(model, backend)


@dataclass
class Policy:
    model: Any  # a PreTrainedModel, or a PeftModel when an adapter was loaded
    tokenizer: Any
    peft_config: Any  # a LoraConfig for GRPOTrainer to apply, or None
    base_model: str  # the base model's name or path (for `pr1 export`)
    adapter: str | None  # the adapter the policy started from, if any


def load_policy(cfg: RLConfig, backend: str) -> Policy:
    """The model to train, its tokenizer (with the tags), and the LoRA config TRL should apply (if any)."""
    from pr1.models import load_model

    assert cfg.model is not None
    source = backends.run_folder_source(cfg.model)
    base, adapter = source if source else (cfg.model, None)
    if backend == "unsloth":
        model, tokenizer = backends.load_unsloth(
            base,
            max_seq_length=cfg.max_prompt_tokens + cfg.max_tokens,
            quant="4bit" if cfg.load_in_4bit else "none",
            trust_remote_code=cfg.trust_remote_code,
        )
    else:
        model, tokenizer = load_model(base, dtype=cfg.dtype, trust_remote_code=cfg.trust_remote_code)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter, is_trainable=True)
        return Policy(model, tokenizer, None, base, adapter)
    if cfg.lora_r == 0:
        if backend == "unsloth":
            raise Pr1Error("--lora-r 0 (full fine-tuning) needs --backend hf")
        return Policy(model, tokenizer, None, base, None)
    if backend == "unsloth":
        model = backends.unsloth_lora(
            model,
            r=cfg.lora_r,
            alpha=cfg.lora_alpha,
            dropout=cfg.lora_dropout,
            seed=cfg.seed,
            gradient_checkpointing=True,
        )
        return Policy(model, tokenizer, None, base, None)
    return Policy(model, tokenizer, lora_config(cfg), base, None)


def lora_config(cfg: RLConfig) -> Any:
    """The LoRA adapter the hf backend trains (all linear layers of the decoder)."""
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
