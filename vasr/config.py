"""Configuration: frozen dataclasses per stage, loaded from YAML, with typed ``key=value`` overrides.

A config is a dataclass whose fields are scalars, tuples or nested config dataclasses. ``load``
reads a YAML file (or the packaged defaults), applies overrides such as ``synth.n=200`` or
``split.ratios=[0.8,0.1,0.1]``, and checks every value against the field's type, naming the key
that is wrong. ``to_dict`` gives what is stored in checkpoints, ONNX metadata and the database.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

C = TypeVar("C")
CONFIG_DIR = Path(__file__).with_name("configs")


def to_dict(config: Any) -> dict[str, Any]:
    """A plain, YAML/JSON-serialisable dict of ``config`` (tuples become lists)."""
    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            value = to_dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def from_dict(cls: type[C], data: dict[str, Any], where: str = "") -> C:
    """Build ``cls`` from ``data``; unknown keys and ill-typed values raise ValueError naming the key."""
    if not isinstance(data, dict):
        raise ValueError(f"{where or cls.__name__}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{where or cls.__name__}: unknown key(s) {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(names))}")
    kwargs = {name: _coerce(hints[name], value, f"{where}{name}") for name, value in data.items()}
    return cls(**kwargs)


def override(config: C, assignments: list[str]) -> C:
    """Apply ``dotted.key=value`` assignments (values parsed as YAML) to a frozen config."""
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        if not sep or not key:
            raise ValueError(f"override {assignment!r}: expected key=value")
        config = _replace_path(config, key.strip().split("."), yaml.safe_load(raw), key.strip())
    return config


def load(cls: type[C], path: str | Path | None = None, overrides: list[str] | None = None) -> C:
    """``cls`` from the YAML file ``path`` (default: the field defaults), then ``overrides``."""
    config = cls()
    if path is not None:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"config file {path}: {exc}") from exc
        config = from_dict(cls, data, where=f"{path}: ")
    return override(config, overrides or [])


def _replace_path(config: Any, keys: list[str], value: Any, full_key: str) -> Any:
    field_types = typing.get_type_hints(type(config))
    head = keys[0]
    if head not in field_types:
        raise ValueError(f"override {full_key}: {type(config).__name__} has no field {head!r}")
    if len(keys) == 1:
        new = _coerce(field_types[head], value, full_key)
    else:
        child = getattr(config, head)
        if not dataclasses.is_dataclass(child):
            raise ValueError(f"override {full_key}: {head!r} is not a section")
        new = _replace_path(child, keys[1:], value, full_key)
    return dataclasses.replace(config, **{head: new})


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where=f"{key}.")
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(option, value, key)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(errors[0] if errors else f"{key}: bad value {value!r}")
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{key}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{key}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ValueError(f"{key}: expected {len(args)} values, got {len(value)}")
        return tuple(_coerce(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise ValueError(f"{key}: expected one of {typing.get_args(tp)}, got {value!r}")
        return value
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp in (int, str, bool) and type(value) is tp:
        return value
    if tp is Path and isinstance(value, (str, Path)):
        return Path(value)
    if tp is dict and isinstance(value, dict):
        return value
    if tp is Any:
        return value
    raise ValueError(f"{key}: expected {getattr(tp, '__name__', tp)}, got {value!r}")
