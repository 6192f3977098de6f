"""Where `pr1 rl` gets its model and its GRPO trainer class from.

`hf`: transformers + PEFT LoRA (or full fine-tuning with lora_r=0) and TRL's own GRPOTrainer; runs anywhere,
CPU included. `unsloth` (CUDA only): Unsloth's 4-bit base + LoRA with its fused kernels, and the GRPOTrainer
that Unsloth patches into TRL (`PatchFastRL`), whose loss honours TRL's `tool_mask` (pr1's `env_mask`).
The choice of backend, importing Unsloth first, Unsloth's loading, what trains (LoRA and the six tag rows),
the generation mode and the model a run folder holds are shared with `pr1 sft` (pr1/backends.py).

Like pr1/backends.py, this module imports no transformers, trl or peft at module level (they load after
Unsloth, inside the functions).
"""

from __future__ import annotations

from pr1 import backends
from pr1.backends import LoadedModel
from pr1.errors import Pr1Error
from pr1.rl.config import RLConfig


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


def load_policy(cfg: RLConfig, backend: str) -> LoadedModel:
    """The model to train, its tokenizer (with the tags), and the LoRA config TRL should apply (if any): a run
    folder's adapter trains on (as is); a base model gets a new adapter, LoRA and the six tag rows as in
    `pr1 sft`; `lora_r` 0 trains every weight."""
    from peft import PeftModel

    from pr1.checkpoints import refuse_pickle_weights
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
        refuse_pickle_weights(adapter)
        model = PeftModel.from_pretrained(model, adapter, is_trainable=True)
        return LoadedModel(model, tokenizer, None, base, adapter)
    if cfg.lora_r == 0:
        if backend == "unsloth":
            raise Pr1Error("--lora-r 0 (full fine-tuning) needs --backend hf")
        return LoadedModel(model, tokenizer, None, base)
    lora = {"r": cfg.lora_r, "alpha": cfg.lora_alpha, "dropout": cfg.lora_dropout}
    if backend == "unsloth":
        model = backends.unsloth_lora(model, tokenizer, seed=cfg.seed, gradient_checkpointing=True, **lora)
        return LoadedModel(model, tokenizer, None, base)
    return LoadedModel(model, tokenizer, backends.lora_config(model, tokenizer, **lora), base)
