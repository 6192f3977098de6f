"""`pr1 sft`: cold-start supervised fine-tuning (LoRA / QLoRA, Unsloth on CUDA). See docs/SFT.md."""
