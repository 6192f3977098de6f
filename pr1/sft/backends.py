"""Where `pr1 sft` gets its model: `unsloth` or `hf`.

- `unsloth` (CUDA): Unsloth's FastLanguageModel (4-bit QLoRA by default, its fused kernels, its offloaded
  gradient checkpointing) and the SFTTrainer Unsloth patches into TRL. Unsloth must be imported before
  transformers, trl and peft to patch them, so `import_unsloth_first` runs before pr1 loads anything heavy.
- `hf`: transformers + peft LoRA; on CUDA with bitsandbytes 4-bit (QLoRA) or 8-bit, on CPU in float32.

Both train the six tag rows of the input and output embeddings through peft's `trainable_token_indices`
(only those rows train and are saved in the adapter; for tied embeddings peft shares them with the LM head).
The choice of backend (`auto`; the structured variant runs on `hf`) and Unsloth's loading are shared with
`pr1 rl`: pr1/backends.py.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

import torch

from pr1.backends import load_unsloth, unsloth_lora
from pr1.errors import Pr1Error
from pr1.sft.config import Pr1SFTConfig

# Micro-batch defaults for a 24 GB GPU at --max-length 4096 with a 4B model (docs/SFT.md): the hf path builds
# the full [batch, length, vocab] logits for its loss, Unsloth's fused cross-entropy does not.
DEFAULT_MICRO_BATCH = {"hf": 1, "unsloth": 2}


def import_unsloth_first() -> None:
    """Import Unsloth before transformers / trl / peft are, so that its patches apply to them."""
    import unsloth  # noqa: F401


def resolve_quant(quant: str, backend: str) -> str:
    cuda = torch.cuda.is_available()
    if quant == "auto":
        return "4bit" if cuda else "none"
    if quant != "none" and not cuda:
        raise Pr1Error(f"--quant {quant} needs a CUDA GPU (bitsandbytes); use --quant none on CPU")
    if quant != "none" and backend == "hf" and importlib.util.find_spec("bitsandbytes") is None:
        raise Pr1Error(f"--quant {quant}: bitsandbytes is not installed (pip install bitsandbytes)")
    return quant


@dataclass
class Loaded:
    model: Any  # a PreTrainedModel (hf: wrapped by SFTTrainer) or Unsloth's PeftModel
    tokenizer: Any
    peft_config: Any  # a LoraConfig for SFTTrainer to apply, or None when the model already has its adapter


def load(config: Pr1SFTConfig, backend: str, quant: str) -> Loaded:
    """The base model with the tags added, its tokenizer, and the LoRA adapter (or its config)."""
    if backend == "unsloth":
        return _load_unsloth(config, quant)
    return _load_hf(config, quant)


def compute_dtype() -> torch.dtype:
    """bfloat16 on a CUDA GPU that has it, else float32 (float16 training is not supported)."""
    return torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32


def _load_hf(config: Pr1SFTConfig, quant: str) -> Loaded:
    from pr1.models import load_model

    if quant == "none":
        model, tokenizer = load_model(
            config.model, dtype=compute_dtype(), trust_remote_code=config.trust_remote_code
        )
    else:
        model, tokenizer = _load_bnb(config, quant)
    return Loaded(model, tokenizer, lora_config(model, tokenizer, config))


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


def _load_unsloth(config: Pr1SFTConfig, quant: str) -> Loaded:
    model, tokenizer = load_unsloth(
        config.model,
        max_seq_length=config.max_length,
        quant=quant,
        trust_remote_code=config.trust_remote_code,
    )
    # Unsloth hands `trainable_token_indices` through to peft's LoraConfig; the tag rows are initialised
    # (piece means), so Unsloth's untrained-token check leaves them alone.
    model = unsloth_lora(
        model,
        r=config.lora_r,
        alpha=config.alpha,
        dropout=config.lora_dropout,
        seed=config.seed,
        gradient_checkpointing=config.gradient_checkpointing,
        trainable_token_indices=tag_rows(model, tokenizer),
    )
    return Loaded(model, tokenizer, None)


def tag_rows(model: Any, tokenizer: Any) -> dict[str, list[int]]:
    """peft's `trainable_token_indices`: the tag ids in the input embedding, and in the output embedding when
    it is a separate matrix (for tied embeddings peft wraps the LM head with the same rows by itself)."""
    from pr1.models import tag_token_ids

    ids = list(tag_token_ids(tokenizer).values())
    embed, head = model.get_input_embeddings(), model.get_output_embeddings()
    names = {id(module): name.rsplit(".", 1)[-1] for name, module in model.named_modules()}
    rows = {names[id(embed)]: ids}
    if head is not None and head.weight is not embed.weight:
        rows[names[id(head)]] = ids
    return rows


def lora_config(model: Any, tokenizer: Any, config: Pr1SFTConfig) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.alpha,
        lora_dropout=config.lora_dropout,
        target_modules="all-linear",  # peft leaves the LM head out of "all-linear"
        trainable_token_indices=tag_rows(model, tokenizer),
        task_type="CAUSAL_LM",
    )
