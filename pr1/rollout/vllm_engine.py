"""The rollout engine on vLLM: the same contract as `pr1.rollout.RolloutEngine`, decoded by vLLM's paged
KV cache and continuous batching (METHOD.md §5).

`fork` mode is the reference runtime written as vLLM requests. Per trajectory: the main segment is a request
that stops at `<Parallel>` or EOS. On `<Parallel>` the `num_paths` paths are requests on the shared prefix
(prompt + text so far + `<Parallel>` + an inserted `<Path>`): with prefix caching on, the prefix's KV blocks
are found in the cache, so only its last partial block is computed again. A path stops at `</Path>`; an EOS
becomes an inserted `</Path>`, and a path that samples `max_path_tokens` tokens gets an inserted `</Path>`.
A path is its own request: it never sees its siblings. The join is a request on the laid-out sequence
(paths in order) + the inserted `</Parallel>`, `\\n`, `<Summary>`; the summary stops at `</Summary>` (an EOS
there becomes an inserted `</Summary>` and the main segment goes on); then the main segment continues as a
new request. `<Parallel>` is banned inside paths and summaries (a block opens only in the main segment) and
in the main text after `max_blocks` blocks. `max_tokens` counts every completion token, paths and inserted
tokens included; when it runs out the trajectory stops where it is (`truncated`). Paths are charged against
the budget in the hf engine's order (one token of each open path in turn, path order within a step), so a
block cut by the budget keeps the same tokens as it would there.

`free` mode: one request, nothing inserted or banned. `structured` mode (KV merge at multiverse positions)
needs the hf engine.

All trajectories are in flight at once: the engine is driven step by step (`LLMEngine.step`), a segment's
next request is added as soon as the previous one finishes, and vLLM batches whatever is running, so no
trajectory waits for another. `rollout_batch` caps the trajectories in flight.

Randomness: every request carries its own seed, a hash of (seed, prompt key, sample, block, path, where the
segment starts), and vLLM draws a request's tokens from its own generator: a sample is the same whatever
else is in the call.

Log-probs: the hf engine reports log_softmax(logits / temperature) of the model's own logits for the sampled
token, before top-k/top-p, logits processors and bans (at temperature 1 when greedy). vLLM reports one of two
things, fixed when the `vllm.LLM` is built (`logprobs_mode`):
- `raw_logprobs`: log_softmax(logits) before everything: exactly the hf engine's number at temperature 1 or
  0, whatever top-k, top-p, processors and bans do. At another temperature it is not that number, and the
  engine reports NaN (which TRL's importance-sampling correction reads as "unavailable").
- `processed_logprobs` (what TRL builds its colocated `LLM` with): after bans, processors, temperature, top-k
  and top-p: the hf engine's number when top-k and top-p are off and nothing is banned or forced at that
  token; where `<Parallel>` is banned it is renormalised over the other tokens.
`from_model` picks `raw_logprobs` for a config at temperature 0 or 1 (the method's settings) and
`processed_logprobs` otherwise. Inserted tokens get 0.0 as in the hf engine.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import itertools
import math
import os
import random
import secrets
import shutil
import struct
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pr1.errors import Pr1Error
from pr1.models import tag_token_ids
from pr1.rollout.config import (
    Prompt,
    RolloutConfig,
    TokenEvent,
    Trajectory,
    encode_prompt,
    make_trajectory,
)
from pr1.rollout.engine import _Detok, _Labels, _Tokens
from pr1.rollout.sampling import LogitsProcessor, SampleContext
from pr1.structured import TagIds

try:
    import vllm
    from vllm.v1.sample.logits_processor import LogitsProcessor as _VLLMLogitsProcessor
    from vllm.v1.sample.logits_processor.builtin import process_dict_updates
except ImportError as err:  # pragma: no cover  (the module is imported only when vLLM was asked for)
    raise Pr1Error(
        "the vLLM engine needs vLLM: pip install 'pr1[vllm]' on a CUDA machine, or the CPU build "
        "(docs/VLLM.md)"
    ) from err

_MASK63 = (1 << 63) - 1
STRUCTURED_NEEDS_HF = (
    "rollout mode structured needs the hf engine (--engine hf): vLLM cannot merge the paths' KV caches"
)
_EXTRA_KEY = "pr1"  # the key of pr1's per-request context in SamplingParams.extra_args

# The logits processors of the calls in progress, by call id. vLLM's logits-processor plugin reads them from
# here, so a processor can be any Python callable: this needs the engine core in this process.
_PROCESSORS: dict[int, LogitsProcessor] = {}
_CALL_IDS = itertools.count()
_open_engines: set[int] = set()  # id() of each open engine's LLM: see VLLMRolloutEngine.close


class Pr1LogitsProcessor(_VLLMLogitsProcessor):
    """vLLM's side of pr1's logits processors (registered on the `vllm.LLM` with `logits_processors=`): for
    the requests of a call with a processor, it calls that processor once per step on their logits rows
    with a `SampleContext` each, then applies the engine's `<Parallel>` ban on top (as the hf engine does:
    a forced `<Parallel>` is still banned where a block may not open). Runs before temperature and
    truncation, like the hf engine's processors; it does not change what `raw_logprobs` reports."""

    def __init__(self, vllm_config: Any, device: torch.device, is_pin_memory: bool) -> None:
        self.rows: dict[int, _RowContext] = {}

    def is_argmax_invariant(self) -> bool:
        return False

    def update_state(self, batch_update: Any) -> None:
        process_dict_updates(self.rows, batch_update, self._new_row)

    @staticmethod
    def _new_row(params: Any, prompt_ids: list[int] | None, output_ids: list[int]) -> _RowContext | None:
        info = (params.extra_args or {}).get(_EXTRA_KEY)
        if info is None or info["call"] not in _PROCESSORS:
            return None
        return _RowContext(info, output_ids)

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        if not self.rows:
            return logits
        calls: dict[int, list[int]] = {}
        for row, ctx in self.rows.items():
            calls.setdefault(ctx.info["call"], []).append(row)
        for call, rows in calls.items():
            processor = _PROCESSORS.get(call)
            if processor is None:
                continue
            index = torch.tensor(rows, device=logits.device)
            contexts = [self.rows[r].context() for r in rows]
            logits[index] = processor(contexts, logits[index])  # (indexing copies the rows)
            banned = [r for r in rows if self.rows[r].info["ban"] is not None]
            if banned:
                logits[banned, self.rows[banned[0]].info["ban"]] = float("-inf")
        return logits


class _RowContext:
    """Where one request's next token is sampled, from its context and its output so far."""

    def __init__(self, info: dict, output_ids: list[int]):
        self.info, self.output_ids = info, output_ids  # output_ids: vLLM's live list of the request's tokens
        self.labels: _Labels | None = None
        if info["segment"] == "free":
            self.labels = _Labels(dict(zip(info["tags"], info["tag_ids"], strict=True)), info["newline"])
            self.seen, self.segment, self.block, self.path, self.sampled = 0, "main", None, None, 0

    def context(self) -> SampleContext:
        i, n = self.info, len(self.output_ids)
        if self.labels is None:
            segment, block, path, sampled = i["segment"], i["block"], i["path"], n
        else:  # free mode: the segment is read from the text as the hf engine reads it
            for token in self.output_ids[self.seen :]:
                self.sampled += 1
                self.labels(token)
                segment, self.block, self.path = self.labels.where()
                if segment != self.segment:
                    self.segment, self.sampled = segment, 0
            self.seen = n
            segment, block, path, sampled = self.segment, self.block, self.path, self.sampled
        return SampleContext(
            i["trajectory"],
            i["prompt_index"],
            i["sample_index"],
            segment,
            block,
            path,
            sampled,
            i["count"] + n,
        )


def request_seed(*key: int) -> int:
    """A 63-bit seed determined by the integers in `key`."""
    digest = hashlib.blake2b(struct.pack(f"<{len(key)}q", *key), digest_size=8).digest()
    return int.from_bytes(digest, "little") & _MASK63


@contextlib.contextmanager
def _in_process() -> Iterator[None]:
    """While an `LLM` is built: vLLM's engine core in this process (no spawned engine process, so no
    `__main__` guard is needed, nothing is left behind at exit, and pr1's logits processors are reachable),
    and this process as it was afterwards: vLLM's CPU worker seeds the global random generators and replaces
    `torch.set_num_threads` with a no-op, which would reach every caller of torch. vLLM silences stdout by
    its file descriptor while it starts, so a stdout without one (a test runner's capture, a Textual app's)
    is swapped for the process's own meanwhile."""
    import numpy as np

    key = "VLLM_ENABLE_V1_MULTIPROCESSING"
    old, set_num_threads, stdout = os.environ.get(key), torch.set_num_threads, sys.stdout
    py_state, np_state = random.getstate(), np.random.get_state()
    os.environ[key] = "0"
    try:
        stdout.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both of the last two
        sys.stdout = sys.__stdout__
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        sys.stdout = stdout
        torch.set_num_threads = set_num_threads
        random.setstate(py_state)
        np.random.set_state(np_state)
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old


def on_cpu() -> bool:
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


def llm_settings(path: str, config: RolloutConfig, **overrides: Any) -> dict[str, Any]:
    """The `vllm.LLM` arguments pr1 builds an engine with (any of them can be overridden):
    prefix caching on, no loading bar; room for the longest prompt plus the budget; the log-probs mode that matches the hf
    engine at the config's temperature; pr1's logits-processor plugin. On CPU: eager mode (compiling takes
    minutes there), float32 weights as the hf engine has them there (vLLM's `auto` casts a float32 model to
    bfloat16), 32-token KV blocks (prefix caching reuses whole blocks) and a 1 GiB KV cache unless
    VLLM_CPU_KVCACHE_SPACE says otherwise."""
    settings: dict[str, Any] = dict(
        model=path,
        tokenizer=path,
        enable_prefix_caching=True,
        max_model_len=config.max_prompt_tokens + config.max_tokens,
        logprobs_mode="raw_logprobs" if config.temperature in (0, 1) else "processed_logprobs",
        logits_processors=[Pr1LogitsProcessor],
        seed=0,
        use_tqdm_on_load=False,  # pr1's consoles say what is loading; vLLM's bar would cut into them
    )
    if on_cpu():
        settings.update(enforce_eager=True, block_size=32, dtype="float32")
        if "VLLM_CPU_KVCACHE_SPACE" not in os.environ:
            settings["kv_cache_memory_bytes"] = 1 << 30
    return {**settings, **overrides}


def tagged_model_folder(name_or_path: str) -> str:
    """A model folder whose tokenizer has the six tags (one token each) and whose embeddings have rows for
    them, for vLLM to load: the model's own folder when it has them (a pr1 SFT or RL output), else a copy with
    the tags added (`pr1.models.load_model` + `save_model`), made once under $PR1_CACHE/vllm/ and reused
    while the source files are unchanged."""
    from pr1.models import load_tokenizer, resolve_model_path

    path = resolve_model_path(name_or_path)
    try:
        tag_token_ids(load_tokenizer(path))
        return path
    except Pr1Error:
        pass
    return _saved_copy([Path(path)], lambda: _load_as_saved(path, None))


def merged_model_folder(name_or_path: str, adapter: str | Path) -> str:
    """A model folder of `name_or_path` with the peft `adapter` merged into it and the tags added
    (`pr1.models.load_model(..., adapter=)`), saved once under $PR1_CACHE/vllm/ and reused while neither
    folder's files change."""
    from pr1.models import resolve_model_path

    path = resolve_model_path(name_or_path)
    return _saved_copy([Path(path), Path(adapter)], lambda: _load_as_saved(path, adapter))


def _load_as_saved(path: str, adapter: str | Path | None) -> tuple[Any, Any]:
    from transformers import AutoConfig

    from pr1.models import load_model

    dtype = getattr(AutoConfig.from_pretrained(path), "dtype", None) or torch.float32  # kept as it is
    return load_model(path, device="cpu", dtype=dtype, adapter=adapter)


def _saved_copy(sources: list[Path], load: Callable[[], tuple[Any, Any]]) -> str:
    """The folder under $PR1_CACHE/vllm/ named after `sources` and their files (size, time), saved from
    `load()` when it is not there yet (atomically: written aside, then renamed)."""
    from pr1.models import cache_dir, save_model

    stamp = "|".join(
        f"{s.resolve()}:"
        + ",".join(f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in sorted(s.glob("*")))
        for s in sources
    )
    digest = hashlib.sha1(stamp.encode()).hexdigest()[:16]
    target = cache_dir() / "vllm" / f"{'+'.join(s.name for s in sources)}-{digest}"
    if not (target / "config.json").is_file():
        model, tokenizer = load()
        tmp = target.with_name(f".{target.name}.{os.getpid()}")
        try:
            save_model(model, tokenizer, tmp)
            del model
            tmp.rename(target)
        except OSError:
            if not (target / "config.json").is_file():  # else another process finished the same copy first
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return str(target)


class VLLMRolloutEngine:
    """Samples trajectories with the fork/join runtime on a `vllm.LLM` (see the module docstring); the same
    `generate` contract as `pr1.rollout.RolloutEngine`.

    Build it with `from_model(name_or_path, config)` (pr1 builds the `LLM`, in this process) or around an
    existing `LLM` (TRL's, say). A logits processor needs `Pr1LogitsProcessor` registered on that `LLM` and
    its engine core in this process, which `from_model` arranges."""

    def __init__(self, llm: Any, config: RolloutConfig | None = None, tokenizer: Any = None):
        self.llm = llm
        self.config = config or RolloutConfig()
        if self.config.mode == "structured":
            raise Pr1Error(STRUCTURED_NEEDS_HF)
        model_config = llm.llm_engine.model_config
        if tokenizer is None:
            from pr1.models import load_tokenizer

            tokenizer = load_tokenizer(model_config.tokenizer)
        self.tokenizer = tokenizer
        self.tags = tag_token_ids(tokenizer)
        self.tag_ids = TagIds.from_tokenizer(tokenizer)
        eos = [tokenizer.eos_token_id, *_generation_eos(model_config.model)]
        self.eos_ids = frozenset(i for i in eos if i is not None)
        self.newline = tokenizer.encode("\n", add_special_tokens=False)
        self.logprobs_mode = model_config.logprobs_mode
        self.max_model_len = model_config.max_model_len
        processors = [p if isinstance(p, str) else f"{p.__module__}.{p.__qualname__}"
                      for p in model_config.logits_processors or []]  # fmt: skip
        plugin = f"{Pr1LogitsProcessor.__module__}.{Pr1LogitsProcessor.__qualname__}"
        # the plugin's registry is this process's: it is reachable only by an engine core running here
        self.accepts_processors = plugin in processors and hasattr(llm.llm_engine, "model_executor")
        self.stats = {"requests": 0, "prompt_tokens": 0, "cached_tokens": 0}
        _open_engines.add(id(llm))

    @classmethod
    def from_model(
        cls, name_or_path: str, config: RolloutConfig | None = None, **llm_kwargs: Any
    ) -> VLLMRolloutEngine:
        """An engine on a new `vllm.LLM` for a model folder (or `smollm2-135m`, or a Hub id), tags added if
        the folder lacks them; `llm_kwargs` override `llm_settings`."""
        config = config or RolloutConfig()
        if config.mode == "structured":  # before minutes of loading
            raise Pr1Error(STRUCTURED_NEEDS_HF)
        path = tagged_model_folder(name_or_path)
        with _in_process():
            llm = vllm.LLM(**llm_settings(path, config, **llm_kwargs))
        return cls(llm, config)

    def encode(self, prompt: Prompt) -> list[int]:
        return encode_prompt(self.tokenizer, prompt)

    def generate(
        self,
        prompts: Sequence[Prompt],
        n: int = 1,
        *,
        on_event: Callable[[TokenEvent], None] | None = None,
        stop: threading.Event | None = None,
        on_done: Callable[[Trajectory], None] | None = None,
        logits_processor: LogitsProcessor | None = None,
        sample_keys: Sequence[int] | None = None,
    ) -> list[Trajectory]:
        """`n` trajectories per prompt, prompt-major; the arguments as `pr1.rollout.RolloutEngine.generate`'s.
        `SampleContext.completion_tokens` counts the trajectory's tokens before the request plus the request's
        own (a path's siblings decoding beside it are not counted)."""
        cfg = self.config
        if cfg.mode == "structured":
            raise Pr1Error(STRUCTURED_NEEDS_HF)
        if n < 1:
            raise Pr1Error(f"n={n}: expected at least 1 sample per prompt")
        if sample_keys is not None and len(sample_keys) != len(prompts):
            raise Pr1Error(f"{len(sample_keys)} sample keys for {len(prompts)} prompts")
        if logits_processor is not None and not self.accepts_processors:
            raise Pr1Error(
                "a logits processor on the vLLM engine needs an LLM built by VLLMRolloutEngine.from_model "
                "(Pr1LogitsProcessor registered, engine core in this process)"
            )
        limit = cfg.max_prompt_tokens
        trajs = []
        for p, prompt in enumerate(prompts):
            ids = self.encode(prompt)
            if not ids:
                raise Pr1Error(f"prompt {p} is empty")
            key = sample_keys[p] if sample_keys is not None else p
            for s in range(n):
                trajs.append(_Traj(p * n + s, p, s, key & _MASK63, ids[-limit:], len(ids) > limit))
        longest = max((len(t.prompt_ids) for t in trajs), default=0)
        if longest + cfg.max_tokens > self.max_model_len:
            raise Pr1Error(
                f"a prompt of {longest} tokens + max_tokens {cfg.max_tokens} exceeds the vLLM engine's "
                f"max_model_len {self.max_model_len}: lower --max-tokens / --max-prompt-tokens or rebuild the engine"
            )
        if not trajs:
            return []
        call = next(_CALL_IDS)
        if logits_processor is not None:
            _PROCESSORS[call] = logits_processor
        run = _Generation(self, call, trajs, on_event, stop, on_done, logits_processor is not None)
        try:
            run.run()
        finally:
            _PROCESSORS.pop(call, None)
            run.abort_all()
        return [t.result for t in trajs]  # type: ignore[misc]

    def load_weights(self, source: Any) -> None:
        """Load new weights into the engine: a transformers model, a peft model (its adapters merged for the
        copy: LoRA, trainable tag rows, modules_to_save; the model is left as it was), or a state dict with
        the transformers model's names. The prefix cache is reset (its blocks hold the old weights' keys).

        Goes through vLLM's worker `reload_weights` (checkpoint format, layer by layer), which also redoes
        what vLLM does to weights after loading them (on CPU it repacks the linear layers and drops the
        originals, so writing into the model's parameters, as `model.load_weights` does, fails there). With
        the engine core in this process the tensors are handed over, not copied; no generation may be in
        flight."""
        with named_weights(source) as weights:
            self.llm.collective_rpc(
                "reload_weights", kwargs={"weights_iterator": iter(weights), "is_checkpoint_format": True}
            )
        self.llm.apply_model(_reprocess_output_heads)
        self.llm.reset_prefix_cache()

    def close(self) -> None:
        """Shut vLLM's engine down (its workers and memory); the engine is unusable afterwards.

        Engines whose cores run in this process share vLLM's distributed state (its parallel groups are
        module globals), and an engine core's shutdown tears that state down: closing one engine while another
        lives would leave the other failing at its next step ("pipeline model parallel group is not
        initialized"). So only the last one open tears it down."""
        _open_engines.discard(id(self.llm))
        engine = getattr(self.llm, "llm_engine", None)
        core = getattr(engine, "engine_core", None)
        if core is None:
            return
        if not _open_engines:
            core.shutdown()
            return
        import vllm.v1.engine.core as engine_core

        teardown = engine_core.cleanup_dist_env_and_memory
        # what the teardown does besides the groups, less emptying the accelerator's cache (the last close does)
        engine_core.cleanup_dist_env_and_memory = gc.collect
        try:
            core.shutdown()
        finally:
            engine_core.cleanup_dist_env_and_memory = teardown


def _reprocess_output_heads(model: torch.nn.Module) -> None:
    """Redo what vLLM does to output heads after loading: a head tied to the input embedding gets no weights
    of its own in a reload, so the reload leaves it as it was, and on CPU that is a copy of the old
    embedding packed for the matrix kernels (on a GPU this is a no-op)."""
    from vllm.model_executor.layers.vocab_parallel_embedding import ParallelLMHead

    for module in model.modules():
        if isinstance(module, ParallelLMHead):
            module.quant_method.process_weights_after_loading(module)


def _generation_eos(model_path: str) -> list[int]:
    """The EOS ids of a model folder's generation config (as the hf engine reads them from the model)."""
    from transformers import GenerationConfig

    try:
        eos = GenerationConfig.from_pretrained(model_path).eos_token_id
    except (OSError, ValueError):
        return []
    return list(eos) if isinstance(eos, (list, tuple)) else [eos]


_ADAPTER_PARTS = ("lora_", "trainable_tokens_delta", "trainable_tokens_original", "token_indices")


@contextlib.contextmanager
def named_weights(source: Any) -> Iterator[list[tuple[str, torch.Tensor]]]:
    """(name, tensor) pairs under the transformers model's own names, for vLLM's `load_weights`. A peft model
    has its adapters merged while the pairs are in use and unmerged after; its wrapper names are rewritten
    (`base_model.model.`, `.base_layer`, `.original_module`, `.token_adapter`, `.modules_to_save.default`)
    and its adapter parameters left out."""
    if isinstance(source, Mapping):
        yield list(source.items())
        return
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover  (peft is a dependency)
        PeftModel = ()  # type: ignore[assignment,misc]  # noqa: N806
    if not isinstance(source, PeftModel):
        yield [(name, p.detach()) for name, p in source.named_parameters()]
        return
    base = source.get_base_model()
    with torch.no_grad():
        source.merge_adapter()
        try:
            out: dict[str, torch.Tensor] = {}
            for name, p in base.named_parameters(remove_duplicate=False):
                if any(part in name for part in _ADAPTER_PARTS):
                    continue
                trained_copy = ".modules_to_save." in name
                for wrapper in (
                    ".modules_to_save.default",
                    ".token_adapter",
                    ".original_module",
                    ".base_layer",
                ):
                    name = name.replace(wrapper, "")
                if trained_copy or name not in out:
                    out[name] = p.detach()
            yield list(out.items())
        finally:
            source.unmerge_adapter()


# ------------------------------------------------------------------------------------------ one call


@dataclass(eq=False)
class _Path:
    index: int
    request: str | None = None
    sampled: list[int] = field(default_factory=list)  # what vLLM returned so far
    logprobs: list[float] = field(default_factory=list)
    used: int = 0  # how many of `sampled` are charged to the budget and laid out
    finished: bool = False  # its request finished
    closed: bool = False  # its </Path> is laid out
    buf: _Tokens = field(default_factory=_Tokens)
    detok: _Detok | None = None


@dataclass(eq=False)
class _Traj:
    index: int
    prompt_index: int
    sample_index: int
    key: int
    prompt_ids: list[int]
    prompt_truncated: bool
    out: _Tokens = field(default_factory=_Tokens)  # the completion in layout order
    count: int = 0  # completion tokens charged to the budget (paths being decoded included)
    blocks: int = 0
    paths: list[_Path] = field(default_factory=list)  # the open block's paths
    segment: str = "main"  # of the request in flight: "main" | "summary" | "free" (paths: see `paths`)
    segment_sampled: int = 0  # tokens sampled in the current main/summary segment before this request
    detok: _Detok | None = None
    labels: _Labels | None = None
    started: bool = False
    finished: bool = False
    result: Trajectory | None = None


class _Generation:
    """The state of one `generate` call: trajectories, their requests in vLLM, the budget."""

    def __init__(
        self,
        engine: VLLMRolloutEngine,
        call: int,
        trajs: list[_Traj],
        on_event: Callable[[TokenEvent], None] | None,
        stop: threading.Event | None,
        on_done: Callable[[Trajectory], None] | None,
        processed: bool,
    ):
        self.e, self.cfg, self.call = engine, engine.config, call
        self.vllm = engine.llm.llm_engine
        self.on_event, self.stop, self.on_done, self.processed = on_event, stop, on_done, processed
        self.seed = self.cfg.seed & _MASK63 if self.cfg.seed is not None else secrets.randbits(63)
        self.trajs, self.queue = trajs, deque(trajs)
        self.requests: dict[str, tuple[_Traj, _Path | None]] = {}
        self.ids = itertools.count()
        self.live = 0
        self.nan_logprobs = engine.logprobs_mode == "raw_logprobs" and self.cfg.temperature not in (0, 1)
        tags = engine.tags
        self.close_tag = {"main": tags["<Parallel>"], "path": tags["</Path>"], "summary": tags["</Summary>"]}

    def run(self) -> None:
        while self.queue or self.requests:
            if self.stop is not None and self.stop.is_set():
                self.abort_all()
                for t in self.trajs:
                    self._finish(t, truncated=True)
                return
            self._admit()
            for output in self.vllm.step():
                self._on_output(output)

    def abort_all(self) -> None:
        if self.requests:
            self.vllm.abort_request(list(self.requests))
            self.requests.clear()

    # ------------------------------------------------------------------------------------ requests

    def _admit(self) -> None:
        while self.queue and self.live < self.cfg.rollout_batch:
            t = self.queue.popleft()
            t.started, self.live = True, self.live + 1
            if self.on_event is not None:
                t.detok = _Detok(self.e.tokenizer)
            if self.cfg.mode == "free":
                t.segment = "free"
                if self.on_event is not None:  # the events' segments are read from the text
                    t.labels = _Labels(self.e.tags, self.e.newline)
            self._request(t, "free" if self.cfg.mode == "free" else "main")

    def _request(self, t: _Traj, segment: str, path: _Path | None = None) -> None:
        """Add the request that decodes `t`'s next segment (or one path of its open block)."""
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        cfg, tags, e = self.cfg, self.e.tags, self.e
        budget = cfg.max_tokens - t.count
        ids = t.prompt_ids + t.out.ids
        stops = set(e.eos_ids)
        ban = None
        if segment == "path":
            assert path is not None
            ids = ids + path.buf.ids  # the inserted <Path>
            block, index, start = t.blocks - 1, path.index, 0
            budget = min(budget, cfg.max_path_tokens)
            stops.add(tags["</Path>"])
            ban = tags["<Parallel>"]
        else:
            block, index, start = -1, -1, len(t.out.ids)
            if segment == "summary":
                stops.add(tags["</Summary>"])
                ban = tags["<Parallel>"]
            elif segment == "main":
                if t.blocks < cfg.max_blocks:
                    stops.add(tags["<Parallel>"])
                else:
                    ban = tags["<Parallel>"]
        extra = None
        if self.processed:
            extra = {_EXTRA_KEY: {
                "call": self.call, "trajectory": t.index, "prompt_index": t.prompt_index,
                "sample_index": t.sample_index, "segment": segment, "block": block if block >= 0 else None,
                "path": index if index >= 0 else None, "count": t.count, "ban": ban,
                "tags": list(tags), "tag_ids": list(tags.values()), "newline": e.newline,
            }}  # fmt: skip
        params = SamplingParams(
            n=1,
            max_tokens=budget,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            top_k=cfg.top_k,
            seed=request_seed(self.seed, t.key, t.sample_index, block, index, start),
            stop_token_ids=sorted(stops),
            bad_words=["<Parallel>"] if ban is not None else None,
            logprobs=0,
            detokenize=False,
            skip_special_tokens=False,
            output_kind=RequestOutputKind.DELTA,
            extra_args=extra,
        )
        rid = f"{self.call}-{t.index}-{next(self.ids)}"
        self.vllm.add_request(rid, {"prompt_token_ids": ids}, params)
        self.requests[rid] = (t, path)
        if path is not None:
            path.request = rid

    def _on_output(self, output: Any) -> None:
        entry = self.requests.get(output.request_id)
        if entry is None:  # aborted
            return
        t, path = entry
        if output.finished:
            del self.requests[output.request_id]
            self.e.stats["requests"] += 1
            self.e.stats["prompt_tokens"] += len(output.prompt_token_ids or ())
            self.e.stats["cached_tokens"] += output.num_cached_tokens or 0
        if t.finished:
            return
        (completion,) = output.outputs
        tokens = list(completion.token_ids)
        logprobs = self._logprobs(completion, tokens)
        if path is not None:
            path.sampled += tokens
            path.logprobs += logprobs
            path.finished = output.finished
            self._advance_block(t)
            return
        for token, logprob in zip(tokens, logprobs, strict=True):
            if t.finished or not self._on_token(t, token, logprob):
                return
        if output.finished and not t.finished:
            # a request that ended without a stop of ours ran out of tokens: the budget is spent
            self._finish(t, truncated=True)

    def _logprobs(self, completion: Any, tokens: list[int]) -> list[float]:
        if self.nan_logprobs or completion.logprobs is None:
            return [math.nan] * len(tokens)
        return [entry[token].logprob for token, entry in zip(tokens, completion.logprobs, strict=True)]

    # ---------------------------------------------------------------------------------- the runtime

    def _on_token(self, t: _Traj, token: int, logprob: float) -> bool:
        """One sampled token of a main, summary or free request; False once that request is over."""
        tags, cfg = self.e.tags, self.cfg
        if token in self.e.eos_ids:
            if t.segment == "summary":  # the summary is closed for it and the main text goes on
                if not self._add(t, tags["</Summary>"], 0.0, True):
                    return False
                return self._next_main(t)
            self._add(t, token, logprob, False)
            self._finish(t, truncated=False)
            return False
        if not self._add(t, token, logprob, False):
            return False
        if t.segment == "main" and token == tags["<Parallel>"] and t.blocks < cfg.max_blocks:
            self._fork(t)
            return False
        if t.segment == "summary" and token == tags["</Summary>"]:
            return self._next_main(t)
        if t.count >= cfg.max_tokens:
            self._finish(t, truncated=True)
            return False
        return True

    def _next_main(self, t: _Traj) -> bool:
        if t.count >= self.cfg.max_tokens:
            self._finish(t, truncated=True)
        else:
            t.segment = "main"
            self._request(t, "main")
        return False

    def _fork(self, t: _Traj) -> None:
        t.blocks += 1
        t.paths = [_Path(i) for i in range(self.cfg.num_paths)]
        for path in t.paths:
            if self.on_event is not None:
                path.detok = _Detok(self.e.tokenizer)
        for path in t.paths:
            if not self._add(t, self.e.tags["<Path>"], 0.0, True, path):
                break
        if t.count >= self.cfg.max_tokens:
            self._finish(t, truncated=True)
            return
        for path in t.paths:
            self._request(t, "path", path)

    def _advance_block(self, t: _Traj) -> None:
        """Charge the block's sampled path tokens to the budget in the hf engine's order: step by step, one
        token of every open path per step in path order (a path's cap-closing `</Path>` right after its last
        token), as far as every open path has returned its next token."""
        close, cap = self.e.tags["</Path>"], self.cfg.max_path_tokens
        while not t.finished:
            open_paths = [p for p in t.paths if not p.closed]
            if not open_paths:
                self._join(t)
                return
            if any(p.used >= len(p.sampled) and not p.finished for p in open_paths):
                return  # wait for the slowest path
            for p in open_paths:
                if p.used >= len(p.sampled):  # ended without a stop of ours: closed for it
                    p.closed = True
                    if not self._add(t, close, 0.0, True, p):
                        break
                    continue
                token, logprob = p.sampled[p.used], p.logprobs[p.used]
                p.used += 1
                if token in self.e.eos_ids:
                    p.closed = self._add(t, close, 0.0, True, p)
                elif self._add(t, token, logprob, False, p):
                    if token == close:
                        p.closed = True
                    elif p.used >= cap:
                        p.closed = self._add(t, close, 0.0, True, p)
                if t.count >= self.cfg.max_tokens:
                    break
            if t.count >= self.cfg.max_tokens:
                self._finish(t, truncated=True)

    def _join(self, t: _Traj) -> None:
        tags = self.e.tags
        for path in t.paths:
            t.out.extend(path.buf)
        t.paths = []
        t.segment = "summary"
        for token in [tags["</Parallel>"], *self.e.newline, tags["<Summary>"]]:
            if not self._add(t, token, 0.0, True):
                break
        if t.count >= self.cfg.max_tokens:
            self._finish(t, truncated=True)
            return
        self._request(t, "summary")

    def _add(self, t: _Traj, token: int, logprob: float, inserted: bool, path: _Path | None = None) -> bool:
        """Append a token to the trajectory (or to a path of its open block) and report it; False when the
        budget is spent (the token is not added)."""
        if t.count >= self.cfg.max_tokens:
            return False
        (path.buf if path is not None else t.out).add(token, logprob, inserted)
        t.count += 1
        if self.on_event is not None:
            if t.labels is not None:
                segment, block, index = t.labels(token)
            elif path is not None:
                segment, block, index = "path", t.blocks - 1, path.index
            else:
                segment, block, index = t.segment, (t.blocks - 1 if t.segment == "summary" else None), None
            detok = path.detok if path is not None else t.detok
            text = detok.flush() if token in self.e.eos_ids else detok.add(token)  # type: ignore[union-attr]
            self.on_event(TokenEvent(t.index, segment, block, index, token, text, inserted))
        return True

    def _finish(self, t: _Traj, truncated: bool) -> None:
        if t.finished:
            return
        t.finished = True
        if t.started:
            self.live -= 1
        mine = [rid for rid, (owner, _) in self.requests.items() if owner is t]
        if mine:
            self.vllm.abort_request(mine)
            for rid in mine:
                del self.requests[rid]
        for path in t.paths:
            t.out.extend(path.buf)
            self._flush(t, path.detok, "path", t.blocks - 1, path.index)
        t.paths = []
        self._flush(t, t.detok, "main", None, None)
        if self.on_event is not None:
            self.on_event(TokenEvent(t.index, "main", None, None, -1, "", False, done=True))
        e = self.e
        t.result = make_trajectory(
            e.tokenizer, e.tag_ids, e.eos_ids, prompt_ids=t.prompt_ids, completion_ids=t.out.ids,
            logprobs=t.out.logprobs, inserted=t.out.inserted, truncated=truncated,
            prompt_index=t.prompt_index, sample_index=t.sample_index, prompt_truncated=t.prompt_truncated,
        )  # fmt: skip
        if self.on_done is not None:
            self.on_done(t.result)

    def _flush(
        self, t: _Traj, detok: _Detok | None, segment: str, block: int | None, path: int | None
    ) -> None:
        text = detok.flush() if detok is not None else ""
        if text and self.on_event is not None:
            self.on_event(TokenEvent(t.index, segment, block, path, -1, text, False))
