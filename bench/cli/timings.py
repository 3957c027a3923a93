"""`timings`: the pytest-benchmark suite in tests/bench, saved and compared."""

from __future__ import annotations

import argparse


def add(sub, default) -> argparse.ArgumentParser:
    tm = sub.add_parser("timings", help="pytest-benchmark suite "
                                                          "(tests/bench): save, compare")
    tm.add_argument("--storage", default=".benchmarks",
                    help="where pytest-benchmark keeps its runs (default %(default)s)")
    tm.add_argument("--save", help="save this run under a name (e.g. a commit) for --compare")
    tm.add_argument("--compare", help="compare with the saved run of this name "
                                      "(default: the newest saved run, if any)")
    tm.add_argument("--fail", default="median:50%",
                    help="pytest-benchmark --benchmark-compare-fail expression (default "
                         "median:50%%: identical code varied by up to 45%% here; see README)")
    return tm


def main(args, extra) -> int:
    from aebench.bench.speed import timings

    return timings.main(args.storage, args.save, args.compare, args.fail, extra)
