"""pr1's rollout engine behind TRL's `rollout_func` hook.

TRL calls `rollout_func(prompts, trainer)` with this process's prompts, each already repeated once per
sample of its group (`num_generations` consecutive copies), and expects one completion per entry. We
sample with the trainer's current policy (unwrapped, adapters active, eval mode, no gradients) and return:

  prompt_ids, completion_ids   token ids; the completion in layout order (main, <Parallel>, paths, ...)
  logprobs                     the engine's sampling log-prob per completion token (where inserted: 0.0 on
                               the hf engine, NaN on vLLM, whose rollouts TRL's importance sampling
                               corrects and reads NaN as "no correction")
  env_mask                     1 = sampled by the model, 0 = inserted by the runtime (<Path> seeds,
                               </Parallel>, "\\n", <Summary>, a </Path> or </Summary> replacing EOS). TRL turns it into
                               `tool_mask` and trains on `completion_mask * tool_mask`, so inserted
                               tokens get zero loss weight (all ones when `mask_inserted` is off).
  tagged_text                  the completion with its tags written literally (TRL's own decoding drops
                               special tokens, hence the tags); reward functions read it
  rollout                      per trajectory: lengths and positions for the run folder's metrics, and
                               `inserted` (True where the runtime inserted the token), which the
                               trainer's log-prob gap reads whatever `env_mask` says
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from pr1.backends import generation_mode
from pr1.rewards import rl_step
from pr1.rl.config import RLConfig
from pr1.rollout import RolloutConfig, RolloutEngine


def prompt_groups(prompts: list[Any]) -> tuple[list[Any], int]:
    """(distinct prompts, samples each) when `prompts` is runs of equal length of identical prompts, which
    is how TRL repeats them; else (prompts, 1)."""
    runs: list[list[Any]] = []
    for p in prompts:
        if runs and runs[-1][0] == p:
            runs[-1].append(p)
        else:
            runs.append([p])
    n = len(runs[0]) if runs else 1
    if all(len(r) == n for r in runs):
        return [r[0] for r in runs], n
    return list(prompts), 1


class EngineRollout:
    """The `rollout_func` for GRPOTrainer. Each call is seeded from (seed, RL step, process), so a resumed
    run samples what an uninterrupted one would have.

    `engine`: "hf" decodes with the policy itself (pr1's engine on the unwrapped model, in generation mode);
    "vllm" with a vLLM engine built once from `base_model`, whose weights `sync` replaces with the policy's
    (LoRA and the trained tag rows merged) before each step's rollout: GRPOTrainer calls it through its own
    hook (`VLLMSync`), as it does for its own vLLM. Inserted tokens get a NaN sampling log-prob there, which
    TRL's importance-sampling correction reads as "no correction"."""

    def __init__(
        self,
        cfg: RLConfig,
        tokenizer: Any,
        backend: str,
        logits_processor: Any = None,
        *,
        engine: str = "hf",
        base_model: str | None = None,
    ) -> None:
        self.config = RolloutConfig.of(cfg)
        self.tokenizer = tokenizer
        self.backend = backend
        self.updates_per_step = cfg.updates_per_step
        self.mask_inserted = cfg.mask_inserted
        self.logits_processor = logits_processor  # e.g. pr1.rollout.ForcedSchedule (tests, benchmarks)
        self.engine_name, self.base_model = engine, base_model
        self.vllm_gpu_memory = cfg.vllm_gpu_memory
        self.engine: Any = None  # kept across steps: its decoding buffers (hf) or its vLLM engine are reused

    def sync(self, trainer: Any) -> None:
        """vLLM: load the policy's current weights into the engine (building it the first time)."""
        from trl.models import unwrap_model_for_generation

        from pr1.rollout.engines import vllm_engine

        if self.engine is None:
            import torch

            share = {"gpu_memory_utilization": self.vllm_gpu_memory} if torch.cuda.is_available() else {}
            self.engine = vllm_engine(self.base_model or "", None, self.config, **share)
        with unwrap_model_for_generation(
            trainer.model_wrapped,
            trainer.accelerator,
            gather_deepspeed3_params=trainer.args.ds3_gather_for_generation,
        ) as model:
            self.engine.load_weights(model)

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, list]:
        from trl.models import unwrap_model_for_generation  # trl after Unsloth (pr1.backends)

        step = rl_step(trainer.state.global_step, self.updates_per_step)
        seed = (self.config.seed or 0) * 1_000_003 + step * 1_009 + trainer.accelerator.process_index
        distinct, n = prompt_groups(prompts)
        config = dataclasses.replace(self.config, seed=seed)
        if self.engine_name == "vllm":
            if self.engine is None:  # TRL syncs before the rollout; not when it is called by hand
                self.sync(trainer)
            self.engine.config = config
            trajectories = self.engine.generate(distinct, n=n, logits_processor=self.logits_processor)
        else:
            with (
                unwrap_model_for_generation(
                    trainer.model_wrapped,
                    trainer.accelerator,
                    gather_deepspeed3_params=trainer.args.ds3_gather_for_generation,
                ) as model,
                generation_mode(model, self.backend),
            ):
                if self.engine is None or self.engine.model is not model:
                    self.engine = RolloutEngine(model, self.tokenizer, config)
                self.engine.config = config
                trajectories = self.engine.generate(distinct, n=n, logits_processor=self.logits_processor)
        nan_inserted = self.engine_name == "vllm"
        return {
            "prompt_ids": [t.prompt_ids for t in trajectories],
            "completion_ids": [t.completion_ids for t in trajectories],
            "logprobs": [
                [
                    math.nan if ins and nan_inserted else lp
                    for lp, ins in zip(t.logprobs, t.inserted, strict=True)
                ]
                for t in trajectories
            ],
            "env_mask": [
                [0 if ins and self.mask_inserted else 1 for ins in t.inserted] for t in trajectories
            ],
            "tagged_text": [t.text for t in trajectories],
            "rollout": [
                {
                    "tokens": len(t.completion_ids),
                    "generated_tokens": t.generated_tokens,
                    "critical_path_tokens": t.critical_path_tokens,
                    "parallel_positions": list(t.parallel_positions),
                    "truncated": t.truncated,
                    "sample": t.sample_index,
                    "inserted": list(t.inserted),
                }
                for t in trajectories
            ],
        }


class VLLMSync:
    """What GRPOTrainer's `vllm_generation` is to its rollout hook: before a rollout whose step changed it calls
    `sync_weights()`. pr1's sync (`EngineRollout.sync`) stands in for TRL's, which cannot send peft's trainable
    tag rows to vLLM (it sends `token_adapter` weights under names vLLM's loaders reject)."""

    def __init__(self, rollout: EngineRollout, trainer: Any) -> None:
        self.rollout, self.trainer = rollout, trainer

    def sync_weights(self) -> None:
        self.rollout.sync(self.trainer)
