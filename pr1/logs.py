"""Library noise off the console and into the run folder's log.

transformers' weight-loading and shard-writing bars, its warnings, peft's and TRL's warnings and
math-verify's notices are for whoever debugs a run, not for the console of every command. `quiet()` (the
CLI calls it first) turns the progress bars off and sends warnings and library log records to the logging
module, where only errors reach the console; `log_into(RUN_DIR)` (every `Run` does) keeps the rest in
RUN_DIR/pr1.log. `PR1_VERBOSE=1` leaves the libraries as they are.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

LOG_FILE = "pr1.log"
LIBRARIES = (
    "transformers", "peft", "trl", "accelerate", "datasets", "math_verify", "latex2sympy2_extended", "vllm"
)  # fmt: skip
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_quiet = False  # quiet() was called: this process is the CLI


def verbose() -> bool:
    return os.environ.get("PR1_VERBOSE", "") not in ("", "0")


def quiet() -> None:
    """Progress bars off, warnings into logging, library records to the console only from ERROR up (before
    any library is imported: the bars are switched off by environment variables they read at import)."""
    global _quiet
    if verbose():
        return
    _quiet = True
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' and the Hub's tqdm bars
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "0")  # vLLM's records reach the root logger, not stdout
    os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")  # torch's C++ warnings ("NUMA binding: ...")
    logging.captureWarnings(True)
    root = logging.getLogger()
    if not any(getattr(h, "pr1_console", False) for h in root.handlers):
        console = logging.StreamHandler(sys.stderr)
        console.setLevel(logging.ERROR)
        console.pr1_console = True  # type: ignore[attr-defined]
        root.addHandler(console)
    root.setLevel(logging.INFO)
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
    route_transformers()


def route_transformers() -> None:
    """transformers writes to stderr through a handler of its own: once it is imported, send its records to the
    root logger instead (the console shows errors, the run log the rest). Only in the CLI (`quiet`): a library
    user's transformers logging is left alone."""
    if not _quiet or "transformers" not in sys.modules:
        return
    from transformers.utils import logging as hf_logging

    hf_logging.disable_default_handler()
    hf_logging.enable_propagation()
    hf_logging.set_verbosity_warning()


def log_into(run_dir: str | Path) -> None:
    """Keep library records and warnings of this process in RUN_DIR/pr1.log (appended across resumes)."""
    path = Path(run_dir) / LOG_FILE
    root = logging.getLogger()
    for handler in list(root.handlers):  # one run log at a time: the newest run of the process
        if getattr(handler, "pr1_run_log", False):
            root.removeHandler(handler)
            handler.close()
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.pr1_run_log = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    route_transformers()
