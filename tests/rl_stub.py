"""A scripted rollout function for the `pr1 rl` trainer tests: completions are given texts (tags written as
the special tokens), `<Path>` tokens are marked as runtime-inserted, and the "sampling" log-probs are the
current policy's plain causal log-probs of those tokens. So the tests control rewards and masks exactly.
`spy_rewards` records what the trainer hands its reward function; `with_new_adapter` is what `load_policy`
makes of an in-memory model."""

from __future__ import annotations

import torch

from pr1.backends import LoadedModel, lora_config


class StubRollout:
    def __init__(self, tokenizer, texts: list[str], interrupt_at: int | None = None):
        self.tokenizer = tokenizer
        self.texts = texts  # cycled over the completions of each call
        self.interrupt_at = interrupt_at  # raise KeyboardInterrupt on this call (a killed run)
        self.calls = 0
        self.prompts = []  # the prompts of each call
        self.path_id = tokenizer.convert_tokens_to_ids("<Path>")

    def __call__(self, prompts, trainer):
        self.calls += 1
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        self.prompts.append(prompts)
        tok = self.tokenizer
        model = trainer.accelerator.unwrap_model(trainer.model)
        out = {
            k: [] for k in ("prompt_ids", "completion_ids", "logprobs", "env_mask", "tagged_text", "rollout")
        }
        for i, prompt in enumerate(prompts):
            p = list(
                tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=False)
            )
            text = self.texts[i % len(self.texts)]
            c = tok.encode(text, add_special_tokens=False) + [tok.eos_token_id]
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([p + c])).logits[0, len(p) - 1 : -1].float()
            lp = logits.log_softmax(-1).gather(-1, torch.tensor(c)[:, None]).squeeze(-1).tolist()
            inserted = [t == self.path_id for t in c]
            out["prompt_ids"].append(p)
            out["completion_ids"].append(c)
            out["logprobs"].append([0.0 if ins else x for x, ins in zip(lp, inserted, strict=True)])
            out["env_mask"].append([0 if ins else 1 for ins in inserted])
            out["tagged_text"].append(text)
            out["rollout"].append(
                {
                    "tokens": len(c),
                    "generated_tokens": sum(not x for x in inserted),
                    "critical_path_tokens": len(c),
                    "parallel_positions": [],
                    "truncated": False,
                    "sample": i,
                }
            )
        return out


def spy_rewards(trainer) -> list[dict]:
    """The keyword arguments of each call to the trainer's reward function, from now on."""
    calls = []
    original = trainer.reward_funcs[0]

    def spy(**kwargs):
        calls.append(kwargs)
        return original(**kwargs)

    spy.__name__ = original.__name__
    trainer.reward_funcs[0] = spy
    return calls


def with_new_adapter(model, tokenizer, cfg) -> LoadedModel:
    """`model` with the LoRA config (and tag rows) `pr1.rl.backends.load_policy` gives a base model."""
    lora = lora_config(model, tokenizer, r=cfg.lora_r, alpha=cfg.lora_alpha, dropout=cfg.lora_dropout)
    return LoadedModel(model, tokenizer, lora, "tiny")
