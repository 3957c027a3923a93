"""Experiment files: `run --config FILE.toml` / `tune --config FILE.toml` (TOML, read with
the standard library's `tomllib`).

Top-level keys are the long names of the command's options (`models`, `datasets`, `split`,
`seeds`, `epochs`, `devices`, `executor`, `out`, `plugins`, `data-dir`, ...; `-` or `_`
alike), with the values the option takes; options given on the command line override the
file. Two kinds of table:

    models = ["ease", {name = "mult-vae", "batched.lr" = 1e-3}]   # patterns, or a variant
                                                                   # with config overrides
    datasets = ["ml-100k", "shop"]

    [dataset.shop]                  # a user's file (`datasets.user.FileSpec`'s fields)
    path = "data/shop.csv"
    user = "customer"
    item = "product"
    rating = "stars"
    scale = [1, 5]                  # or "implicit"

Every value is checked by the option's own parser, and every error names the file, the line
and the key, before any work (exit 2, as a bad command-line option does).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import tomllib
import typing
from pathlib import Path
from typing import Any

SKIP = {"help", "config", "dry_run", "command"}  # options an experiment file does not set
ALIASES = {"plugins": "plugin", "model": "models", "dataset_names": "datasets"}


class ExperimentError(ValueError):
    """A bad experiment file: the message names the file, line and key."""


def line_of(text: str, key: str, table: str | None = None) -> int:
    """The line where `key` is set (in `[table]` when given), for messages; 1 if not found."""
    lines = text.splitlines()
    inside = table is None
    pattern = re.compile(rf"""^\s*(["']?){re.escape(key)}\1\s*=""")
    header = re.compile(r"^\s*\[")
    for no, line in enumerate(lines, 1):
        if header.match(line):
            name = line.strip().strip("[]").strip()
            inside = table is not None and name == table
            if table is None:
                break
            continue
        if inside and pattern.match(line):
            return no
    return 1


def header_line(text: str, table: str) -> int:
    """The line of the `[table]` header; 1 if not found."""
    for no, line in enumerate(text.splitlines(), 1):
        if line.strip().startswith("[") and line.strip().strip("[]").strip() == table:
            return no
    return 1


@dataclasses.dataclass
class Experiment:
    """What a file sets: option values (argparse `dest` -> value), per-model overrides and
    user datasets."""

    path: Path
    text: str
    values: dict[str, Any]
    overrides: dict[str, dict[str, Any]]  # variant name -> config overrides
    datasets: list  # datasets.user.FileSpec

    def check_overrides(self) -> None:
        """Each model table names a registered variant, and its overrides are options of its
        config (after plugins are loaded)."""
        from aebench import models

        for variant, values in self.overrides.items():
            where = f"{self.path}:{line_of(self.text, 'models')}: models: {variant}"
            try:
                models.config(variant, **values)
            except (KeyError, TypeError, ValueError) as exc:
                message = exc.args[0] if exc.args else exc
                raise ExperimentError(f"{where}: {message}") from None


def _option_actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    out = {}
    for action in parser._actions:
        longs = [o for o in action.option_strings if o.startswith("--")]
        if longs and action.dest not in SKIP:
            out[longs[0][2:].replace("-", "_")] = action
    return out


def _convert(action: argparse.Action, value: Any, where: str) -> Any:
    """A TOML value as the option's parser takes it (each element through its `type`)."""
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        if not isinstance(value, bool):
            raise ExperimentError(f"{where}: must be true or false, got {value!r}")
        return value
    many = action.nargs in ("+", "*") or isinstance(action, argparse._AppendAction)
    items = value if isinstance(value, list) else [value]
    if not many and isinstance(value, list):
        raise ExperimentError(f"{where}: takes one value, got a list")
    if many and not items:
        raise ExperimentError(f"{where}: an empty list")
    out = []
    for item in items:
        if isinstance(item, (dict, list)):
            raise ExperimentError(f"{where}: {item!r} is not a single value")
        if isinstance(item, bool):
            raise ExperimentError(f"{where}: {item!r} is not a valid value")
        text = str(item)
        try:
            v = action.type(text) if action.type else text
        except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
            raise ExperimentError(f"{where}: {exc}") from None
        if action.choices is not None and v not in action.choices:
            raise ExperimentError(f"{where}: {v!r} is not one of "
                                  f"{', '.join(map(str, action.choices))}")
        out.append(v)
    return out if many else out[0]


def _file_spec(name: str, table: dict, text: str, path: Path):
    from aebench.datasets.user import FileSpec

    fields = {f.name: f for f in dataclasses.fields(FileSpec)}
    hints = typing.get_type_hints(FileSpec)
    values: dict[str, Any] = {"name": name}
    for key, value in table.items():
        field = key.replace("-", "_")
        where = f"{path}:{line_of(text, key, f'dataset.{name}')}: dataset.{name}.{key}"
        if field not in fields or field == "name":
            raise ExperimentError(f"{where}: unknown key; valid: "
                                  f"{', '.join(k for k in fields if k != 'name')}")
        hint = hints[field]
        if field == "scale":
            ok = value == "implicit" or (isinstance(value, list) and len(value) == 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value))
            if not ok:
                raise ExperimentError(f"{where}: give [low, high] or \"implicit\", got {value!r}")
            value = value if value == "implicit" else (float(value[0]), float(value[1]))
        elif typing.get_origin(hint) is tuple:  # columns: a list of names or positions
            if not isinstance(value, list) or not all(
                    isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
                raise ExperimentError(f"{where}: give a list of column names or positions, "
                                      f"got {value!r}")
            value = tuple(value)
        elif hint is bool or hint is str or hint == (str | None):
            kind = bool if hint is bool else str
            if not isinstance(value, kind):
                raise ExperimentError(f"{where}: must be {kind.__name__}, got {value!r}")
        else:  # a column: a header name or a 0-based position
            if isinstance(value, bool) or not isinstance(value, (str, int)) or (
                    isinstance(value, int) and value < 0):
                raise ExperimentError(f"{where}: give a column name or a position >= 0, "
                                      f"got {value!r}")
        if field in ("path", "items", "users") and not Path(value).is_absolute():
            value = str((path.parent / value).resolve())
        values[field] = value
    if "path" not in values:
        raise ExperimentError(f"{path}:{header_line(text, f'dataset.{name}')}: "
                              f"dataset.{name}: give its path")
    spec = FileSpec(**values)
    try:
        spec.check()
    except Exception as exc:
        raise ExperimentError(f"{path}:{header_line(text, f'dataset.{name}')}: {exc}") from None
    return spec


def load(path: str | Path, parser: argparse.ArgumentParser) -> Experiment:
    """Read and check an experiment file against the options of `parser` (a subcommand's)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ExperimentError(f"{path}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ExperimentError(f"{path}: {exc}") from None
    actions = _option_actions(parser)
    values: dict[str, Any] = {}
    overrides: dict[str, dict[str, Any]] = {}
    specs = []
    for key, value in data.items():
        where = f"{path}:{line_of(text, key)}: {key}"
        if key == "dataset":
            if not isinstance(value, dict) or not all(isinstance(v, dict)
                                                      for v in value.values()):
                raise ExperimentError(f"{where}: give one [dataset.NAME] table per dataset")
            specs += [_file_spec(name, table, text, path) for name, table in value.items()]
            continue
        name = key.replace("-", "_")
        name = ALIASES.get(name, name) if name not in actions else name
        if name not in actions:
            raise ExperimentError(f"{where}: unknown key; valid: "
                                  f"{', '.join(sorted(k.replace('_', '-') for k in actions))}, "
                                  "dataset")
        if name == "models" and isinstance(value, list):
            patterns = []
            for item in value:
                if isinstance(item, dict):
                    item = dict(item)
                    variant = item.pop("name", None)
                    if not isinstance(variant, str):
                        raise ExperimentError(f"{where}: a model table needs name = "
                                              "\"VARIANT\"")
                    overrides[variant] = item
                    patterns.append(variant)
                else:
                    patterns.append(item)
            value = patterns
        action = actions[name]
        values[action.dest] = _convert(action, value, where)
    return Experiment(path, text, values, overrides, specs)


def given(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The `dest`s the command line `argv` (a subcommand's own) set explicitly."""
    saved = [(a, a.default) for a in parser._actions]
    try:
        for action, _ in saved:
            action.default = argparse.SUPPRESS
        return set(vars(parser.parse_known_args(argv)[0]))
    finally:
        for action, default in saved:
            action.default = default


def merge(exp: Experiment, args: argparse.Namespace, explicit: set[str]) -> None:
    """Fill `args` from the file, except where the command line set an option."""
    for dest, value in exp.values.items():
        if dest not in explicit:
            setattr(args, dest, value)
