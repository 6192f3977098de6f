"""Settings of pr1's jobs: one dataclass per job, each field declared once, with its help and its rules.

    @dataclass
    class RLConfig(RolloutConfig):
        group: int = setting(8, "Samples per prompt (the GRPO group).", min=2)

`setting` keeps a field's help, its choices and bounds (and, where needed, how its flag is spelled) in the
field's metadata. Everything else reads them from there:
- `pr1.commands.flags` builds a command's typer options from the fields it exposes (help, shown default);
- `Settings.__post_init__` checks every value against its field (choices, bounds, finite numbers) whoever
  builds the dataclass: a flag, a `--config` file, a resumed run's run.json, a library call;
- `resolve` layers defaults <- `--config` files <- a resumed run's saved settings <- flags, checks each value's
  type where it enters (naming the file or "command line"), and applies the resume policy of `pr1.runs`.

A bad value raises `SettingError`, whose message names each setting it is about the way the user can set
it: `--samples 1` where the command has that flag, `config key updates_per_step=3` where it is a `--config`
key only.

`--config` files are flat TOML (`key = value`, keys with `-` or `_`), layered left to right, so a recipe is a
stage preset plus a hardware profile (examples/*.toml).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import types
import typing
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pr1.errors import Pr1Error

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_NO_DEFAULT: Any = dataclasses.MISSING

# choices that SFT and RL share
TRACKERS = ("none", "tensorboard", "wandb", "trackio", "mlflow")  # what a job also logs to (`report_to`)
VARIANTS = ("causal", "structured")  # how a laid-out trace is trained on (METHOD.md §6)
BACKENDS = ("auto", "unsloth", "hf")  # the training backends (pr1.backends)


def setting(
    default: Any = _NO_DEFAULT,
    help: str = "",  # noqa: A002  (the word typer and argparse use)
    *,
    factory: Callable[[], Any] | None = None,
    choices: Sequence[str] | None = None,
    min: float | None = None,  # noqa: A002
    above: float | None = None,
    max: float | None = None,  # noqa: A002
    below: float | None = None,
    flag: str | None = None,
    argument: bool = False,
    shown: str | None = None,
) -> Any:
    """A settings field. `help` is the flag's help; `choices` and the bounds (`min`/`max` inclusive,
    `above`/`below` exclusive) are checked on every construction, and float fields must be finite.
    `flag`: the option's spelling when it is not `--field-name` (e.g. "--mask-inserted/--train-inserted");
    `argument`: a positional argument; `shown`: the default as the help shows it, where the value alone does
    not say it (None meaning "2 x rank")."""
    metadata = {
        "help": help,
        "choices": tuple(choices) if choices else None,
        "bounds": (min, above, max, below),
        "flag": flag,
        "argument": argument,
        "shown": shown,
    }
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


class SettingError(Pr1Error):
    """A bad setting value. `template` refers to settings as `{name}` (written with its value) or
    `{name:name}` (its name only); `values` holds them. `describe(spell)` writes each the way a command
    spells it; `str()` spells them as `name=value`."""

    def __init__(self, template: str, **values: Any) -> None:
        self.template, self.values = template, values
        super().__init__(self.describe(lambda name, value: (name, f"{name}={value!r}")))

    def describe(self, spell: Callable[[str, Any], tuple[str, str]]) -> str:
        return self.template.format(**{n: _Spelled(*spell(n, v)) for n, v in self.values.items()})


class _Spelled:
    def __init__(self, name: str, with_value: str) -> None:
        self.name, self.with_value = name, with_value

    def __format__(self, spec: str) -> str:
        return self.name if spec == "name" else self.with_value


def invalid(name: str, value: Any, why: str) -> SettingError:
    """The error for one bad value: "{name}: why"."""
    return SettingError(f"{{{name}}}: {why}", **{name: value})


@dataclasses.dataclass
class Settings:
    """Base of pr1's settings dataclasses. `__post_init__` checks every field's value against its `setting`
    (choices, bounds, finite floats); a subclass adds its cross-field rules in its own `__post_init__`, after
    calling this one."""

    def __post_init__(self) -> None:
        hints = type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None or not f.metadata:
                continue
            meta = f.metadata
            if meta["choices"] and value not in meta["choices"]:
                raise invalid(f.name, value, f"expected one of {', '.join(meta['choices'])}")
            if isinstance(value, float) and not math.isfinite(value) and _base(hints[f.name]) is float:
                raise invalid(f.name, value, "expected a finite number")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                _check_bounds(f.name, value, meta["bounds"])


def _check_bounds(name: str, value: float, bounds: tuple) -> None:
    low, above, high, below = bounds
    ok = (
        (low is None or value >= low)
        and (above is None or value > above)
        and (high is None or value <= high)
        and (below is None or value < below)
    )
    if ok:
        return
    if (low is not None or above is not None) and (high is not None or below is not None):
        left = f"[{_num(low)}" if low is not None else f"({_num(above)}"
        right = f"{_num(high)}]" if high is not None else f"{_num(below)})"
        raise invalid(name, value, f"expected a value in {left}, {right}")
    if low is not None:
        raise invalid(name, value, "must not be negative" if low == 0 else f"must be at least {_num(low)}")
    if above is not None:
        raise invalid(name, value, "must be positive" if above == 0 else f"must be above {_num(above)}")
    raise invalid(
        name, value, f"must be at most {_num(high)}" if high is not None else f"must be below {_num(below)}"
    )


def _num(x: float) -> str:
    return f"{x:g}"


def type_hints(cls: type) -> dict[str, Any]:
    """The fields' types as objects (the modules write them as strings: `from __future__ import annotations`)."""
    return typing.get_type_hints(cls)


def _base(hint: Any) -> Any:
    """`int` for `int`, `int | None` and `Optional[int]`; `list` for `list[str]`."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _base(args[0])
    return origin or hint


_TYPES = {
    str: (str, "a string"),
    int: (int, "an integer"),
    float: ((int, float), "a number"),
    bool: (bool, "true or false"),
    list: (list, "a list"),
    Path: ((str, Path), "a path"),
}


def checked(values: Mapping[str, Any], cls: type, where: str) -> dict[str, Any]:
    """`values` as settings of `cls`: keys with `-` read as `_`, each known to `cls` and of its field's type
    (an integer is accepted for a float, and becomes one). `where` (a file, "command line") starts every
    error message."""
    hints = type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    out = {}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in names:
            raise Pr1Error(f"{where}: unknown setting {key!r} (known: {', '.join(names)})")
        out[name] = _typed(name, value, hints[name], where)
    return out


def _typed(name: str, value: Any, hint: Any, where: str) -> Any:
    optional = type(None) in typing.get_args(hint)
    if value is None and optional:
        return None
    base = _base(hint)
    expected, description = _TYPES[base]
    if not isinstance(value, expected) or (isinstance(value, bool) and base is not bool):
        raise Pr1Error(f"{where}: {name} = {value!r}: expected {description}")
    return float(value) if base is float else Path(value) if base is Path else value


def load_file(path: str | Path, cls: type) -> dict[str, Any]:
    """The settings of one `--config` file, checked against the fields of `cls`."""
    where = f"--config {path}"
    path = Path(path)
    if not path.is_file():
        raise Pr1Error(f"{where}: no such file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise Pr1Error(f"{where}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise Pr1Error(f"{where}: invalid TOML ({e})") from None
    nested = [k for k, v in data.items() if isinstance(v, dict)]
    if nested:
        raise Pr1Error(f"{where}: tables are not used; write flat `key = value` lines ([{nested[0]}])")
    return checked(data, cls, where)


def layer(paths: Iterable[str | Path], cls: type) -> dict[str, Any]:
    """The settings of several files, each later one overriding the earlier ones."""
    values: dict[str, Any] = {}
    for path in paths:
        values.update(load_file(path, cls))
    return values


def flag_name(cls: type, name: str) -> str:
    """How the command line spells a field's flag: `--max-tokens`, or its own spelling (the first of a
    `--on/--off` pair)."""
    meta = {f.name: f.metadata for f in dataclasses.fields(cls)}.get(name) or {}
    return (meta.get("flag") or "--" + name.replace("_", "-")).split("/")[0]


def speller(cls: type, flags: Collection[str]) -> Callable[[str, Any], tuple[str, str]]:
    """How a command names a setting in its errors: `--samples 1` for one of its `flags`, `config key
    updates_per_step=3` for a setting that only a `--config` file (or run.json) can set."""

    def spell(name: str, value: Any) -> tuple[str, str]:
        if name in flags:
            flag = flag_name(cls, name)
            return flag, f"{flag} {value!r}"
        return f"config key {name}", f"config key {name}={value!r}"

    return spell


def resolve(
    cls: type,
    given: Mapping[str, Any],
    files: Sequence[str | Path] = (),
    *,
    saved: Mapping[str, Any] | None = None,
    may_change: Collection[str] = (),
    flags: Collection[str] | None = None,
) -> Any:
    """The settings of a job: defaults <- the `--config` `files`, left to right <- `saved` (a resumed run's
    settings, from run.json) <- `given` (the flags set on the command line; None = not set). On a resumed run, a flag may
    change only the `may_change` keys (`pr1.runs.check_resume`, which names every other changed key).
    `flags`: the fields the command has flags for (default: those in `given`), to name them in errors."""
    from pr1.runs import check_resume

    flags = set(given) if flags is None else set(flags)
    spell = speller(cls, flags)
    values = layer(files, cls)
    given = checked({k: v for k, v in given.items() if v is not None}, cls, "command line")
    if saved is not None:
        names = {f.name for f in dataclasses.fields(cls)}
        known = checked(
            {k: v for k, v in saved.items() if k in names}, cls, "the run's saved settings (run.json)"
        )
        check_resume(known, given, may_change, spell)
        values.update(known)
    values.update(given)
    try:
        return cls(**values)
    except SettingError as e:
        raise Pr1Error(e.describe(spell)) from None
