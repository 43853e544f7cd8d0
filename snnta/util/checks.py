"""Typed validation of plain configuration mappings (no Hydra here).

``build(Dataclass, mapping, prefix)`` checks every key and value against the dataclass fields and
raises a one-line :class:`~snnta.errors.ConfigError` naming the field (``train.epochs: expected an
integer, got 'abc'``); ``check_options(fn, mapping, prefix)`` does the same against a function's
keyword defaults (neuron constructors).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import types
import typing
from typing import Any

from snnta.errors import ConfigError

_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _describe(value: Any) -> str:
    return repr(value) if not isinstance(value, str) else f"'{value}'"


def check_value(value: Any, kind: Any, name: str) -> Any:
    """Check (and lightly coerce: int -> float, list -> tuple) one value against a type."""
    origin = typing.get_origin(kind)
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"{name}: must be finite, got {_describe(value)}")
            return float(value)
    elif kind is str:
        if isinstance(value, str):
            return value
    elif origin is tuple or kind is tuple:
        args = typing.get_args(kind)
        if isinstance(value, (list, tuple)):
            if args and args[-1] is Ellipsis:
                return tuple(check_value(v, args[0], f"{name}[{i}]") for i, v in enumerate(value))
            if args and len(args) != len(value):
                raise ConfigError(f"{name}: expected a list of {len(args)} values, got {_describe(value)}")
            return tuple(check_value(v, a, f"{name}[{i}]") if args else v for i, (v, a) in
                         enumerate(zip(value, args or [None] * len(value))))
        raise ConfigError(f"{name}: expected a list, got {_describe(value)}")
    elif origin is dict or kind is dict:
        if isinstance(value, dict):
            return value
        raise ConfigError(f"{name}: expected a mapping, got {_describe(value)}")
    elif origin is typing.Union or origin is types.UnionType:
        args = typing.get_args(kind)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return check_value(value, a, name)
            except ConfigError:
                pass
        raise ConfigError(f"{name}: unexpected value {_describe(value)}")
    else:
        return value
    raise ConfigError(f"{name}: expected {_NAMES.get(kind, kind)}, got {_describe(value)}")


def check_keys(mapping: dict, valid, label: str, noun: str = "key") -> None:
    """Raise ``<label>: unknown <noun>(s) ...; valid: ...`` for keys of ``mapping`` not in ``valid``."""
    valid = list(valid)
    unknown = sorted(set(mapping) - set(valid))
    if unknown:
        raise ConfigError(f"{label}: unknown {noun}(s) {', '.join(unknown)}; valid: {', '.join(valid)}")


def build(cls: type, mapping: dict, prefix: str, **fixed) -> Any:
    """Instantiate dataclass ``cls`` from ``mapping`` after checking keys and types."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    check_keys(mapping, [k for k in fields if k not in fixed], prefix)
    values = {k: check_value(v, hints[k], f"{prefix}.{k}") for k, v in mapping.items()}
    return cls(**values, **fixed)


def check_options(fn: Any, mapping: dict, prefix: str, skip: tuple[str, ...] = ("self", "size")) -> dict:
    """Check keyword options against ``fn``'s parameters, typed by their default values."""
    params = {n: p for n, p in inspect.signature(fn).parameters.items() if n not in skip}
    check_keys(mapping, params, prefix)
    out = {}
    for k, v in mapping.items():
        default = params[k].default
        if isinstance(default, bool):
            kind: Any = bool
        elif isinstance(default, (int, float)):
            kind = float
        elif isinstance(default, tuple):
            kind = tuple[tuple(float for _ in default)]
        else:
            kind = Any
        out[k] = check_value(v, kind, f"{prefix}.{k}")
    return out


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)
