"""`pr1 sft`: cold-start supervised fine-tuning (LoRA / QLoRA, Unsloth on CUDA). See docs/SFT.md."""

from pr1.sft.config import Pr1SFTConfig, resolve_config

__all__ = ["Pr1SFTConfig", "resolve_config"]
