"""The training backends `pr1 sft` and `pr1 rl` share: `hf` (transformers + peft; runs anywhere, CPU included)
and `unsloth` (CUDA only: Unsloth's FastLanguageModel, its fused kernels and the trainers it patches into TRL).

Unsloth's fused attention and GRPO loss take a 2D attention mask only, so the structured variant (4D
path-window mask and multiverse positions) runs on `hf`, and `auto` picks `hf` for it.
"""

from __future__ import annotations

import importlib.util

import torch

from pr1.errors import Pr1Error

# The decoder's linear layers, as Unsloth's get_peft_model names them (the hf path passes peft "all-linear").
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def unsloth_available() -> bool:
    return importlib.util.find_spec("unsloth") is not None


def pick_backend(requested: str, variant: str) -> tuple[str, str]:
    """(backend, why): `auto` -> `unsloth` on CUDA when it is installed and the variant is causal, else `hf`;
    an explicit `unsloth` that cannot run here is refused."""
    cuda = torch.cuda.is_available()
    if requested == "auto":
        if not cuda:
            return "hf", "no CUDA GPU"
        if variant == "structured":
            return (
                "hf",
                "the structured variant needs 4D attention masks, which Unsloth's kernels do not take",
            )
        if not unsloth_available():
            return "hf", "Unsloth is not installed (pip install 'pr1[unsloth]')"
        return "unsloth", "CUDA and Unsloth are available"
    if requested == "unsloth":
        if not cuda:
            raise Pr1Error("--backend unsloth needs a CUDA GPU; use --backend hf (or auto) here")
        if not unsloth_available():
            raise Pr1Error("--backend unsloth: Unsloth is not installed (pip install 'pr1[unsloth]')")
        if variant == "structured":
            raise Pr1Error(
                "--backend unsloth --variant structured: Unsloth's fused kernels take no 4D attention mask "
                "or position ids, which the structured variant needs; use --backend hf (auto picks it)"
            )
    return requested, "asked for"
