"""TOML → frozen dataclass loading with strict key and type checks.

Every stage of the project is configured by a frozen dataclass. This module turns a TOML file
(plus ``--set key=value`` overrides) into such a dataclass, rejecting unknown keys and values of
the wrong type with a message that names the file and the dotted key. It imports no torch.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from muse.core.errors import ConfigError

T = TypeVar("T")


def load_config(cls: type[T], path: str | Path, overrides: list[str] | None = None) -> T:
    """Load ``path`` (TOML) into dataclass ``cls``, applying ``key=value`` overrides."""
    raw = apply_overrides(read_toml(path), overrides or [], source=str(path))
    return config_from_dict(cls, raw, str(path))


def read_toml(path: str | Path) -> dict[str, Any]:
    """The parsed TOML of ``path``, unchecked (for a caller that picks the config class from it)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from error


def apply_overrides(raw: dict[str, Any], overrides: list[str], source: str) -> dict[str, Any]:
    """Return a copy of ``raw`` with dotted ``key=value`` overrides applied (values parsed as TOML)."""
    merged = json.loads(json.dumps(raw))
    for override in overrides:
        if "=" not in override:
            raise ConfigError(f"--set {override!r}: expected key=value")
        dotted, text = override.split("=", 1)
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text  # A bare word is taken as a string, as a user typing it would expect.
        node = merged
        *parents, leaf = dotted.strip().split(".")
        for parent in parents:
            node = node.setdefault(parent, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {dotted}: {parent!r} is not a table in {source}")
        node[leaf] = value
    return merged


def config_from_dict(
    cls: type[T], raw: dict[str, Any], source: str = "<dict>", prefix: str = ""
) -> T:
    """Build dataclass ``cls`` from a plain dict, checking keys and types recursively."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: {prefix or 'config'} must be a table, got {type(raw).__name__}"
        )
    hints = typing.get_type_hints(cls)
    fields = {field.name: field for field in dataclasses.fields(cls) if field.init}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(prefix + key for key in unknown)} "
            f"for {cls.__name__}; allowed: {', '.join(sorted(fields))}"
        )
    values = {}
    for name, value in raw.items():
        values[name] = _convert(hints[name], value, source, prefix + name)
    missing = [
        name
        for name, field in fields.items()
        if name not in values
        and field.default is dataclasses.MISSING
        and field.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(
            f"{source}: missing required key(s) {', '.join(prefix + m for m in missing)}"
        )
    try:
        return cls(**values)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{source}: {prefix or cls.__name__}: {error}") from error


def _convert(hint: Any, value: Any, source: str, key: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        if value == "" and type(None) in options and Path in options:
            return None  # TOML has no null: an optional path given as "" means none
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, source, key)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if errors else f"{source}: {key}: invalid value {value!r}")
    if origin is typing.Literal:
        if value not in typing.get_args(hint):
            raise ConfigError(
                f"{source}: {key} must be one of {typing.get_args(hint)}, got {value!r}"
            )
        return value
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{source}: {key} must be a list, got {type(value).__name__}")
        args = typing.get_args(hint)
        item_hint = args[0] if args else Any
        converted = [
            _convert(item_hint, item, source, f"{key}[{i}]") for i, item in enumerate(value)
        ]
        return tuple(converted) if origin is tuple else converted
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {key} must be a table, got {type(value).__name__}")
        _, value_hint = typing.get_args(hint) or (str, Any)
        return {
            name: _convert(value_hint, item, source, f"{key}.{name}")
            for name, item in value.items()
        }
    if hint is Any:
        return value
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return config_from_dict(hint, value, source, prefix=f"{key}.")
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        allowed = [member.value for member in hint]
        if value not in allowed:
            raise ConfigError(f"{source}: {key} must be one of {allowed}, got {value!r}")
        return hint(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(
                f"{source}: {key} must be a number, got {type(value).__name__} {value!r}"
            )
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(
                f"{source}: {key} must be an integer, got {type(value).__name__} {value!r}"
            )
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(
                f"{source}: {key} must be true or false, got {type(value).__name__} {value!r}"
            )
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(
                f"{source}: {key} must be a string, got {type(value).__name__} {value!r}"
            )
        return value
    if hint is Path:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: {key} must be a path string, got {type(value).__name__}")
        return Path(value)
    raise ConfigError(f"{source}: {key}: unsupported config type {hint!r}")


def config_to_dict(config: Any) -> dict[str, Any]:
    """Plain, TOML/JSON-friendly dict of a (nested) config dataclass, for saving beside a run."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {
                field.name: plain(getattr(value, field.name)) for field in dataclasses.fields(value)
            }
        if isinstance(value, enum.Enum):
            return value.value
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, list | tuple):
            return [plain(item) for item in value]
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        return value

    return plain(config)


def dump_toml(data: dict[str, Any]) -> str:
    """Serialise a plain nested dict (as from :func:`config_to_dict`) to TOML text."""
    scalars = {key: value for key, value in data.items() if not isinstance(value, dict)}
    tables = {key: value for key, value in data.items() if isinstance(value, dict)}
    lines = [f"{key} = {_toml_value(value)}" for key, value in scalars.items() if value is not None]

    def emit(table: dict[str, Any], name: str) -> None:
        lines.append("")
        lines.append(f"[{name}]")
        nested = {}
        for key, value in table.items():
            if isinstance(value, dict):
                nested[key] = value
            elif value is not None:
                lines.append(f"{key} = {_toml_value(value)}")
        for key, value in nested.items():
            emit(value, f"{name}.{key}")

    for name, table in tables.items():
        emit(table, name)
    return "\n".join(lines).lstrip("\n") + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise ConfigError(f"cannot write {type(value).__name__} to TOML")


def add_override_argument(parser: Any, example: str) -> None:
    """Add the repeatable ``--set KEY=VALUE`` option (into ``args.overrides``) to an argparse parser."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override one config key, e.g. {example} (repeatable; values are TOML)",
    )
