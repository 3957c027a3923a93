"""`perf-check`: the same-run speedup gate of batched and per-user training over the
classic loop (exit 1 below a floor)."""

from __future__ import annotations

import argparse

from . import checks
from .options import POSITIVE, data_dir_option


def add(sub, default) -> argparse.ArgumentParser:
    pc = sub.add_parser("perf-check", help="same-run speedup gate: "
                                             "batched and per-user vs the classic loop; exit 1 "
                                             "below a floor")
    pc.add_argument("--dataset", default="synthetic-ml1m",
                    help="the data timed (default %(default)s: ML-1M's shape, fixed seed)")
    pc.add_argument("--slice-users", type=POSITIVE, default=300,
                    help="users in the slice the classic loop and the per-user engine train "
                         "on (default %(default)s)")
    pc.add_argument("--repeats", type=POSITIVE, default=3,
                    help="timed epochs per path (median; default %(default)s)")
    data_dir_option(pc)
    return pc


def main(args, sub) -> int:
    import torch
    from aebench.bench import speed
    from aebench.bench.runs.runner import SplitCache
    from tabulate import tabulate

    args.dataset, = checks.check_datasets(sub, [args.dataset], "random-90-10",
                        option="--dataset")
    cache = SplitCache(args.data_dir)
    checks.preload(cache, [args.dataset], "random-90-10", range(1))
    split = cache.split(args.dataset, "random-90-10", 0)
    rows = speed.same_run_ratios(split, sorted({m for m, _ in speed.FLOORS}),
                                 torch.device("cpu"), args.slice_users, args.repeats)
    print(f"perf-check on {args.dataset} ({split.train.nnz:,} training ratings), "
          f"{torch.get_num_threads()} threads; speedups over the classic loop, same run:")
    print(tabulate([[r["model"], r["path"], r["epoch_s"], r["classic_epoch_s"], r["speedup"],
                     r["floor"], "ok" if r["ok"] else "FAIL"] for r in rows],
                   headers=["model", "path", "epoch s", "classic epoch s", "speedup", "floor",
                            ""], tablefmt="github", floatfmt=".3g"))
    return 0 if all(r["ok"] for r in rows) else 1
