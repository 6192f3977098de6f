"""pr1/backends.py: generation mode with trained tag rows (peft trainable tokens) merged for decoding."""

from __future__ import annotations

import pytest
import torch
from peft import get_peft_model

from pr1.backends import generation_mode, tag_rows
from pr1.models import tiny_model


@pytest.mark.parametrize("arch", ["llama", "qwen3"])  # tied and untied input/output embeddings
def test_generation_mode_merges_the_tag_rows_and_restores_them_exactly(arch):
    from peft import LoraConfig
    from peft.tuners.trainable_tokens.layer import TrainableTokensLayer

    base, tokenizer = tiny_model(arch)
    config = LoraConfig(r=4, target_modules="all-linear", trainable_token_indices=tag_rows(base, tokenizer))
    model = get_peft_model(base, config)
    with torch.no_grad():  # trained tag rows: far from their initial values
        for name, param in model.named_parameters():
            if "trainable_tokens_delta" in name:
                param.add_(torch.randn_like(param))
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ids = torch.tensor([tokenizer.encode("<Parallel><Path>two plus two</Path>")])
    model.eval()
    with torch.no_grad():
        expected = model(input_ids=ids).logits
    model.train()
    layers = [m for m in model.modules() if isinstance(m, TrainableTokensLayer)]
    with generation_mode(model, "hf"):
        assert layers and all(m.merged for m in layers) and not model.training
        got = model(input_ids=ids).logits
    assert torch.allclose(got, expected, atol=1e-5)
    assert model.training and not any(m.merged for m in layers)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
