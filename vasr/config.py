"""Configuration: frozen dataclasses per stage, loaded from YAML, with typed ``key=value`` overrides.

A config is a dataclass whose fields are scalars, tuples or nested config dataclasses. ``load``
reads a YAML file or a packaged preset (``tiny``, ``base``, ``weak-hw``: ``configs/*.yaml`` beside this
module), applies overrides such as ``synth.n=200`` or ``split.ratios=[0.8,0.1,0.1]``, and checks every
value against the field's type, naming the key that is wrong (with a "did you mean" for a misspelt
one). ``to_dict`` gives what is stored in checkpoints, ONNX metadata and the database; ``to_yaml``
what ``--print-config`` prints.
"""
from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

C = TypeVar("C")
CONFIG_DIR = Path(__file__).with_name("configs")
# YAML 1.1 (PyYAML) reads 5e-4 and 1E-3 as strings; a float field takes any decimal literal.
_FLOAT = re.compile(r"[-+]?(?:\d[\d_]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def presets() -> list[str]:
    """The names ``load`` accepts in place of a path: the packaged ``configs/*.yaml``."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def resolve(path: str | Path) -> Path:
    """The YAML file that ``path`` names: a preset (a bare name such as ``tiny``) or a path.

    A bare name (no folder, no suffix) is a preset first; write ``./tiny`` for a file called ``tiny``.
    """
    name = str(path)
    if "/" in name or "\\" in name or Path(name).suffix:
        return Path(path)
    if name in presets():
        return CONFIG_DIR / f"{name}.yaml"
    if Path(name).is_file():
        return Path(name)
    raise ValueError(f"unknown config preset {name!r}{_did_you_mean(name, presets())}; presets: "
                     f"{', '.join(presets())} (or the path of a YAML file)")


def field_names(cls: type) -> list[str]:
    """Every key of ``cls``, dotted for nested sections (``optim``, ``optim.lr``, ...)."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        out.append(f.name)
        if dataclasses.is_dataclass(hints[f.name]):
            out += [f"{f.name}.{sub}" for sub in field_names(hints[f.name])]
    return out


def to_dict(config: Any) -> dict[str, Any]:
    """A plain, YAML/JSON-serialisable dict of ``config`` (tuples become lists, paths strings)."""
    return {f.name: _plain(getattr(config, f.name)) for f in dataclasses.fields(config)}


def to_yaml(config: Any) -> str:
    """``to_dict(config)`` as YAML, in field order; ``from_dict`` of it gives ``config`` back."""
    return yaml.safe_dump(to_dict(config), sort_keys=False, allow_unicode=True)


def from_dict(cls: type[C], data: dict[str, Any], where: str = "") -> C:
    """Build ``cls`` from ``data``; unknown keys and ill-typed values raise ValueError naming the key.

    ``where`` prefixes every message (e.g. the file name, ``"tiny.yaml: "``).
    """
    return _from_dict(cls, data, where, "", cls)


def override(config: C, assignments: list[str]) -> C:
    """Apply ``dotted.key=value`` assignments (values parsed as YAML) to a frozen config; the config's
    own checks run once, on the result (``window_s=4 overlap_s=1`` may pass where either alone fails)."""
    data = to_dict(config)
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"override {assignment!r}: expected key=value")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ValueError(f"override {key}: {_one_line(exc)}") from exc
        keys = key.split(".")
        new = _coerced(config, keys, value, key, type(config))
        node = data
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = _plain(new)
    return from_dict(type(config), data) if assignments else config


def load(cls: type[C], path: str | Path | None = None, overrides: list[str] | None = None) -> C:
    """``cls`` from the YAML file or preset ``path`` (default: the field defaults), then ``overrides``."""
    config = cls()
    if path is not None:
        path = resolve(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"config file {path}: {_one_line(exc)}") from exc
        config = from_dict(cls, data, where=f"{path}: ")
    return override(config, overrides or [])


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _did_you_mean(key: str, candidates: list[str]) -> str:
    same_depth = [c for c in candidates if c.count(".") == key.count(".")]
    close = difflib.get_close_matches(key, same_depth, n=1) or difflib.get_close_matches(key, candidates, n=1)
    if not close:  # a key given at the wrong level: lr for optim.lr
        leaf = key.rsplit(".", 1)[-1]
        close = [c for c in candidates if c.rsplit(".", 1)[-1] == leaf][:1]
    return f" (did you mean {close[0]}?)" if close else ""


def _from_dict(cls: type[C], data: Any, where: str, prefix: str, root: type) -> C:
    if not isinstance(data, dict):
        raise ValueError(f"{where}{prefix.rstrip('.') or cls.__name__}: expected a mapping, got "
                         f"{type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = [str(k) for k in data if k not in names]
    if unknown:
        candidates = field_names(root)
        hints_text = [f"{prefix}{k}{_did_you_mean(prefix + k, candidates)}" for k in unknown]
        known = "" if any("did you mean" in h for h in hints_text) else f"; known: {', '.join(sorted(names))}"
        raise ValueError(f"{where}unknown key(s) {', '.join(hints_text)}{known}")
    kwargs = {name: _coerce(hints[name], value, f"{prefix}{name}", where, root) for name, value in data.items()}
    return cls(**kwargs)


def _coerced(config: Any, keys: list[str], value: Any, full_key: str, root: type) -> Any:
    """``value`` as the type of the field that ``keys`` name in ``config``."""
    field_types = typing.get_type_hints(type(config))
    names = {f.name for f in dataclasses.fields(config)}
    head = keys[0]
    if head not in names:
        raise ValueError(f"override {full_key}: {type(config).__name__} has no field {head!r}"
                         f"{_did_you_mean(full_key, field_names(root))}")
    if len(keys) == 1:
        return _coerce(field_types[head], value, full_key, "override ", root)
    child = getattr(config, head)
    if not dataclasses.is_dataclass(child):
        raise ValueError(f"override {full_key}: {head!r} is not a section")
    return _coerced(child, keys[1:], value, full_key, root)


def _coerce(tp: Any, value: Any, key: str, where: str = "", root: type | None = None) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _from_dict(tp, value, where, f"{key}.", root or tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(option, value, key, where, root)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(errors[0] if errors else f"{where}{key}: bad value {value!r}")
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}{key}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{key}[{i}]", where, root) for i, v in enumerate(value))
        if len(args) != len(value):
            raise ValueError(f"{where}{key}: expected {len(args)} values, got {len(value)}")
        return tuple(_coerce(a, v, f"{key}[{i}]", where, root) for i, (a, v) in enumerate(zip(args, value)))
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise ValueError(f"{where}{key}: expected one of {typing.get_args(tp)}, got {value!r}")
        return value
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
        return float(value)
    if tp in (int, str, bool) and type(value) is tp:
        return value
    if tp is Path and isinstance(value, (str, Path)):
        return Path(value)
    if tp is dict and isinstance(value, dict):
        return value
    if tp is Any:
        return value
    raise ValueError(f"{where}{key}: expected {getattr(tp, '__name__', tp)}, got {value!r}")
