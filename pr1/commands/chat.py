"""`pr1 chat`: load a model (and a LoRA adapter) and open the live branching viewer."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from pr1.errors import Pr1Error
from pr1.prompts import load_template
from pr1.tui.chat_session import ChatSettings


def load_adapter(model, adapter: Path):  # noqa: ANN001, ANN201 - transformers / peft models
    """Apply a peft adapter folder to `model` and merge it (faster generation, no peft at run time)."""
    from pr1.models import merge_adapter

    return merge_adapter(model, adapter)


def run_chat_command(
    model: str,
    adapter: Path | None,
    settings: ChatSettings,
    prompt_file: str | None,
    save: Path | None,
    device: str | None,
    dtype: str,
    trust_remote_code: bool,
) -> None:
    settings.check()
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
    run_chat(EngineGenerator(lm, tokenizer, name, template), settings=settings, save_path=save)
