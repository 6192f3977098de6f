"""`pr1 chat`: open the live branching viewer, loading a model (and a LoRA adapter) while it opens."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from pr1.commands.flags import with_settings
from pr1.embedded import EMBEDDED_MODEL
from pr1.errors import Pr1Error
from pr1.prompts import NAMES, load_template
from pr1.runs import adapter_folder
from pr1.settings import resolve
from pr1.tui.chat_session import ChatSettings, EngineGenerator, LoadedModel

FLAGS = ("mode", "temperature", "top_p", "max_tokens", "num_paths", "seed", "engine")


def has_tag_tokens(tokenizer) -> bool:  # noqa: ANN001 - a transformers tokenizer
    """Whether the tokenizer holds all six tag tokens."""
    from pr1.models import tag_token_ids

    try:
        tag_token_ids(tokenizer)
    except Pr1Error:
        return False
    return True


def load_chat_model(
    model: str,
    adapter: Path | None,
    settings: ChatSettings,
    *,
    dtype: str,
    device: str | None,
    trust_remote_code: bool,
) -> LoadedModel:
    """The rollout engine to chat with, on the model with `adapter` merged (`settings.engine`: hf, or vLLM when
    asked for: `auto` keeps hf, whose start is the quicker for one conversation). It has parallel training
    when the tokenizer it uses (the adapter's, which SFT saves beside it, else the model's: an exported
    model's) held the tag tokens before pr1 added them; a base model's tokenizer does not."""
    from pr1.models import load_model, load_tokenizer
    from pr1.rollout import RolloutConfig, RolloutEngine
    from pr1.rollout.engines import pick_engine, vllm_engine

    trained_with = adapter if adapter is not None and (adapter / "tokenizer_config.json").is_file() else model
    trained = has_tag_tokens(load_tokenizer(str(trained_with), trust_remote_code=trust_remote_code))
    config = RolloutConfig.of(settings)
    if pick_engine(settings, planned_tokens=settings.max_tokens)[0] == "vllm":
        return LoadedModel(vllm_engine(model, str(adapter) if adapter else None, config), trained)
    lm, tokenizer = load_model(
        model, dtype=dtype, device=device, trust_remote_code=trust_remote_code, adapter=adapter
    )
    return LoadedModel(RolloutEngine(lm.eval(), tokenizer, config), trained)


@with_settings(ChatSettings, FLAGS)
def chat(
    model: Annotated[str, typer.Option(help="Model name, Hub id or folder.")] = EMBEDDED_MODEL,
    adapter: Annotated[
        Path | None,
        typer.Option(help="A peft (LoRA) adapter folder, or a pr1 sft / rl run folder (its final/)."),
    ] = None,
    prompt_file: Annotated[
        str | None, typer.Option(help=f"{NAMES} | a template file with {{problem}}.")
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
    """Chat with a model and watch its parallel paths branch, grow side by side and fold into summaries.
    The model loads while the app opens; a problem typed meanwhile waits for it."""
    sampling = resolve(ChatSettings, settings, flags=FLAGS)
    template = load_template(prompt_file)
    adapter = adapter_folder(adapter) if adapter is not None else None
    if adapter is not None and not (adapter / "adapter_config.json").is_file():
        raise Pr1Error(f"--adapter {adapter}: not a peft adapter folder (no adapter_config.json)")
    from pr1.tui.chat_app import run_chat

    def load() -> LoadedModel:
        return load_chat_model(
            model, adapter, sampling, dtype=dtype, device=device, trust_remote_code=trust_remote_code
        )

    name = model + (f" + {adapter.name}" if adapter else "")
    notice = run_chat(EngineGenerator(load, name, template), settings=sampling, save_path=save)
    if notice:  # shown in the app too; this line stays in the terminal
        typer.echo(notice, err=True)
