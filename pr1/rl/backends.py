"""Where `pr1 rl` gets its model, its GRPO trainer class and its generation mode from.

`hf`: transformers + PEFT LoRA (or full fine-tuning with lora_r=0) and TRL's own GRPOTrainer; runs anywhere,
CPU included. `unsloth` (CUDA only): Unsloth's 4-bit base + LoRA with its fused kernels, and the GRPOTrainer
that Unsloth patches into TRL (`PatchFastRL`), whose loss honours TRL's `tool_mask` (pr1's `env_mask`).
Unsloth's fused GRPO loss takes a 2D attention mask only, so the structured variant (4D path-window mask and
multiverse positions) runs on the `hf` backend; `auto` picks it there.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pr1.errors import Pr1Error
from pr1.rl.config import RLConfig
from pr1.runs import RUN_FILE, read_run_info

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def unsloth_available() -> bool:
    return importlib.util.find_spec("unsloth") is not None


def resolve_backend(name: str, variant: str) -> str:
    """`auto` -> `unsloth` on CUDA when it is installed and the variant is causal, else `hf`."""
    cuda = torch.cuda.is_available()
    if name == "auto":
        return "unsloth" if cuda and unsloth_available() and variant == "causal" else "hf"
    if name == "unsloth":
        if not cuda:
            raise Pr1Error("--backend unsloth needs a CUDA GPU; use --backend hf (or auto) on this machine")
        if not unsloth_available():
            raise Pr1Error("--backend unsloth: Unsloth is not installed (pip install 'pr1[unsloth]')")
        if variant == "structured":
            raise Pr1Error(
                "--backend unsloth --variant structured: Unsloth's fused GRPO loss takes no 4D attention mask "
                "or position ids, which the structured variant needs; use --backend hf (auto picks it)"
            )
    return name


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


@contextlib.contextmanager
def generation_mode(backend: str, model: Any) -> Iterator[None]:
    """Eval mode and no gradients while the rollout engine samples from `model`; training mode after."""
    was_training = model.training
    if backend == "unsloth":
        from unsloth import FastLanguageModel

        FastLanguageModel.for_inference(model)
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        if backend == "unsloth":
            from unsloth import FastLanguageModel

            FastLanguageModel.for_training(model)
        model.train(was_training)


@dataclass
class Policy:
    model: Any  # a PreTrainedModel, or a PeftModel when an adapter was loaded
    tokenizer: Any
    peft_config: Any  # a LoraConfig for GRPOTrainer to apply, or None
    base_model: str  # the base model's name or path (for `pr1 export`)
    adapter: str | None  # the adapter the policy started from, if any


def run_folder_source(path: str) -> tuple[str, str | None] | None:
    """For a `pr1 sft` / `pr1 rl` run folder: (base model, adapter folder or None for a merged model).
    None when `path` is not a run folder."""
    folder = Path(path).expanduser()
    if not (folder / RUN_FILE).is_file():
        return None
    info = read_run_info(folder)
    final = folder / "final"
    if not final.is_dir():
        raise Pr1Error(f"--model {path}: this {info.get('kind', '?')} run has no final/ model yet")
    if (final / "config.json").is_file() and not (final / "adapter_config.json").is_file():
        return str(final), None  # a merged model
    if not (final / "adapter_config.json").is_file():
        raise Pr1Error(f"--model {path}: final/ holds neither an adapter nor a model")
    config = info.get("config") or {}
    base = config.get("base_model") or config.get("model")
    if not base:
        adapter_config = json.loads((final / "adapter_config.json").read_text(encoding="utf-8"))
        base = adapter_config.get("base_model_name_or_path")
    if not base:
        raise Pr1Error(f"--model {path}: cannot tell the base model of this run (run.json config.model)")
    source = run_folder_source(str(base))
    if source is not None:  # an RL run on top of an SFT run: its base is the SFT run's base
        base = source[0]
    return str(base), str(final)


def load_policy(cfg: RLConfig, backend: str) -> Policy:
    """The model to train, its tokenizer (with the tags), and the LoRA config TRL should apply (if any)."""
    from pr1.models import load_model

    assert cfg.model is not None
    source = run_folder_source(cfg.model)
    base, adapter = source if source else (cfg.model, None)
    if backend == "unsloth":
        model, tokenizer = _unsloth_base(cfg, base)
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
        from unsloth import FastLanguageModel

        model = FastLanguageModel.get_peft_model(
            model,
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=LORA_TARGETS,
            use_gradient_checkpointing="unsloth",
            random_state=cfg.seed,
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


def _unsloth_base(cfg: RLConfig, base: str) -> tuple[Any, Any]:
    from unsloth import FastLanguageModel

    from pr1.models import add_tag_tokens, ensure_chat_template, resolve_model_path

    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=resolve_model_path(base),
        max_seq_length=cfg.max_prompt_tokens + cfg.max_tokens,
        load_in_4bit=cfg.load_in_4bit,
        dtype=None,
        trust_remote_code=cfg.trust_remote_code,
    )
    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    ensure_chat_template(tokenizer)
    add_tag_tokens(model, tokenizer)
    return model, tokenizer
