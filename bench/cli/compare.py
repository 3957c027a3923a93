"""`compare`: paired tests of every variant against the best of its table, over seeds."""

from __future__ import annotations

import argparse
from pathlib import Path

from .options import float_in


def add(sub, default) -> argparse.ArgumentParser:
    cmp_ = sub.add_parser("compare", help="paired tests of every variant "
                                            "against the best of its table, over seeds")
    cmp_.add_argument("dir", help="a run folder holding runs.jsonl and per_user/")
    cmp_.add_argument("--alpha", type=float_in(0.0, 1.0, low_open=True), default=0.05,
                      help="significance level after Holm's correction (default 0.05)")
    return cmp_


def main(args, sub) -> int:
    from aebench.bench.reports import report
    from aebench.bench.runs import records

    run_dir = Path(args.dir)
    if not (run_dir / "runs.jsonl").is_file():
        sub.error(f"argument dir: {args.dir} holds no runs.jsonl")
    recs = records.read(run_dir)
    for key, cells in report.groups(recs).items():
        for spec in (report.RATING, report.RANKING):
            _, md = report.comparison(run_dir, cells, spec, args.alpha)
            if md:
                print(f"## {report.title(key, spec)}\n\n{md}\n")
    return 0
