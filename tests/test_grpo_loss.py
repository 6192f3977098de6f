"""The GRPO loss `pr1 rl` optimises, differentiated with respect to each completion token's log-prob:
runtime-inserted tokens and padding get zero weight, every sampled token counts (the EOS included), the ratio
is clipped at 1 - clip_low and 1 + clip_high (TRL's `epsilon_high`), and the weights are token-level (TRL's
"dapo" loss: one over the tokens of an update, `num_items_in_batch` x accumulation / steps_per_generation).

The derivative is a central finite difference of the loss value in the old (behaviour) log-prob of one token
at a time: the loss depends on old_t only through the ratio exp(logp_t - old_t), so d loss / d old_t =
-d loss / d logp_t. That needs no hook inside the loss, so the test runs whatever `compute_loss` the trainer
class has: TRL's own (hf backend, on CPU here) or the one Unsloth patches into TRL (CUDA), which computes the
log-probs inside its fused loss, where a stand-in for `_get_per_token_logps_and_entropies` would take it
down another code path (its `grpo_compute_loss_slow`) than training does. Read in Unsloth 2026.10.9: its loss
rebuilds the completion mask from `input_ids != pad_token_id`, so where the tokenizer's pad token is its EOS
(this tiny model's SmolLM2 tokenizer, and any tokenizer without a pad token of its own, which pr1 gives the
EOS) the sampled EOS would get no weight: the EOS probe below checks that.

Not run on a GPU yet (none was available when it was written)."""

import math

import pytest
import torch

from pr1.backends import unsloth_available
from pr1.rl.backends import load_policy
from pr1.rl.config import RLConfig
from pr1.rl.trainer import build_dataset, build_trainer

CLIP_LOW, CLIP_HIGH = 0.2, 0.8  # wide apart, so that bf16 noise in the ratios cannot cross a boundary
DELTA = 0.02  # finite-difference step in the old log-prob (ratios stay on their side of the clip)

BACKENDS = [
    "hf",
    pytest.param(
        "unsloth",
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(not unsloth_available(), reason="Unsloth is not installed"),
        ],
    ),
]

# (row, completion index, ratio exp(logp - old) to set, whether the loss must depend on that token) for two
# completions of one prompt, advantages +1 and -1. Row 0: <Path> 12 tokens <Path> 8 tokens EOS; row 1:
# <Path> 7 tokens, then padding.
PROBES = [
    (0, 0, 1.0, False),  # inserted <Path>
    (0, 13, 1.0, False),  # inserted <Path>
    (0, 1, 1.0, True),
    (0, 2, 1.45, True),  # above 1 + clip_low, below 1 + clip_high: only epsilon_high keeps it
    (0, 3, 2.5, False),  # above 1 + clip_high with a positive advantage: clipped
    (0, 4, 0.6, True),  # below 1 - clip_low with a positive advantage: the pessimistic min keeps it
    (0, 22, 1.0, True),  # the sampled EOS
    (1, 0, 1.0, False),  # inserted <Path>
    (1, 1, 0.6, False),  # below 1 - clip_low with a negative advantage: clipped
    (1, 2, 1.45, True),
    (1, 3, 2.5, True),  # above 1 + clip_high with a negative advantage: the min keeps it (no dual clip)
    (1, 10, 1.0, False),  # padding
]


@pytest.fixture
def settings(rl_files):
    return {
        **rl_files,
        "batch": 1,
        "samples": 2,
        "updates_per_step": 2,  # 2 updates of one rollout each: the loss scale is tokens / 2
        "clip_low": CLIP_LOW,
        "clip_high": CLIP_HIGH,
        "lora_r": 8,
        "max_tokens": 64,
        "save_every": 0,
    }


def _inputs(tok, device: torch.device) -> dict[str, torch.Tensor]:
    """Two completions of one prompt in TRL's layout (no left padding, completions right-padded)."""
    seed, eos, pad = tok.convert_tokens_to_ids("<Path>"), tok.eos_token_id, tok.pad_token_id
    words = list(range(1000, 1030))  # ordinary tokens of the SmolLM2 vocabulary
    rows = [[seed, *words[:12], seed, *words[12:20], eos], [seed, *words[20:27]]]
    K = max(map(len, rows))
    prompt = tok.encode("Q: What is 3+3?", add_special_tokens=False)
    completion = torch.tensor([r + [pad] * (K - len(r)) for r in rows])
    completion_mask = torch.tensor([[1] * len(r) + [0] * (K - len(r)) for r in rows])
    tool_mask = (completion != seed).long()  # pr1's env_mask: 0 where the runtime inserted the token
    return {
        k: v.to(device)
        for k, v in {
            "prompt_ids": torch.tensor([prompt, prompt]),
            "prompt_mask": torch.ones(2, len(prompt), dtype=torch.long),
            "completion_ids": completion,
            "completion_mask": completion_mask,
            "tool_mask": tool_mask,
            "advantages": torch.tensor([1.0, -1.0]),
            "num_items_in_batch": (completion_mask * tool_mask).sum(),
        }.items()
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_grpo_loss_per_token_weights(tmp_path, settings, backend):
    cfg = RLConfig(**{**settings, "backend": backend})
    policy = load_policy(cfg, backend)
    trainer = build_trainer(cfg, policy, build_dataset(cfg), backend=backend, output_dir=tmp_path / "out")
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = trainer.args.gradient_accumulation_steps
    inputs = _inputs(policy.tokenizer, trainer.accelerator.device)
    ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], 1)
    mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], 1)
    K = inputs["completion_ids"].size(1)
    with torch.no_grad():  # the current policy's log-probs, as the trainer scores old/reference log-probs
        logps = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, K, batch_size=2)[0]
    assert logps.shape == (2, K), f"log-probs of shape {tuple(logps.shape)}, expected TRL's (2, {K})"
    old = logps.detach().float().clone()
    for row, t, ratio, _ in PROBES:
        old[row, t] -= math.log(ratio)

    def loss(old_logps: torch.Tensor) -> float:
        return (
            trainer.compute_loss(trainer.model, {**inputs, "old_per_token_logps": old_logps}).detach().item()
        )

    for _ in range(
        2
    ):  # first calls may pick or verify a kernel path (Unsloth); later ones must be repeatable
        base = loss(old)
    assert loss(old) == pytest.approx(base, abs=1e-6), "the loss is not repeatable: no finite differences"
    # TRL's "dapo" normaliser: the tokens of the generation batch, per update
    scale = float(inputs["num_items_in_batch"]) * trainer.args.gradient_accumulation_steps
    scale /= trainer.args.steps_per_generation * trainer.accelerator.num_processes
    tol = 1e-3 if backend == "hf" else 0.15  # fp32 on CPU; bf16 / 4-bit on CUDA
    wrong = []  # every probe is checked, so one run on a GPU tells everything that differs
    for row, t, ratio, counts in PROBES:
        bump = torch.zeros_like(old)
        bump[row, t] = DELTA
        weight = (loss(old + bump) - loss(old - bump)) / (2 * DELTA) * scale  # in units of 1 / scale
        advantage = float(inputs["advantages"][row])
        expected = advantage * ratio * math.sinh(DELTA) / DELTA if counts else 0.0
        if weight != pytest.approx(expected, rel=tol, abs=tol * 0.1):
            wrong.append(
                f"row {row} token {t} (ratio {ratio}, advantage {advantage:+}): weight {weight:.4f}, "
                f"expected {expected:.4f} (x 1/{scale:g})"
            )
    assert not wrong, "\n".join(wrong)
