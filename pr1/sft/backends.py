"""Where `pr1 sft` gets its model: `unsloth` or `hf`.

- `unsloth` (CUDA): Unsloth's FastLanguageModel (4-bit QLoRA by default, its fused kernels, its offloaded
  gradient checkpointing) and the SFTTrainer Unsloth patches into TRL.
- `hf`: transformers + peft LoRA; on CUDA with bitsandbytes 4-bit (QLoRA) or 8-bit, on CPU in float32.

The choice of backend (`auto`; the structured variant runs on `hf`), importing Unsloth first, Unsloth's
loading and what trains (LoRA and the six tag rows) are shared with `pr1 rl`: pr1/backends.py. transformers
is imported inside the functions, after `pr1.backends.import_unsloth_first` has run.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import torch

from pr1.backends import LoadedModel, load_unsloth, lora_config, unsloth_lora
from pr1.errors import Pr1Error
from pr1.sft.config import Pr1SFTConfig

# Micro-batch defaults for a 24 GB GPU at --max-length 4096 with a 4B model (docs/SFT.md): the hf path builds
# the full [batch, length, vocab] logits for its loss, Unsloth's fused cross-entropy does not.
DEFAULT_MICRO_BATCH = {"hf": 1, "unsloth": 2}


def resolve_quant(quant: str, backend: str) -> str:
    cuda = torch.cuda.is_available()
    if quant == "auto":
        return "4bit" if cuda else "none"
    if quant != "none" and not cuda:
        raise Pr1Error(f"--quant {quant} needs a CUDA GPU (bitsandbytes); use --quant none on CPU")
    if quant != "none" and backend == "hf" and importlib.util.find_spec("bitsandbytes") is None:
        raise Pr1Error(f"--quant {quant}: bitsandbytes is not installed (pip install bitsandbytes)")
    return quant


def load(config: Pr1SFTConfig, backend: str, quant: str) -> LoadedModel:
    """The base model with the tags added, its tokenizer, and the LoRA adapter (Unsloth: applied; hf: its
    config, for SFTTrainer to apply)."""
    lora = {"r": config.lora_r, "alpha": config.alpha, "dropout": config.lora_dropout}
    if backend == "unsloth":
        model, tokenizer = load_unsloth(
            config.model,
            max_seq_length=config.max_length,
            quant=quant,
            trust_remote_code=config.trust_remote_code,
        )
        checkpointing = config.gradient_checkpointing
        model = unsloth_lora(model, tokenizer, seed=config.seed, gradient_checkpointing=checkpointing, **lora)
        return LoadedModel(model, tokenizer, None, config.model)
    if quant == "none":
        from pr1.models import load_model

        model, tokenizer = load_model(
            config.model, dtype=compute_dtype(), trust_remote_code=config.trust_remote_code
        )
    else:
        model, tokenizer = _load_bnb(config, quant)
    return LoadedModel(model, tokenizer, lora_config(model, tokenizer, **lora), config.model)


def compute_dtype() -> torch.dtype:
    """bfloat16 on a CUDA GPU that has it, else float32 (float16 training is not supported)."""
    return torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32


def _load_bnb(config: Pr1SFTConfig, quant: str) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from pr1.models import add_tag_tokens, load_tokenizer, resolve_model_path

    path = resolve_model_path(config.model)
    tokenizer = load_tokenizer(path, trust_remote_code=config.trust_remote_code)
    if quant == "4bit":
        bnb = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute_dtype(),
        )
    else:
        bnb = BitsAndBytesConfig(load_in_8bit=True)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            path,
            quantization_config=bnb,
            dtype=compute_dtype(),
            device_map={"": torch.cuda.current_device()},
            trust_remote_code=config.trust_remote_code,
            use_safetensors=True,
        )
    except OSError as err:
        raise Pr1Error(f"cannot load {config.model!r} ({str(err).strip().splitlines()[0]})") from err
    add_tag_tokens(model, tokenizer)
    return model, tokenizer
