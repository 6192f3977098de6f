"""A command's flags made from its settings dataclass, so each flag's help and default are declared once: in the
field (`pr1.settings.setting`).

    @with_settings(RLConfig, FLAGS)
    def rl(out: ..., resume: ..., settings: dict[str, Any]) -> None: ...

adds one typer option (or argument) per field named in FLAGS, in that order; typer sees them as ordinary
parameters with the field's help and default. `settings` holds exactly the flags the user set on the command
line (typer's context records where each value came from), ready to layer over `--config` files and a resumed run
(`pr1.settings.resolve`).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer

from pr1.settings import type_hints


def with_settings(cls: type, names: Sequence[str]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a command whose last parameter is `settings`: typer gets the options of `names`, and the
    command gets `settings` = {name: value} for each of them that was given."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = type_hints(cls)
    unknown = [n for n in names if n not in fields]
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {', '.join(unknown)}")

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        own_hints = typing.get_type_hints(command, include_extras=True)
        own = [
            p.replace(annotation=own_hints.get(p.name, p.annotation))
            for p in inspect.signature(command).parameters.values()
            if p.name != "settings"
        ]
        generated = [_parameter(fields[n], hints[n]) for n in names]
        arguments = [p for p in generated if p.default is inspect.Parameter.empty]
        options = [p for p in generated if p.default is not inspect.Parameter.empty]
        positional = [p for p in own if p.default is inspect.Parameter.empty]
        keyword = [p for p in own if p.default is not inspect.Parameter.empty]

        @functools.wraps(command)
        def wrapper(pr1_context: typer.Context, **kwargs: Any) -> Any:
            values = {n: kwargs.pop(n) for n in names}
            given = {n: v for n, v in values.items() if _from_command_line(pr1_context, n)}
            return command(**kwargs, settings=given)

        context = inspect.Parameter("pr1_context", KEYWORD, annotation=typer.Context)  # typer passes it
        parameters = [context, *arguments, *positional, *options, *keyword]
        wrapper.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in parameters]
        )
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        del wrapper.__wrapped__  # typer must read the signature above, not the command's
        return wrapper

    return decorate


def _parameter(f: dataclasses.Field, hint: Any) -> inspect.Parameter:
    meta = f.metadata
    help_text = meta["help"] + (f" ({' | '.join(meta['choices'])})" if meta["choices"] else "")
    default = _default(f)
    if meta["argument"]:  # required unless the field's default holds something
        info = typer.Argument(help=help_text, show_default=False, metavar=f.name.upper())
        if default:
            return inspect.Parameter(f.name, KEYWORD, default=default, annotation=Annotated[hint, info])
        return inspect.Parameter(f.name, KEYWORD, annotation=Annotated[hint, info])
    decls = [meta["flag"]] if meta["flag"] else []
    if hint is bool and not decls and default is False:
        decls = ["--" + f.name.replace("_", "-")]  # off by default: a flag that turns it on
    flag = {"metavar": ""} if typing.get_args(hint) == () and hint is bool else {}  # no value to show
    info = typer.Option(*decls, help=help_text, show_default=meta["shown"] or default is not None, **flag)
    return inspect.Parameter(f.name, KEYWORD, default=default, annotation=Annotated[hint, info])


KEYWORD = inspect.Parameter.KEYWORD_ONLY


def _from_command_line(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
