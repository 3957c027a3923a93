"""A registry of model variants in the spirit of timm: names as data, not if-chains.

    register(name, build, config, source)   add a variant
    create(name, n_items, **overrides)      build (module, config); None overrides are ignored
    get(name) / config(name, **overrides)   look up a variant / its resolved config
    list(pattern="*")                       names matching fnmatch pattern(s), sorted
"""

from __future__ import annotations

import builtins
import dataclasses
import fnmatch
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn


@dataclass(frozen=True)
class Variant:
    name: str
    build: Callable[[int, Any], nn.Module]
    config: Any
    source: str


_REGISTRY: dict[str, Variant] = {}


def register(name: str, build: Callable[[int, Any], nn.Module], config: Any,
             source: str) -> Variant:
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    variant = Variant(name, build, config, source)
    _REGISTRY[name] = variant
    return variant


def get(name: str) -> Variant:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(list())}") from None


def list(pattern: str | builtins.list[str] = "*") -> builtins.list[str]:  # noqa: A001
    patterns = [pattern] if isinstance(pattern, str) else pattern
    return sorted(n for n in _REGISTRY if any(fnmatch.fnmatchcase(n, p) for p in patterns))


def override(cfg: Any, **overrides: Any) -> Any:
    """`dataclasses.replace` with checks: unknown keys and wrong types are errors, None is skipped.

    A key may be `field` or `section.field` for a nested dataclass field (`batched.lr=1e-3`).
    """
    flat: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        head, _, tail = key.partition(".")
        if tail:
            nested.setdefault(head, {})[tail] = value
        else:
            flat[key] = value
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    hints = typing.get_type_hints(type(cfg))
    for key, value in flat.items():
        if key not in fields:
            raise KeyError(f"{type(cfg).__name__} has no option {key!r}; "
                           f"valid: {', '.join(fields)}")
        flat[key] = _coerce(key, value, hints[key])
    for head, sub in nested.items():
        if head not in fields or not dataclasses.is_dataclass(getattr(cfg, head)):
            raise KeyError(f"{type(cfg).__name__} has no section {head!r}")
        flat[head] = override(getattr(cfg, head), **sub)
    return dataclasses.replace(cfg, **flat)


def _coerce(key: str, value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if origin is tuple and isinstance(value, (builtins.list, tuple)):
        return tuple(value)
    check = origin or hint
    if isinstance(check, type) and not isinstance(value, check) or (
            check is int and isinstance(value, bool)):
        raise TypeError(f"option {key!r} must be {getattr(hint, '__name__', hint)}, "
                        f"got {value!r}")
    return value


def config(name: str, **overrides: Any) -> Any:
    return override(get(name).config, **overrides)


def create(name: str, n_items: int, **overrides: Any) -> tuple[nn.Module, Any]:
    cfg = config(name, **overrides)
    return get(name).build(n_items, cfg), cfg


def config_from_dict(name: str, values: dict[str, Any]) -> Any:
    """Rebuild a variant's config from its recorded `dataclasses.asdict` form.

    A field the record lacks (it predates the field) takes the config class's default, which
    by convention keeps the behaviour from before the field existed, not the variant's
    current setting: a record is read as what was run, not as what would run today."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return override(type(get(name).config)(), **flat)
