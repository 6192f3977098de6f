"""`pr1 chat`: load a model (and a LoRA adapter) and open the live branching viewer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from pr1.commands.flags import with_settings
from pr1.embedded import EMBEDDED_MODEL
from pr1.errors import Pr1Error
from pr1.prompts import load_template
from pr1.settings import resolve
from pr1.tui.chat_session import ChatSettings

FLAGS = ("mode", "temperature", "top_p", "max_tokens", "num_paths", "seed")


def load_adapter(model, adapter: Path):  # noqa: ANN001, ANN201 - transformers / peft models
    """Apply a peft adapter folder to `model` and merge it (faster generation, no peft at run time)."""
    from pr1.models import merge_adapter

    return merge_adapter(model, adapter)


@with_settings(ChatSettings, FLAGS)
def chat(
    model: Annotated[str, typer.Option(help="Model name, Hub id or folder.")] = EMBEDDED_MODEL,
    adapter: Annotated[Path | None, typer.Option(help="A peft (LoRA) adapter folder to apply.")] = None,
    prompt_file: Annotated[
        str | None, typer.Option(help="parallel | sequential | a template file with {problem}.")
    ] = None,
    save: Annotated[
        Path | None, typer.Option(help="Session file (ctrl+s appends to it); default pr1-chat-<time>.jsonl.")
    ] = None,
    device: Annotated[str | None, typer.Option(help="cuda | cpu (default: cuda when available).")] = None,
    dtype: Annotated[str, typer.Option(help="auto | float32 | bfloat16 | float16.")] = "auto",
    trust_remote_code: Annotated[
        bool, typer.Option("--trust-remote-code", help="Run code shipped with the model.", metavar="")
    ] = False,
    *,
    settings: dict[str, Any],
) -> None:
    """Chat with a model and watch its parallel paths branch, grow side by side and fold into summaries."""
    sampling = resolve(ChatSettings, settings, flags=FLAGS)
    template = load_template(prompt_file)
    if adapter is not None and not (adapter / "adapter_config.json").is_file():
        raise Pr1Error(f"--adapter {adapter}: not a peft adapter folder (no adapter_config.json)")
    with Console(stderr=True).status(f"loading {model}{' + ' + str(adapter) if adapter else ''} …"):
        from pr1.models import load_model
        from pr1.tui.chat_session import EngineGenerator

        lm, tokenizer = load_model(model, dtype=dtype, device=device, trust_remote_code=trust_remote_code)
        if adapter is not None:
            lm = load_adapter(lm, adapter)
            if (adapter / "tokenizer_config.json").is_file():  # the tokenizer training used (tags, template)
                from transformers import AutoTokenizer

                tokenizer = AutoTokenizer.from_pretrained(str(adapter))
        lm.eval()
    from pr1.tui.chat_app import run_chat

    name = model + (f" + {adapter.name}" if adapter else "")
    run_chat(EngineGenerator(lm, tokenizer, name, template), settings=sampling, save_path=save)
