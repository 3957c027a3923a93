"""A registry of model variants in the spirit of timm: names as data, not if-chains.

    register(name, build, config, source, kind=, space=)   add a variant (a plugin's too)
    create(name, n_rows, n_cols, **overrides)  build (module, config); None overrides ignored
    get(name) / config(name, **overrides)      look up a variant / its resolved config
    list(pattern="*", kind=None)               names matching fnmatch pattern(s), sorted

`build(n_rows, n_cols, config)` makes the module for a training matrix of that shape in the
variant's own view (`ModelConfig.view`: items x users for an item-based model).
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import fnmatch
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .base import ModelConfig, Recommender, Side, Space

KINDS = ("autoencoder", "reference")
PRECISIONS = ("fp32", "bf16", "tf32")  # as bench.engines.precision (models/ imports no bench)


@dataclass(frozen=True)
class Variant:
    name: str
    build: Callable[[int, int, Any], Recommender]
    config: ModelConfig
    source: str
    kind: str = "autoencoder"   # autoencoder | reference (a baseline, marked in every table)
    space: Space = Space()      # what `bench tune` searches, and why
    plugin: str | None = None   # the plugin that registered it (`models.plugins`); None: built in
    datasets: dict = dataclasses.field(default_factory=dict)  # dataset -> default overrides
    precision: str = "fp32"     # what `--precision auto` runs it in where the device has it

    def make(self, n_rows: int, n_cols: int, cfg: ModelConfig,
             side: Side | None = None) -> Recommender:
        """`build`, then the side information the config declares handed over
        (`Recommender.attach`); without `side` (parameter counts, timing on synthetic
        data), a `Side()` of no features."""
        model = self.build(n_rows, n_cols, cfg)
        if cfg.features:
            model.attach(side if side is not None else Side())
        return model


_REGISTRY: dict[str, Variant] = {}
_ORIGIN: builtins.list[str | None] = [None]  # the plugin being loaded, if any


@contextlib.contextmanager
def registering_for(plugin: str):
    """Variants registered inside this block come from `plugin`; the block's value is the
    list of their names, sorted, filled when it ends. If the block raises, they are dropped
    again, so a failed plugin leaves the registry as it found it."""
    before = set(_REGISTRY)
    added: builtins.list[str] = []
    _ORIGIN.append(plugin)
    try:
        yield added
    except BaseException:
        for name in set(_REGISTRY) - before:
            del _REGISTRY[name]
        raise
    finally:
        _ORIGIN.pop()
    added.extend(sorted(set(_REGISTRY) - before))


def register(name: str, build: Callable[[int, int, Any], Recommender], config: ModelConfig,
             source: str, kind: str = "autoencoder", space: Space | None = None,
             datasets: dict[str, dict[str, Any]] | None = None,
             precision: str = "fp32") -> Variant:
    """Add a variant. `datasets`: a default recipe's overrides on a named dataset, where the
    variant's source published one recipe per dataset (applied to that dataset's default
    cells; tuning starts from them). `precision`: what its cells run in under `--precision
    auto` where the device multiplies that precision natively (fp32 elsewhere); a low one
    only where a parity study found no loss (results/precision/parity.md)."""
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} unknown; choose from {', '.join(KINDS)}")
    if precision not in PRECISIONS:
        raise ValueError(f"{name}: precision {precision!r} unknown; choose from "
                         f"{', '.join(PRECISIONS)}")
    if precision != "fp32" and "loss" not in config.low_precision:
        raise ValueError(f"{name}: precision {precision!r} for a family whose loss keeps "
                         f"float32 (low_precision {config.low_precision})")
    config.validate()
    space = space or Space()
    for key in space.params:  # every searched key must be a valid override
        head, _, tail = key.partition(".")
        section = getattr(config, head, None) if tail else None
        if head not in {f.name for f in dataclasses.fields(config)} or (tail and not (
                dataclasses.is_dataclass(section)
                and tail in {f.name for f in dataclasses.fields(section)})):
            raise KeyError(f"{name}: search-space key {key!r} is not an option of its config")
    for values in (datasets or {}).values():
        override(config, **values)  # each dataset's default must be a valid config
    variant = Variant(name, build, config, source, kind, space, _ORIGIN[-1], dict(datasets or {}),
                      precision)
    _REGISTRY[name] = variant
    return variant


def get(name: str) -> Variant:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(list())}") from None


def list(pattern: str | builtins.list[str] = "*",  # noqa: A001
         kind: str | None = None) -> builtins.list[str]:
    patterns = [pattern] if isinstance(pattern, str) else pattern
    return sorted(n for n, v in _REGISTRY.items()
                  if any(fnmatch.fnmatchcase(n, p) for p in patterns)
                  and kind in (None, v.kind))


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
    out = dataclasses.replace(cfg, **flat)
    if hasattr(out, "validate"):
        out.validate()
    return out


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


def config(name: str, dataset: str | None = None, **overrides: Any) -> Any:
    """The variant's config: its default, then its default for `dataset` if it has one, then
    `overrides`."""
    variant = get(name)
    return override(variant.config, **{**variant.datasets.get(dataset, {}), **overrides})


def create(name: str, n_rows: int, n_cols: int,
           **overrides: Any) -> tuple[Recommender, ModelConfig]:
    cfg = config(name, **overrides)
    return get(name).make(n_rows, n_cols, cfg), cfg


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
