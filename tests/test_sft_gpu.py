"""`pr1 sft` on a CUDA GPU: the Unsloth backend and hf QLoRA train the tag rows.
Skipped without CUDA (and without Unsloth / bitsandbytes where they are needed)."""

import pytest
from sft_tiny import write_sft_rows

from pr1.models import EMBEDDED_MODEL, load_model, tag_token_ids
from pr1.sft.config import Pr1SFTConfig
from pr1.sft.train import train

pytestmark = pytest.mark.gpu


def _changed_rows(out):
    from peft import PeftModel

    base, tok = load_model(EMBEDDED_MODEL, device="cpu", dtype="float32")
    before = base.get_input_embeddings().weight.detach().clone()
    merged = PeftModel.from_pretrained(base, str(out / "final")).merge_and_unload()
    changed = (merged.get_input_embeddings().weight != before).any(1).nonzero().flatten().tolist()
    return changed, sorted(tag_token_ids(tok).values())


def _config(data, backend, **kw):
    return Pr1SFTConfig(
        model=EMBEDDED_MODEL,
        data=str(data),
        backend=backend,
        lora_r=8,
        batch=4,
        micro_batch=2,
        max_length=256,
        max_steps=3,
        lr=1e-2,
        warmup_ratio=0.0,
        format_check=0,
        **kw,
    )


def test_unsloth_backend_trains_the_tag_rows(tmp_path):
    pytest.importorskip("unsloth")
    out = tmp_path / "run"
    summary = train(_config(write_sft_rows(tmp_path / "d.jsonl"), "unsloth"), out)
    assert summary["steps"] == 3
    changed, tags = _changed_rows(out)
    assert changed == tags


@pytest.mark.parametrize("quant", ["4bit", "none"])
def test_hf_backend_trains_the_tag_rows(tmp_path, quant):
    if quant == "4bit":
        pytest.importorskip("bitsandbytes")
    out = tmp_path / "run"
    train(_config(write_sft_rows(tmp_path / "d.jsonl"), "hf", quant=quant), out)
    changed, tags = _changed_rows(out)
    assert changed == tags
