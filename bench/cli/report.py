"""`report`: regenerate a run folder's tables and plots (and README's generated blocks)
from its records."""

from __future__ import annotations

import argparse
from pathlib import Path


def add(sub, default) -> argparse.ArgumentParser:
    rep = sub.add_parser("report", help="regenerate tables and plots from a "
                                                         "run folder")
    rep.add_argument("dir", help="a run folder holding runs.jsonl")
    rep.add_argument("--readme", help="also rewrite the generated blocks of this README and "
                                      "of the docs/ pages beside it (verdict, headline, "
                                      "reference, modes), wherever each block is, from the "
                                      "folder's records and the per-user reference runs")
    rep.add_argument("--reference", default="results/reference-per-user",
                     help="with --readme: run folder of the per-user reference runs")
    rep.add_argument("--tuned", help="with --readme: run folder of the tuned-recipe run")
    rep.add_argument("--tuning", help="with --readme and --tuned: the tuning folder "
                                      "(studies.json)")
    rep.add_argument("--heldout", help="with --readme: run folder of the strong-generalisation "
                                       "run (split heldout-users), for its README block")
    rep.add_argument("--protocols", nargs="*", metavar="DIR",
                     help="also compare protocols: this folder's records and those of DIR... "
                          "(runs under other protocols), per dataset, into protocols.md and "
                          "protocols_ndcg.png")
    rep.add_argument("--reproduction", action="store_true",
                     help="also write reproduction.md, the published figures beside the "
                          "folder's (bench/reports/literature.py); with --readme, its README "
                          "block")
    rep.add_argument("--versus", nargs="+", metavar="MODEL",
                     help="also write versus.md: every variant of each table against each of "
                          "these references, paired per user, Holm over the table "
                          "(bench/reports/versus.py)")
    rep.add_argument("--parity", nargs="*", metavar="DIR",
                     help="also write parity.md: this folder's bf16 cells against its fp32 "
                          "cells (bench/reports/parity.py), with the epoch ratios of its "
                          "speed-cpu.json, and its fp32 cells against those of each DIR (a "
                          "control); with --readme, its README block")
    return rep


def main(args, sub) -> int:
    from aebench.bench.reports import budget, report
    from aebench.bench.runs import records

    if not (Path(args.dir) / "runs.jsonl").is_file():
        sub.error(f"argument dir: {args.dir} holds no runs.jsonl")
    for option, dirs in (("--protocols", args.protocols), ("--parity", args.parity)):
        missing = [d for d in dirs or [] if not (Path(d) / "runs.jsonl").is_file()]
        if missing:
            sub.error(f"argument {option}: {', '.join(missing)} holds no runs.jsonl")
    written = [*report.write(Path(args.dir)), budget.write(Path(args.dir))]
    if args.protocols is not None:
        from aebench.bench.reports import verdict

        written += verdict.write([Path(args.dir), *map(Path, args.protocols)], Path(args.dir))
    if args.versus:
        from aebench.bench.reports import versus

        written.append(versus.write(Path(args.dir), args.versus))
    if args.reproduction:  # the folder of the publishers' protocols: README's block of it
        from aebench.bench.reports import literature

        written += literature.write(records.read(Path(args.dir)), Path(args.dir),
                                    Path(args.readme) if args.readme else None)
    elif args.parity is not None:  # both precisions' folder: parity.md and README's block
        from aebench.bench.reports import parity

        written += parity.write(Path(args.dir), [Path(d) for d in args.parity],
                                readme=Path(args.readme) if args.readme else None)
    elif args.readme:
        written += report.update_readme(
            Path(args.readme), Path(args.dir), Path(args.reference),
            Path(args.tuned) if args.tuned else None, Path(args.tuning) if args.tuning else None,
            Path(args.heldout) if args.heldout else None)
    print("wrote " + ", ".join(str(p) for p in written))
    return 0
