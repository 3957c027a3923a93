"""The one place where aebench reads the environment.

- `BENCH_DATA_DIR`: a folder holding extracted `ml-100k/`, `ml-1m/` folders or their zips.
  The CLI's `--data-dir` takes precedence over it.
- `BENCH_CACHE_DIR`: where downloaded archives are kept (default: `$XDG_CACHE_HOME/aebench`,
  else `~/.cache/aebench`).
"""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path | None:
    value = os.environ.get("BENCH_DATA_DIR")
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    value = os.environ.get("BENCH_CACHE_DIR")
    if value:
        return Path(value).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "aebench"
