"""`site`: the static results site of run folders (leaderboards, variant pages, reports)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def add(sub, default) -> argparse.ArgumentParser:
    from aebench.bench.reports.site import PUBLISHED

    p = sub.add_parser("site", help="write the static results site of run folders: opens "
                                    "from disk, no server, no network")
    p.add_argument("dirs", nargs="*", metavar="DIR", default=list(PUBLISHED),
                   help="run folders (and folders of reports such as results/tuning); "
                        "default: the published ones")
    p.add_argument("--out", default="results/site",
                   help="the site's folder, replaced (default %(default)s)")
    return p


def main(args, sub) -> int:
    from .checks import require_extra

    require_extra("site", "site", "plotly", "markdown")
    from aebench.bench.reports import site

    folders = [Path(d) for d in args.dirs]
    missing = [str(d) for d in folders if not d.is_dir()]
    if missing:
        sub.error(f"argument DIR: no folder {', '.join(missing)}")
    started = time.perf_counter()
    try:
        files = site.write(folders, Path(args.out))
    except ValueError as exc:  # a runs.jsonl line that is not a record
        sys.exit(f"aebench: {exc}")
    size = sum(f.stat().st_size for f in files) / 2**20
    print(f"wrote {len(files)} files ({size:.1f} MB) to {args.out} in "
          f"{time.perf_counter() - started:.1f} s; open {Path(args.out) / 'index.html'}")
    return 0
