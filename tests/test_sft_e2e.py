"""End to end on the embedded SmolLM2-135M (CPU, a few minutes): a short SFT run on synthetic cold-start traces
lowers the loss and makes the model write parallel blocks, which the base model never does."""

import statistics

import pytest

from pr1.coldstart.generate import GenerateConfig, generate
from pr1.models import EMBEDDED_MODEL
from pr1.runs import read_metrics
from pr1.sft.config import Pr1SFTConfig
from pr1.sft.train import train

# A short instruction keeps the CPU run quick (the prompt is masked, but it is still computed).
TEMPLATE = (
    "Solve the problem step by step. Where two independent lines of thought help, write "
    "<Parallel><Path>...</Path><Path>...</Path></Parallel> and then <Summary>...</Summary>. "
    'End with "Final Answer: <result>".\n\nProblem: {problem}\n'
)


@pytest.mark.slow
def test_short_sft_teaches_the_format(tmp_path, shared_data):
    data = tmp_path / "synthetic.jsonl"
    assert generate(GenerateConfig(teacher="synthetic", source="synthetic", limit=120, out=data)).kept == 120
    template = tmp_path / "template.txt"
    template.write_text(TEMPLATE)
    config = Pr1SFTConfig(
        model=EMBEDDED_MODEL,
        data=str(data),
        prompt_file=str(template),
        lora_r=16,
        lr=1e-3,
        tag_lr=1e-2,  # the six new rows start as piece means: a higher rate separates them within a few steps
        batch=2,
        micro_batch=2,
        max_length=512,
        max_steps=24,
        gradient_checkpointing=False,
        save_every=1000,
        format_check=3,
        format_check_length=300,
        format_check_base=True,
    )
    summary = train(config, tmp_path / "run")
    losses = [r["loss"] for r in read_metrics(tmp_path / "run") if "loss" in r]
    assert len(losses) == 24
    assert statistics.mean(losses[-6:]) < statistics.mean(losses[:6]) - 0.1
    base, sft = summary["base_check"], summary["format_check"]
    assert base["parallel_ratio"] == 0  # SmolLM2 never opens a block by itself
    assert sft["parallel_ratio"] > base["parallel_ratio"]
