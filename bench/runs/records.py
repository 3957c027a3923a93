"""Result records: one JSON line per finished run, with everything needed to trace and re-run it."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import time
from pathlib import Path

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


def precision_of(record: dict) -> str:
    """The precision a record's cell ran in (fp32 for records older than the option)."""
    return record.get("run_config", {}).get("precision", "fp32")


def refitted(record: dict) -> bool:
    """Whether a record's cell was trained again on all training ratings (`run --refit`)."""
    return bool(record.get("run_config", {}).get("refit"))


def label_of(record: dict) -> str:
    """`recipe_label` of a record's cell."""
    return recipe_label(record.get("recipe", {}).get("name", "default"), refitted(record),
                        precision_of(record))


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


def append(path: Path, record: dict) -> None:
    """Append one record and flush it to disk, so an interrupted grid keeps finished runs. A
    last line cut short by a killed writer (no newline) is a lost record: it is dropped
    first, so that it cannot run into this one. The check and the append hold an exclusive
    lock on the file, so that two grids writing one folder (the two halves of a study, run
    side by side) never take each other's record in flight for a cut one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(_clean(record), sort_keys=True) + "\n").encode("utf-8")
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
    """Records of a runs.jsonl file (or of `runs.jsonl` inside a folder). A last line without
    its newline that does not parse is a record a killed run was writing: it is skipped.
    Any other malformed line is an error that names the file and line."""
    path = Path(path)
    if path.is_dir():
        path = path / "runs.jsonl"
    out = []
    with open(path, encoding="utf-8") as fh:
        lines = fh.readlines()
    for line_no, line in enumerate(lines, 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                if line_no == len(lines) and not line.endswith("\n"):
                    continue
                raise ValueError(f"{path}:{line_no}: not a JSON record ({exc})") from exc
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
