"""Result records: one JSON line per finished run, with everything needed to trace and re-run it."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parent.parent


def git_commit() -> str | None:
    """HEAD of the project checkout, with `-dirty` when tracked files other than the result
    folders (`results/`, which a run regenerates) have changed."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                ".", ":(exclude)results"],
                               cwd=ROOT, capture_output=True, text=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_name()


def environment(device: torch.device) -> dict:
    env = {"git_commit": git_commit(), "python": platform.python_version(),
           "torch": torch.__version__, "numpy": np.__version__, "pandas": pd.__version__,
           "platform": platform.platform(), "device": str(device),
           "device_name": device_name(device), "cpu": cpu_name(),
           "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count()}
    if device.type == "cuda":
        env["cuda"] = torch.version.cuda
    from aebench.models import plugins

    env["plugins"] = [{"name": p.name, "module": p.module, "distribution": p.distribution,
                       "version": p.version} for p in plugins.loaded()]
    return env


def recipe_label(recipe: str, refit: bool = False, precision: str = "fp32") -> str:
    """What tells apart cells of one variant and split beyond the seed: the recipe
    (`default`, `tuned`, `custom`), `+refit` when refitted, `@bf16` / `@tf32` in a low
    precision. Resume keys, weight names and tables all read it."""
    return recipe + ("+refit" if refit else "") + precision_tag(precision)


def precision_tag(precision: str) -> str:
    """`@bf16` / `@tf32` for a low precision, nothing for fp32: what a label, a table row and
    a protocol add to say a cell ran low."""
    return "" if precision == "fp32" else f"@{precision}"


SCHEMA = 2
"""The record layout this code writes. 1: every record before the field existed (read with
the defaults `Record.from_json` fills in); 2: the typed `Record`."""

OMIT = {"omit_none": True}  # a field written only when it holds a value


def _f(default=None, omit: bool = False, **kw):
    """A dataclass field with `default`; `omit`: left out of the JSON while None."""
    meta = OMIT if omit else {}
    if callable(default) and not isinstance(default, (str, int, float)):
        return field(default_factory=default, metadata=meta, **kw)
    return field(default=default, metadata=meta, **kw)


def _typed(cls, data: Any, where: str):
    """`cls` from a JSON object; an unknown key is an error naming it (`where.key`)."""
    if data is None or isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown field {where}.{unknown[0]!r} "
                         f"(known: {', '.join(sorted(names))})")
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in data
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ValueError(f"missing field {where}.{missing[0]!r}")
    return cls(**data)


def _plain(obj) -> dict:
    """A record part as the JSON object it is written as (fields marked `omit` left out while
    None)."""
    out = {}
    for f in dataclasses.fields(obj):
        if f.metadata.get("internal"):
            continue
        value = getattr(obj, f.name)
        if value is None and f.metadata.get("omit_none"):
            continue
        if dataclasses.is_dataclass(value):
            value = _plain(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return _clean(out)


@dataclass(frozen=True)
class Recipe:
    """Where a cell's settings came from: `default`, `tuned` (with the study) or `custom`
    (with the overrides an experiment file or the command line applied)."""

    name: str = "default"
    study: str | None = None
    overrides: dict = _f(dict)


@dataclass(frozen=True)
class SplitInfo:
    """The split a cell ran on (`datasets.Split.describe`)."""

    dataset: str
    name: str
    seed: int
    fingerprint: str
    n_users: int
    n_items: int
    n_train: int
    n_test: int
    n_valid: int | None = _f(omit=True)
    n_fit_users: int | None = _f(omit=True)
    item_features: int | None = _f(omit=True)  # encoded widths of the side information
    user_features: int | None = _f(omit=True)


@dataclass(frozen=True)
class Validation:
    """The validation carving a cell selected its epochs on, and what it read there."""

    fraction: float | None
    fingerprint: str
    n_valid: int
    metric: str
    higher_is_better: bool
    best: float | None
    best_epoch: int | None
    epochs_run: int
    stopped_early: bool
    eval_every: int
    patience: int


@dataclass(frozen=True)
class Variant:
    """What kind of variant ran: its family's kind, the feedback and rows it reads, whether it
    predicts ratings."""

    kind: str
    rates: bool
    feedback: str | None = None
    rows: str | None = None


@dataclass(frozen=True)
class Timings:
    """Where a cell's time and memory went (seconds, MB). Fields older records lack are None."""

    epoch_s_median: float
    fit_s: float
    eval_s: float
    ratings_per_s: float | None = None
    epochs_run: int | None = None
    setup_s: float | None = None
    valid_reads: int | None = None
    valid_s: float | None = None
    cell_s: float | None = None
    peak_mem_mb: float | None = None
    peak_mem_kind: str | None = None
    peak_rss_mb: float | None = None
    lbfgs_iterations: int | None = _f(omit=True)
    lbfgs_evaluations: int | None = _f(omit=True)


@dataclass(frozen=True)
class Precision:
    """The precision each part of a cell ran in (`precision.effective`)."""

    loss: str = "fp32"
    score: str = "fp32"


@dataclass(frozen=True)
class Refit:
    """A cell trained again on all training ratings for the epochs its selection chose."""

    epochs: int
    fit_s: float
    n_train: int
    selection_fit_s: float
    selected_in: str | None = None


@dataclass(frozen=True)
class Record:
    """One finished (or failed) cell: what ran, on what, how it was chosen, what it scored and
    what it cost. `from_json` reads every layout written so far (older records get their
    defaults here and nowhere else); `to_json` writes the current one (`SCHEMA`)."""

    model: str
    dataset: str
    mode: str
    device: str
    seed: int
    status: str
    started: str
    run_config: dict = _f(dict)
    recipe: Recipe = _f(Recipe)
    split: SplitInfo | None = _f(omit=True)
    metrics: dict = _f(dict)
    timings: Timings | None = _f(omit=True)
    validation: Validation | None = None
    variant: Variant | None = _f(omit=True)
    config: dict | None = _f(omit=True)
    trainer: str | None = _f(omit=True)
    epochs: int | None = _f(omit=True)
    history: tuple = ()
    env: dict = _f(dict)
    precision: Precision = _f(Precision)
    plugin: dict | None = None
    refit: Refit | None = _f(omit=True)
    weights: str | None = _f(omit=True)
    per_user: str | None = _f(omit=True)
    error: str | None = _f(omit=True)
    traceback: str | None = _f(omit=True)
    schema: int = SCHEMA
    folder: Path | None = field(default=None, compare=False, repr=False,
                                metadata={"internal": True})

    @classmethod
    def from_json(cls, data: dict, folder: Path | None = None) -> Record:
        """A record from its JSON object, with the defaults of the layouts before it: a
        missing recipe is `default`, a missing precision fp32 throughout, a missing
        variant's kind is its registered family's and it rates when it has an RMSE."""
        data = dict(data)
        schema = data.setdefault("schema", 1)
        if not isinstance(schema, int) or schema > SCHEMA:
            raise ValueError(f"schema {schema!r}: written by a newer aebench (this one reads "
                             f"up to {SCHEMA}); upgrade aebench to read it")
        names = {f.name for f in dataclasses.fields(cls)} - {"folder"}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r}")
        for name in ("model", "dataset", "device", "seed"):
            if name not in data:
                raise ValueError(f"missing field {name!r}")
        data.setdefault("status", "ok")
        data.setdefault("started", "")
        data.setdefault("mode", "batched")
        metrics = data.get("metrics") or {}
        if data.get("variant") is None and data["status"] == "ok":
            data["variant"] = {"kind": _registered_kind(data["model"]),
                               "rates": "rmse" in metrics}
        data["recipe"] = _typed(Recipe, data.get("recipe") or {}, "recipe")
        for name, part in (("split", SplitInfo), ("validation", Validation),
                           ("variant", Variant), ("timings", Timings), ("refit", Refit)):
            data[name] = _typed(part, data.get(name), name)
        data["precision"] = _typed(Precision, data.get("precision") or {}, "precision")
        data["history"] = tuple(data.get("history") or ())
        return cls(**data, folder=None if folder is None else Path(folder))

    def to_json(self) -> dict:
        """The JSON object `append` writes (the current layout)."""
        return _plain(self)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def split_name(self) -> str | None:
        return self.split.name if self.split else self.run_config.get("split")

    @property
    def cell_precision(self) -> str:
        """The precision the cell was run in (fp32 for records older than the option)."""
        return self.run_config.get("precision", "fp32")

    @property
    def refitted(self) -> bool:
        """Whether the cell was trained again on all training ratings (`run --refit`)."""
        return bool(self.run_config.get("refit"))

    @property
    def label(self) -> str:
        """`recipe_label` of the cell."""
        return recipe_label(self.recipe.name, self.refitted, self.cell_precision)

    @property
    def rates(self) -> bool:
        """Whether the variant predicts ratings."""
        return self.variant.rates if self.variant else "rmse" in self.metrics

    @property
    def kind(self) -> str:
        return self.variant.kind if self.variant else _registered_kind(self.model)

    def per_user_path(self, run_dir: Path | str = ".") -> Path | None:
        """The cell's per-user values file, where the record names one and it exists:
        relative to the folder the record was read from, else to `run_dir`."""
        if not self.per_user:
            return None
        path = Path(self.folder or run_dir) / self.per_user
        return path if path.is_file() else None


def _registered_kind(model: str) -> str:
    """A variant's registered kind (`autoencoder` for one no longer registered)."""
    try:
        from aebench import models

        return models.get(model).kind
    except KeyError:
        return "autoencoder"



def _clean(value):
    """JSON has no NaN/inf: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value


def append(path: Path, record: Record | dict) -> None:
    """Append one record and flush it to disk, so an interrupted grid keeps finished runs. A
    last line cut short by a killed writer (no newline) is a lost record: it is dropped
    first, so that it cannot run into this one. The check and the append hold an exclusive
    lock on the file, so that two grids writing one folder (the two halves of a study, run
    side by side) never take each other's record in flight for a cut one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = record.to_json() if isinstance(record, Record) else _clean(record)
    line = (json.dumps(data, sort_keys=True) + "\n").encode("utf-8")
    with open(path, "a+b") as fh:
        _lock(fh)
        fh.seek(0, 2)
        if fh.tell():
            fh.seek(-1, 2)
            if fh.read(1) != b"\n":  # rare: only then read the file to find the cut
                fh.seek(0)
                fh.truncate(fh.read().rfind(b"\n") + 1)
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def _lock(fh) -> None:
    """An exclusive lock on an open file until it is closed (POSIX; elsewhere none)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return
    fcntl.flock(fh.fileno(), fcntl.LOCK_EX)


def load(path: Path) -> list[dict]:
    """The JSON objects of a runs.jsonl file (or of `runs.jsonl` inside a folder), as
    written: what `read` types and what tests of the file format look at. A last line
    without its newline that does not parse is a record a killed run was writing: it is
    skipped. Any other malformed line is an error that names the file and line."""
    return [data for _, data in _numbered(Path(path))]


def _numbered(path: Path) -> list[tuple[int, dict]]:
    """(line number, JSON object) of each record line of `load`'s file."""
    if path.is_dir():
        path = path / "runs.jsonl"
    out = []
    with open(path, encoding="utf-8") as fh:
        lines = fh.readlines()
    for line_no, line in enumerate(lines, 1):
        if line.strip():
            try:
                out.append((line_no, json.loads(line)))
            except json.JSONDecodeError as exc:
                if line_no == len(lines) and not line.endswith("\n"):
                    continue
                raise ValueError(f"{path}:{line_no}: not a JSON record ({exc})") from exc
    return out


def read(path: Path) -> list[Record]:
    """The typed records of a runs.jsonl file (or of a folder's): what reports, budgets,
    comparisons and refits read. Each remembers its folder (per-user files are relative to
    it). A line that is not a record is an error naming the file, line and field."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    lines = _numbered(path)
    out = []
    for line_no, data in lines:
        try:
            out.append(Record.from_json(data, folder=folder))
        except (TypeError, ValueError, KeyError) as exc:
            file = path / "runs.jsonl" if path.is_dir() else path
            raise ValueError(f"{file}:{line_no}: {exc}") from exc
    return out


GRIDS = "grids.jsonl"


def append_grid(run_dir: Path, grid: dict) -> None:
    """One line per `run` invocation into `run_dir/grids.jsonl`: the time outside the cells
    (start-up before the first cell, the report after the last) that records cannot hold."""
    grid = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **grid}
    append(Path(run_dir) / GRIDS, grid)


def load_grids(run_dir: Path) -> list[dict]:
    """The grid lines of a run folder (none for folders written before they existed)."""
    path = Path(run_dir) / GRIDS
    return load(path) if path.is_file() else []
