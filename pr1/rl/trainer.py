"""`pr1 rl`: GRPO on TRL's GRPOTrainer with pr1's rollout engine, rewards and run folder.

TRL does the optimisation (token-level "dapo" loss, two-sided clipping, beta=0, group-normalised
advantages). `Pr1GRPOMixin` overrides four methods of TRL's trainer, each for one reason:

  _generate                           times the rollout (metrics `time_rollout`, `tokens_per_s`)
  _calculate_rewards                  scores every completion once (`pr1.score.score_completion`): the
                                      reward functions read the records, the metrics and sample rollouts
                                      keep them
  _generate_and_score_completions     sets the round's upper clip (`RLConfig.clip_high_at`: the scaffold's
                                      accuracy phase clips like the reference's), and measures |sampling -
                                      training log-prob| over the sampled tokens (`logprob_gap_*`)
  _get_per_token_logps_and_entropies  the structured variant's scoring (path-window mask and multiverse
                                      positions of pr1.structured; TRL passes a 2D mask), and plain causal
                                      scoring where TRL's fused LM head cannot run (off CUDA, or with the
                                      tag rows training)

The mixin sits on top of TRL's GRPOTrainer or of the one Unsloth patches into TRL (`pr1.backends.with_base`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from accelerate import PartialState
from accelerate.utils import gather_object
from transformers.trainer_callback import PrinterCallback

from pr1 import checkpoints
from pr1.backends import LoadedModel, pick_backend, run_folder_source, with_base
from pr1.datasets import load_problems
from pr1.errors import Pr1Error
from pr1.eval import EvalConfig, run_eval
from pr1.eval.metrics import flat_metrics
from pr1.metrics_health import no_update_steps
from pr1.prompts import build_messages, load_template
from pr1.rewards import SCORE_COLUMN, make_reward_func, reward_value, rl_step
from pr1.rl.backends import load_policy, trl_classes
from pr1.rl.callbacks import BASE_REWARDS, RoundStats, RunCallback, StepRecorder
from pr1.rl.config import RLConfig
from pr1.rl.rollout import EngineRollout, VLLMSync
from pr1.rollout.config import RolloutConfig
from pr1.rollout.engines import pick_engine
from pr1.runs import RUN_FILE, Run, log_trackers_into, read_metrics, read_run_info, redact
from pr1.score import score_completion, summarise
from pr1.structured import TagIds, batch_inputs


class Pr1GRPOMixin:
    """pr1's additions to a GRPOTrainer class; set the `pr1_*` attributes right after construction."""

    pr1_recorder: StepRecorder
    pr1_config: RLConfig
    pr1_tags: TagIds
    pr1_scoring: str | None = None  # "structured" | "causal": pr1's scoring pass; None: the base class's

    def _generate(self, prompts: list):
        """TRL's (which calls the rollout function), timed: `time_rollout`, `tokens_per_s`."""
        start = time.perf_counter()
        self.pr1_recorder.now("rollout")
        out = super()._generate(prompts)
        self.pr1_recorder.time_rollout = time.perf_counter() - start
        return out

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        """Grades and validates each completion once, before TRL calls the reward functions: they get the
        records in the column `SCORE_COLUMN` (a second grading could time out where this one did not, and
        the trained reward would then differ from the logged one)."""
        start = time.perf_counter()
        self.pr1_recorder.now("scoring")
        if self.rollout_func is not None and "tagged_text" not in inputs[0]:
            raise Pr1Error(
                "the rewards did not receive the rollout's tagged text: this GRPO trainer ignored pr1's "
                "rollout function (an Unsloth or TRL version without rollout_func?); use --backend hf"
            )
        step = rl_step(self.state.global_step, self.pr1_config.updates_per_step)
        schedule = self.pr1_config.schedule()
        records = [
            self._pr1_record(inp, c, ids, schedule, step)
            for inp, c, ids in zip(inputs, completions, completion_ids_list, strict=True)
        ]
        for inp, record in zip(inputs, records, strict=True):
            inp[SCORE_COLUMN] = record
        rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        if self.model.training:
            self.pr1_recorder.round = RoundStats(
                step=step,
                phase=schedule.active(step),
                records=gather_object(records),
                time_rollout=self.pr1_recorder.time_rollout,
                time_scoring=time.perf_counter() - start,
            )
            self._pr1_track(self.pr1_recorder.round)
            self.pr1_recorder.now("update")
        return rewards

    def _pr1_track(self, stats: RoundStats) -> None:
        """pr1's own figures of the round into TRL's metrics, so that `--report-to` trackers get them too."""
        figures = summarise(stats.records)
        for key in ("accuracy", "parallel_ratio", "format_valid_rate", "blocks_mean", "truncated_rate"):
            if figures[key] is not None:
                self._metrics["train"][f"pr1/{key}"].append(figures[key])
        self._metrics["train"]["pr1/phase_tiered"].append(float(stats.phase == "tiered"))

    @staticmethod
    def _pr1_record(inp: dict, completion: Any, ids: list[int], schedule: Any, step: int) -> dict:
        text = inp.get("tagged_text")
        if text is None:  # TRL's own generation: its decoded text (tags lost)
            text = completion if isinstance(completion, str) else "".join(m["content"] for m in completion)
        record = score_completion(text, inp["answer"], schedule, step)
        rollout = inp.get("rollout") or {}
        return {
            "id": inp.get("id"),
            "sample": rollout.get("sample"),
            "problem": inp.get("problem"),
            "answer": inp["answer"],
            "completion": text,
            "phase": schedule.active(step),
            **record,
            "rewards": {
                n: reward_value(n, record["correct"], record["n_blocks"], record["format_valid"])
                for n in BASE_REWARDS
            },
            "tokens": rollout.get("tokens", len(ids)),
            "generated_tokens": rollout.get("generated_tokens", len(ids)),
            "critical_path_tokens": rollout.get("critical_path_tokens", len(ids)),
            "parallel_positions": rollout.get("parallel_positions", []),
            "truncated": rollout.get("truncated", False),
        }

    def _generate_and_score_completions(self, inputs):
        """TRL's, then the log-prob gap between the engine's sampling log-probs and the trainer's over the
        tokens the model sampled: the rollout's own `inserted` flags mark the others, whatever the loss mask
        says (`--train-inserted` trains on inserted tokens, whose sampling log-prob is a placeholder 0)."""
        if self.model.training:  # the updates of this round clip with this step's epsilon_high
            self.epsilon_high = self.pr1_config.clip_high_at(
                rl_step(self.state.global_step, self.pr1_config.updates_per_step)
            )
        out = super()._generate_and_score_completions(inputs)
        stats = self.pr1_recorder.round
        sampling = out.get("sampling_per_token_logps")
        if self.model.training and stats is not None and sampling is not None:
            old = out.get("old_per_token_logps")
            if old is None:  # TRL skips it when each generation feeds exactly one update
                with torch.no_grad():
                    old, _, _ = self._get_per_token_logps_and_entropies(
                        self.model,
                        torch.cat([out["prompt_ids"], out["completion_ids"]], dim=1),
                        torch.cat([out["prompt_mask"], out["completion_mask"]], dim=1),
                        out["completion_ids"].size(1),
                        batch_size=self.args.per_device_train_batch_size,
                    )
            mask = _sampled_mask(inputs, out)
            gap = (old.float() - sampling.float()).abs()[mask]
            local = torch.stack(
                [
                    gap.sum(),
                    torch.tensor(float(gap.numel()), device=gap.device),
                    gap.max() if gap.numel() else gap.new_zeros(()),
                ]
            )
            totals = self.accelerator.gather(local.unsqueeze(0)).view(-1, 3)
            count = totals[:, 1].sum().item()
            stats.logprob_gap_mean = totals[:, 0].sum().item() / count if count else None
            stats.logprob_gap_max = totals[:, 2].max().item() if count else None
        return out

    def _get_per_token_logps_and_entropies(
        self, model, input_ids, attention_mask, logits_to_keep, *args, **kwargs
    ):
        """pr1's scoring pass (`score_completions`) when `pr1_scoring` is set: the structured variant's mask
        and positions (TRL passes a 2D mask), or plain causal scoring where TRL's fused LM head cannot run."""
        if self.pr1_scoring is None:
            return super()._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, *args, **kwargs
            )
        batch_size = kwargs.get("batch_size") or (args[0] if args else None)
        compute_entropy = kwargs.get("compute_entropy", args[1] if len(args) > 1 else False)
        return score_completions(
            model,
            input_ids,
            attention_mask,
            logits_to_keep,
            self.pr1_tags,
            structured=self.pr1_scoring == "structured",
            pad_id=self.processing_class.pad_token_id,
            temperature=self.temperature,
            batch_size=batch_size or input_ids.size(0),
            compute_entropy=compute_entropy,
            autocast=self.accelerator.autocast,
        )


def _sampled_mask(inputs: list[dict], out: dict[str, torch.Tensor]) -> torch.Tensor:
    """[B, C] bool: the completion tokens the model sampled, from the trajectories' `inserted` flags (the
    `rollout` column of pr1's rollout function); without them, the loss mask (completion_mask * tool_mask)."""
    mask = out["completion_mask"].bool()
    flags = [(inp.get("rollout") or {}).get("inserted") for inp in inputs]
    if all(f is not None for f in flags):
        for k, inserted in enumerate(flags):
            mask[k, : len(inserted)] &= ~torch.tensor(inserted, dtype=torch.bool, device=mask.device)
    elif "tool_mask" in out:
        mask &= out["tool_mask"].bool()
    return mask


def fused_head_available(model: Any, device: torch.device) -> bool:
    """Whether TRL's fused LM head can score `model`: it needs its Triton kernel, which exists on CUDA only,
    and reads the LM head's `weight` and `bias`, which peft's trainable-token wrapper (the tag rows, when they
    train) does not expose (no `bias`)."""
    from trl.trainer import utils  # trl after Unsloth (pr1.backends)

    if device.type != "cuda" or getattr(utils, "_ChunkedLogProbFunction", None) is None:
        return False
    try:
        model.get_output_embeddings().bias  # noqa: B018  (peft's wrapper raises AttributeError)
    except AttributeError:
        return False
    return True


def score_completions(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    logits_to_keep: int,
    tags: TagIds,
    *,
    structured: bool,
    pad_id: int,
    temperature: float = 1.0,
    batch_size: int,
    compute_entropy: bool = False,
    autocast: Callable[[], Any] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, None]:
    """Per-token log-probs (and entropies) of the completion tokens at `temperature`, in TRL's layout
    ([B, logits_to_keep]; prompts left-padded, completions right-padded), from a forward pass over inputs
    built by `pr1.structured.batch_inputs`: the path-window mask and multiverse positions when `structured`,
    else plain causal attention. Uses the fused LM head TRL installs on the model where its kernel runs
    (CUDA, LM head without trainable tag rows), else full logits."""
    P = input_ids.size(1) - logits_to_keep
    prompt_lens = attention_mask[:, :P].sum(1).tolist()
    completion_lens = attention_mask[:, P:].sum(1).tolist()
    dtype = next(p for p in model.parameters() if p.is_floating_point()).dtype
    fused = fused_head_available(model, input_ids.device)
    steps = torch.arange(logits_to_keep, device=input_ids.device)
    logps_out, entropy_out = [], []
    for start in range(0, input_ids.size(0), batch_size):
        rows = range(start, min(start + batch_size, input_ids.size(0)))
        seqs = [input_ids[k, P - prompt_lens[k] : P + completion_lens[k]].tolist() for k in rows]
        plen = torch.tensor([prompt_lens[k] for k in rows], device=input_ids.device)
        clen = torch.tensor([completion_lens[k] for k in rows], device=input_ids.device)
        built = batch_inputs(seqs, plen.tolist(), tags, pad_id=pad_id, dtype=dtype, structured=structured)
        built = {k: v.to(input_ids.device) for k, v in built.items()}
        ids = built["input_ids"]
        with autocast() if autocast else contextlib.nullcontext():
            if fused:
                j = torch.arange(ids.size(1), device=ids.device)
                outside = (j[None, :] < plen[:, None]) | (j[None, :] >= (plen + clen)[:, None])
                out = model(**built, labels=ids.masked_fill(outside, -100), fused_lm_head=True)
                logps, entropy, first = out.log_probs, out.entropy, 0  # column t scores token t + 1
            else:
                first = int(plen.min()) - 1  # logits from the last prompt token on
                logits = model(**built, logits_to_keep=ids.size(1) - first).logits.float() / temperature
                logprobs_all = logits[:, :-1].log_softmax(-1)
                logps = logprobs_all.gather(-1, ids[:, first + 1 :, None]).squeeze(-1)
                entropy = -(logprobs_all.exp() * logprobs_all).sum(-1) if compute_entropy else None
        # completion token i of row k sits at plen_k + i and is scored in column plen_k + i - 1 - first
        index = (plen[:, None] - 1 - first + steps[None, :]).clamp(max=logps.size(1) - 1)
        valid = steps[None, :] < clen[:, None]
        logps_out.append(logps.gather(1, index) * valid)
        if compute_entropy:
            entropy_out.append(entropy.gather(1, index) * valid)
    return torch.cat(logps_out), torch.cat(entropy_out) if compute_entropy else None, None


def batch_layout(cfg: RLConfig, num_processes: int) -> tuple[int, int]:
    """(per-device micro batch, gradient accumulation steps) so that one RL step of batch x samples rollouts
    makes exactly `updates_per_step` optimizer steps."""
    per_update = cfg.batch * cfg.samples // cfg.updates_per_step
    if per_update % num_processes:
        raise Pr1Error(
            f"--batch {cfg.batch} x --samples {cfg.samples} / {cfg.updates_per_step} updates = {per_update} rollouts per "
            f"update do not split over {num_processes} processes"
        )
    per_device = per_update // num_processes
    micro = max(d for d in range(1, min(cfg.micro_batch, per_device) + 1) if per_device % d == 0)
    return micro, per_device // micro


def grpo_args(cfg: RLConfig, config_class: type, output_dir: Path, num_processes: int) -> Any:
    micro, accumulation = batch_layout(cfg, num_processes)
    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported() and cfg.dtype in ("auto", "bfloat16", "bf16")
    checkpointing = cfg.gradient_checkpointing if cfg.gradient_checkpointing is not None else cuda
    return config_class(
        output_dir=str(output_dir),
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=accumulation,
        steps_per_generation=cfg.updates_per_step * accumulation,
        num_iterations=1,
        num_generations=cfg.samples,
        max_steps=cfg.steps * cfg.updates_per_step,
        learning_rate=cfg.lr,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        loss_type="dapo",
        epsilon=cfg.clip_low,
        epsilon_high=cfg.clip_high,
        delta=cfg.dual_clip,  # verl's dual clip (clip_ratio_c): with epsilon_high < delta - 1 it is the same
        # vLLM rollouts: TRL's importance-sampling correction per token (a per-sequence one would drop every
        # fork-mode trajectory, whose paths were sampled without seeing each other), truncated at 3
        vllm_importance_sampling_correction=True,
        vllm_importance_sampling_mode="token_truncate",
        vllm_importance_sampling_clip_max=3.0,
        beta=0.0,
        scale_rewards="group",
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        max_completion_length=cfg.max_tokens,
        mask_truncated_completions=False,
        disable_dropout=True,
        remove_unused_columns=False,
        shuffle_dataset=True,
        seed=cfg.seed,
        data_seed=cfg.seed,
        bf16=bf16,
        use_cpu=not cuda,
        gradient_checkpointing=checkpointing,
        logging_steps=1,
        save_strategy="steps" if cfg.save_every else "no",
        save_steps=max(1, cfg.save_every) * cfg.updates_per_step,
        save_only_model=False,
        report_to=cfg.report_to,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )


def build_dataset(cfg: RLConfig) -> Any:
    """Rows {prompt (chat messages), answer, problem, id} of the training problems."""
    from datasets import Dataset  # `datasets` loads only for a training run

    template = load_template(cfg.prompt_file)
    rows = load_problems(cfg.data, limit=cfg.limit)
    if len(rows) < cfg.batch:
        raise Pr1Error(f"--data {cfg.data}: {len(rows)} problems, fewer than --batch {cfg.batch} per step")
    return Dataset.from_list(
        [
            {
                "prompt": build_messages(r["problem"], template),
                "answer": str(r["answer"]),
                "problem": r["problem"],
                "id": str(r["id"]),
            }
            for r in rows
        ]
    )


def build_trainer(
    cfg: RLConfig,
    policy: LoadedModel,
    dataset: Any,
    *,
    backend: str,
    output_dir: Path,
    callbacks: list | None = None,
    recorder: StepRecorder | None = None,
    rollout_func: Callable | None = None,
) -> Any:
    """A ready GRPOTrainer (TRL's or Unsloth's, with pr1's overrides) for `cfg`."""
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func is marked experimental in TRL
    base, config_class = trl_classes(backend)
    args = grpo_args(cfg, config_class, output_dir, PartialState().num_processes)
    reward = make_reward_func(cfg.schedule(), updates_per_step=cfg.updates_per_step)
    trainer = with_base(Pr1GRPOMixin, base)(
        model=policy.model,
        reward_funcs=[reward],
        args=args,
        train_dataset=dataset,
        processing_class=policy.tokenizer,
        peft_config=policy.peft_config,
        rollout_func=rollout_func,
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)
    if isinstance(rollout_func, EngineRollout) and rollout_func.engine_name == "vllm":
        # TRL's vLLM machinery with pr1's engine: its sync hook (before each rollout whose step changed)
        # and its importance-sampling correction of the rollouts' log-probs, with pr1's sync of the weights
        trainer.use_vllm = True
        trainer.vllm_generation = VLLMSync(rollout_func, trainer)
        trainer._last_loaded_step = -1
    trainer.pr1_config = cfg
    trainer.pr1_recorder = recorder or StepRecorder()
    trainer.pr1_tags = TagIds.from_tokenizer(policy.tokenizer)
    if cfg.variant == "structured":
        trainer.pr1_scoring = "structured"
    elif backend == "hf" and not fused_head_available(trainer.model, trainer.accelerator.device):
        trainer.pr1_scoring = "causal"  # TRL's fused LM head cannot run here (fused_head_available)
    return trainer


def make_evaluate(cfg: RLConfig, base_model: str, out: Path) -> Callable[[int, Path], dict[str, dict]] | None:
    """The periodic evaluation (`--eval-every N --eval BENCH`): `pr1 eval` on the step's checkpoint, into the
    run folder RUN_DIR/evals/step-NNNNNN (so each evaluation can be inspected and resumed like any other).
    Returns {bench: {metric: number}}."""
    if not cfg.eval_every:
        return None
    if PartialState().num_processes > 1:
        raise Pr1Error(
            "--eval-every runs on a single process; with several, evaluate checkpoints with `pr1 eval`"
        )

    def evaluate(step: int, checkpoint: Path) -> dict[str, dict]:
        adapter = (checkpoint / checkpoints.ADAPTER_CONFIG).is_file()
        results = run_eval(
            EvalConfig(
                **dataclasses.asdict(RolloutConfig.of(cfg)),  # sampled as the rollouts are
                benches=[cfg.eval or ""],
                model=base_model if adapter else str(checkpoint),
                adapter=str(checkpoint) if adapter else None,
                limit=cfg.eval_limit,
                prompt_file=cfg.prompt_file,
                out=str(out / "evals" / checkpoint.name),
                dtype=cfg.dtype,
            )
        )
        return {bench: flat_metrics(figures) for bench, figures in results.items()}

    return evaluate


def train(
    cfg: RLConfig, out: str | Path, *, resume: bool = False, rollout_func: Callable | None = None
) -> dict[str, Any]:
    """Run (or resume) `pr1 rl` into the run folder `out`; returns the final summary. `rollout_func`
    replaces pr1's rollout engine (same contract as TRL's `rollout_func`, plus `tagged_text`)."""
    out = Path(out)
    backend, _ = pick_backend(cfg.backend, cfg.variant)
    dataset = build_dataset(cfg)
    source = run_folder_source(cfg.model or "")
    # a resumed run samples with the engine it started with (the engines draw different samples)
    engine, why = pick_engine(cfg, cfg.steps * cfg.batch * cfg.samples * cfg.max_tokens)
    saved = (read_run_info(out).get("config") or {}) if resume and (out / RUN_FILE).is_file() else {}
    if saved.get("engine_used") not in (None, engine):
        engine, why = saved["engine_used"], "the engine this run started with"
    config = {
        **dataclasses.asdict(cfg),
        "base_model": source[0] if source else cfg.model,
        "backend_used": backend,
        "engine_used": engine,
    }
    run = Run.create(out, "rl", config, resume=resume) if PartialState().is_main_process else None
    checkpoint = checkpoints.latest_checkpoint(out) if resume else None
    if checkpoint is not None:
        checkpoints.refuse_pickle_weights(checkpoint)  # transformers would torch.load a pytorch_model.bin
    if run is not None:
        run.update_info(total_steps=cfg.steps, config=redact(config))
        run.event("notice", message=f"rollout engine: {engine} ({why})")
        if resume:
            where = f"checkpoint {checkpoint.name}" if checkpoint else "step 1 (no complete checkpoint yet)"
            run.event("notice", message=f"resuming from {where}; the steps after it are replayed")
    recorder = StepRecorder()
    log_trackers_into(out)
    with run.recording() if run is not None else contextlib.nullcontext():  # other processes keep no Run
        policy = load_policy(cfg, backend)
        callback = RunCallback(
            run,
            recorder,
            updates_per_step=cfg.updates_per_step,
            total_steps=cfg.steps,
            log_rollouts=cfg.log_rollouts,
            eval_every=cfg.eval_every,
            evaluate=make_evaluate(cfg, policy.base_model, out),
        )
        rollout = rollout_func or EngineRollout(
            cfg, policy.tokenizer, backend, engine=engine, base_model=policy.base_model
        )
        try:
            trainer = build_trainer(
                cfg,
                policy,
                dataset,
                backend=backend,
                output_dir=out / checkpoints.CHECKPOINTS_DIR,
                callbacks=[callback],
                recorder=recorder,
                rollout_func=rollout,
            )
            trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        finally:
            callback.close()
            if isinstance(rollout, EngineRollout):
                rollout.close()
        if run is not None:
            final = checkpoints.save_final(out, trainer.save_model)
            run.event("final", step=cfg.steps, path=str(final))
    if run is None:
        return {}
    summary = _summary(out)
    run.finish("finished", **summary)
    return summary


def _summary(out: Path) -> dict[str, Any]:
    rows = read_metrics(out)
    if not rows:
        return {}
    last = rows[-1]
    keys = ("reward_mean", "accuracy", "parallel_ratio", "format_valid_rate", "response_tokens_mean")
    no_update = no_update_steps(rows)
    return {"steps": last["step"], **{k: last.get(k) for k in keys}, "no_update_steps": len(no_update)}
