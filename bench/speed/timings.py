"""`python -m bench timings`: the pytest-benchmark suite in `tests/bench/`, saved and compared.

Runs are saved under `--storage` (default `.benchmarks/`, one folder per machine type). The
first run on a machine has nothing to compare with and just records a baseline; later runs
compare with the newest saved run (or `--compare NAME`) and fail when a benchmark's median
is more than `--fail` slower (default 50%: on the shared 2-core CI machines two back-to-back
runs of identical code differed by up to 27% slower and 45% faster). Compare only runs from
the same machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from aebench.bench.runs.records import ROOT


def saved_runs(storage: Path) -> list[Path]:
    return sorted(storage.glob("*/[0-9][0-9][0-9][0-9]_*.json"))


def pytest_args(storage: Path, save: str | None, compare: str | None, fail: str,
                extra: list[str]) -> list[str]:
    args = [str(ROOT / "tests" / "bench"), "--benchmark-enable", "--benchmark-only",
            f"--benchmark-storage=file://{storage.resolve()}", "--benchmark-sort=name",
            "--benchmark-columns=min,median,max,rounds", "-p", "no:cacheprovider"]
    args.append(f"--benchmark-save={save}" if save else "--benchmark-autosave")
    runs = saved_runs(storage)
    if compare:
        match = [p for p in runs if p.stem.endswith(f"_{compare}") or p.stem.startswith(compare)]
        if not match:
            raise SystemExit(f"aebench: --compare {compare}: no saved run of that name in "
                             f"{storage}")
        args += [f"--benchmark-compare={match[-1].stem[:4]}", f"--benchmark-compare-fail={fail}"]
    elif runs:
        args += ["--benchmark-compare", f"--benchmark-compare-fail={fail}"]
    else:
        print(f"no saved benchmark run in {storage}: this run is the baseline")
    return args + extra


def main(storage: str, save: str | None, compare: str | None, fail: str,
         extra: list[str]) -> int:
    return int(pytest.main(pytest_args(Path(storage), save, compare, fail, extra)))
