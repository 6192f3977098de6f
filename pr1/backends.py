"""The training backends `pr1 sft` and `pr1 rl` share: `hf` (transformers + peft; runs anywhere, CPU included)
and `unsloth` (CUDA only: Unsloth's FastLanguageModel, its fused kernels and the trainers it patches into TRL).

Unsloth's fused attention and GRPO loss take a 2D attention mask only, so the structured variant (4D
path-window mask and multiverse positions) runs on `hf`, and `auto` picks `hf` for it.

Unsloth patches transformers, trl and peft when it is imported, so it must be imported before them
(`import_unsloth_first`), and the trainer classes a job subclasses are read from `trl` at run time
(`with_base`). This module therefore imports no transformers, trl or peft at module level; `pr1.models`
(which imports transformers) is imported inside the functions that need it.

What trains, on either backend: LoRA on every linear layer of the decoder and the six tag rows of the input
and output embeddings (`lora_config`, `unsloth_lora`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pr1.checkpoints import ADAPTER_CONFIG
from pr1.errors import Pr1Error
from pr1.runs import RUN_FILE, read_run_info

# The decoder's linear layers, as Unsloth's get_peft_model names them (the hf path passes peft "all-linear").
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class LoadedModel:
    """The model a training job starts from."""

    model: Any  # a PreTrainedModel, Unsloth's model, or a PeftModel when it has its adapter already
    tokenizer: Any  # with the six tags
    peft_config: Any  # a LoraConfig for the trainer to apply; None: the adapter is on, or full fine-tuning
    base_model: str  # the base model's name or path (what `pr1 export` and later stages put the adapter on)
    adapter: str | None = None  # the adapter folder the model started from, if any


def import_unsloth_first() -> None:
    """Import Unsloth before transformers / trl / peft are, so that its patches apply to them."""
    import unsloth  # noqa: F401


def with_base(mixin: type, base: type) -> type:
    """The trainer class `mixin` + `base`: pr1's overrides (`mixin`) on top of a trainer class read at run
    time (TRL's own, or the one Unsloth put into `trl` when it was imported first). `Pr1SFTMixin` gives
    `Pr1SFTTrainer`."""
    return type(mixin.__name__.removesuffix("Mixin") + "Trainer", (mixin, base), {})


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


@contextlib.contextmanager
def generation_mode(model: Any, backend: str) -> Iterator[None]:
    """Eval mode, no gradients (and Unsloth's inference kernels) while generating; the previous mode after.

    Trained tag rows (peft's trainable tokens) are written into the embedding for the duration: unmerged, peft
    rebuilds the whole embedding matrix (and a tied output matrix) on every forward, a fifth of a decoding
    step on the embedded model. Merging copies the rows in and unmerging copies the saved originals back, so
    the weights come out exactly as they went in."""
    was_training = model.training
    fast = None
    if backend == "unsloth":
        from unsloth import FastLanguageModel as fast

        fast.for_inference(model)
    model.eval()
    tokens = _unmerged_trainable_tokens(model)
    try:
        with torch.no_grad():
            for layer in tokens:
                layer.merge()
            yield
    finally:
        with torch.no_grad():
            for layer in reversed(tokens):
                if layer.merged:
                    layer.unmerge()
        if fast is not None and was_training:
            fast.for_training(model)
        model.train(was_training)


def _unmerged_trainable_tokens(model: Any) -> list[Any]:
    try:
        from peft.tuners.trainable_tokens.layer import TrainableTokensLayer
    except ImportError:  # pragma: no cover  (peft is a dependency; older versions lack the layer)
        return []
    return [m for m in model.modules() if isinstance(m, TrainableTokensLayer) and not m.merged]


def load_unsloth(name: str, *, max_seq_length: int, quant: str, trust_remote_code: bool) -> tuple[Any, Any]:
    """Unsloth's FastLanguageModel for `name` (`quant`: 4bit, 8bit or none) and its tokenizer, with the tags."""
    from unsloth import FastLanguageModel

    from pr1.models import add_tag_tokens, ensure_chat_template, resolve_model_path

    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=resolve_model_path(name),
        max_seq_length=max_seq_length,
        dtype=None,
        load_in_4bit=quant == "4bit",
        load_in_8bit=quant == "8bit",
        full_finetuning=False,
        trust_remote_code=trust_remote_code,
    )
    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)  # some models come with a processor
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    ensure_chat_template(tokenizer)
    add_tag_tokens(model, tokenizer)
    return model, tokenizer


def unsloth_lora(
    model: Any,
    tokenizer: Any,
    *,
    r: int,
    alpha: float,
    dropout: float,
    seed: int,
    gradient_checkpointing: bool,
) -> Any:
    """Unsloth's LoRA on every linear layer of the decoder, and the six tag rows (Unsloth hands
    `trainable_token_indices` through to peft's LoraConfig; the tag rows are initialised, piece means, so
    Unsloth's untrained-token check leaves them alone)."""
    from unsloth import FastLanguageModel

    return FastLanguageModel.get_peft_model(
        model,
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=LORA_TARGETS,
        use_gradient_checkpointing="unsloth" if gradient_checkpointing else False,
        random_state=seed,
        trainable_token_indices=tag_rows(model, tokenizer),
    )


def lora_config(model: Any, tokenizer: Any, *, r: int, alpha: float, dropout: float) -> Any:
    """The LoRA adapter the hf backend trains: every linear layer of the decoder (peft leaves the LM head out
    of "all-linear") and the six tag rows of the embeddings."""
    from peft import LoraConfig

    return LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules="all-linear",
        trainable_token_indices=tag_rows(model, tokenizer),
        task_type="CAUSAL_LM",
    )


def tag_rows(model: Any, tokenizer: Any) -> dict[str, list[int]]:
    """peft's `trainable_token_indices`: the tag ids in the input embedding, and in the output embedding when
    it is a separate matrix (for tied embeddings peft wraps the LM head with the same rows by itself). Only
    those rows train, and only they are saved in the adapter (not two vocabulary-sized matrices)."""
    from pr1.models import tag_token_ids

    ids = list(tag_token_ids(tokenizer).values())
    embed, head = model.get_input_embeddings(), model.get_output_embeddings()
    names = {id(module): name.rsplit(".", 1)[-1] for name, module in model.named_modules()}
    rows = {names[id(embed)]: ids}
    if head is not None and head.weight is not embed.weight:
        rows[names[id(head)]] = ids
    return rows


def run_folder_source(path: str) -> tuple[str, str | None] | None:
    """For a `pr1 sft` / `pr1 rl` run folder: the model its `final/` holds, as (base model, adapter folder), or
    (model folder, None) for a merged model. None when `path` is not a run folder."""
    folder = Path(path).expanduser()
    if not (folder / RUN_FILE).is_file():
        return None
    info = read_run_info(folder)
    final = folder / "final"
    if not final.is_dir():
        raise Pr1Error(f"{path}: this {info.get('kind', '?')} run has no final/ model yet")
    if (final / "config.json").is_file() and not (final / ADAPTER_CONFIG).is_file():
        return str(final), None
    if not (final / ADAPTER_CONFIG).is_file():
        raise Pr1Error(f"{path}: final/ holds neither an adapter nor a model")
    return run_base_model(folder, info, final), str(final)


def run_base_model(folder: Path, info: dict, adapter: Path) -> str:
    """The model the run's `adapter` goes on: the run config's `base_model` (or `model`), else the adapter's own
    record. A run trained on top of another run (RL after SFT) names that run: the model it holds is followed."""
    config = info.get("config") or {}
    base = config.get("base_model") or config.get("model")
    if not base and (adapter / ADAPTER_CONFIG).is_file():
        record = json.loads((adapter / ADAPTER_CONFIG).read_text(encoding="utf-8"))
        base = record.get("base_model_name_or_path")
    if not base:
        raise Pr1Error(f"{folder}/{RUN_FILE}: cannot tell the base model of this run (no config.model)")
    source = run_folder_source(str(base))
    return source[0] if source else str(base)
