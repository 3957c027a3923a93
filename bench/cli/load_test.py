"""`load-test`: a bounded load test of a running `bench serve` (throughput, p50/p99 latency
per model, kind of request and number of concurrent clients; optionally a memory soak)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from .options import POSITIVE, float_in


def add(sub, default) -> argparse.ArgumentParser:
    p = sub.add_parser("load-test", help="measure a running service: throughput and latency "
                                         "at several concurrencies")
    p.add_argument("url", metavar="URL", help="the service, e.g. http://127.0.0.1:8000")
    p.add_argument("--models", nargs="+", required=True, metavar="NAME",
                   help="served names to load")
    p.add_argument("--kinds", nargs="+", default=["known", "fold-in"],
                   choices=["known", "fold-in"],
                   help="known users' top 10, new users' from --ratings ratings (default: "
                        "both; fold-in only for models that fold in)")
    p.add_argument("--clients", nargs="+", type=POSITIVE, default=[1, 8, 32],
                   help="concurrent clients, one level each (default %(default)s)")
    p.add_argument("--requests", type=POSITIVE, default=2000,
                   help="requests per level (default %(default)s)")
    p.add_argument("--limit-s", type=float_in(0, low_open=True), default=60.0,
                   help="a level stops after this many seconds (default %(default)s)")
    p.add_argument("--ratings", type=POSITIVE, default=20,
                   help="ratings of a folded-in user (default %(default)s)")
    p.add_argument("--soak-s", type=float_in(0), default=0.0,
                   help="then mixed requests for this long, the server's memory sampled "
                        "(default: no soak)")
    p.add_argument("--out", metavar="FILE.json", help="also write the figures here (and the "
                                                     "table beside it, FILE.md)")
    return p


def main(args, sub) -> int:
    from aebench.bench.service import load
    try:
        result = asyncio.run(load.run(args.url, args.models, args.kinds, args.clients,
                                      args.requests, args.limit_s, args.ratings, args.soak_s))
    except (OSError, ValueError, RuntimeError) as exc:
        sys.exit(f"aebench: load-test {args.url}: {exc}")
    command = "python -m bench " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["load-test"] \
        else ""
    page = load.markdown(result, command)
    print(page, end="")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1) + "\n")
        out.with_suffix(".md").write_text(page)
    return 0
