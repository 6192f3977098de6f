"""Settings files for `--config`: flat TOML `key = value` lines named like the fields of a settings dataclass
(`pr1.rl.config.RLConfig`, `pr1.sft.config.Pr1SFTConfig`).

Several files layer left to right (a later file overrides an earlier one), so a recipe is a stage preset plus
a hardware profile. Keys may be written with `-` or `_`. Each problem is a one-line Pr1Error that names the
file and the key: a missing file, invalid TOML, a table, an unknown key, a value of the wrong type.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from pr1.errors import Pr1Error

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_TYPES = {
    "str": (str, "a string"),
    "int": (int, "an integer"),
    "float": (float, "a number"),
    "bool": (bool, "true or false"),
}


def checked(values: Mapping[str, Any], cls: type, where: str) -> dict[str, Any]:
    """`values` as settings of `cls`: keys with `-` read as `_`, each known to `cls` and of its field's type
    (an integer is accepted for a float). `where` (a file, "command line") starts every error message."""
    annotations = {f.name: str(f.type) for f in fields(cls)}
    out = {}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in annotations:
            raise Pr1Error(f"{where}: unknown setting {key!r} (known: {', '.join(annotations)})")
        out[name] = _typed(name, value, annotations[name], where)
    return out


def _typed(name: str, value: Any, annotation: str, where: str) -> Any:
    """`value` checked against an annotation such as `int`, `float | None` or `str | None`."""
    if value is None and "None" in annotation:
        return None
    expected, description = _TYPES[annotation.split("|")[0].strip()]
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise Pr1Error(f"{where}: {name} = {value!r}: expected {description}")
    return value


def load(path: str | Path, cls: type) -> dict[str, Any]:
    """The settings of one file, checked against the fields of `cls`."""
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
        values.update(load(path, cls))
    return values
