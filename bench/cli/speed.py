"""`speed`: time one epoch of every path each variant has (classic, per-user, batched,
closed-form fit), against the machine's measured matmul peak, or back to back with a peer."""

from __future__ import annotations

import argparse

from . import checks
from .options import POSITIVE, data_dir_option, plugin_option


def add(sub, default) -> argparse.ArgumentParser:
    from aebench.bench.engines.precision import PRECISIONS
    from aebench.bench.speed import PATHS

    sp = sub.add_parser("speed", help="time one epoch of every path each "
                                                      "variant has: classic, per-user, "
                                                      "batched, closed-form fit")
    sp.add_argument("-m", "--models", nargs="+", action="extend",
                    help="fnmatch patterns (default: every variant)")
    sp.add_argument("-d", "--dataset", default="ml-1m",
                    help="the dataset whose default split is timed (default %(default)s)")
    sp.add_argument("--split", help="default: random-90-10 (u1 for ml-100k)")
    sp.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                    help="where to time (default %(default)s)")
    sp.add_argument("--paths", nargs="+", default=list(PATHS), choices=list(PATHS),
                    help="the training paths to time (default: all)")
    sp.add_argument("--repeats", type=POSITIVE, default=3, help="timed epochs (median)")
    sp.add_argument("--precisions", nargs="+", default=["fp32"], choices=list(PRECISIONS),
                    help="time the batched path in each (fp32 bf16: both, with each "
                         "precision's matmul peak)")
    sp.add_argument("--peak-size", type=POSITIVE, default=2048,
                    help="n of the n x n matmul that measures each peak (default 2048)")
    sp.add_argument("--peers", action="store_true",
                    help="time each family that has a peer in a well-kept library (RecBole "
                         "1.2.1) back to back with it, same split and threads, and print the "
                         "speedup (bench/speed/peers.py)")
    sp.add_argument("--peer-python", help="with --peers: the Python of RecBole's own "
                                          "environment (default: BENCH_RECBOLE_PYTHON, then "
                                          "this one if it has recbole)")
    data_dir_option(sp)
    sp.add_argument("--out", help="also write the rows as JSON here")
    plugin_option(sp)
    return sp


def main(args, sub) -> int:
    import json

    import torch
    from aebench.bench import speed
    from aebench.bench.engines import precision
    from aebench.bench.runs import records
    from aebench.bench.runs.runner import DEFAULT_SPLIT, FALLBACK_SPLIT, SplitCache
    from aebench.bench.speed import peers as peer_lib
    from tabulate import tabulate

    from aebench import models

    names = checks.resolve_models(
        sub, args.models or (list(peer_lib.PEERS) if args.peers else ["*"]))
    if args.peer_python and not args.peers:
        sub.error("--peer-python needs --peers")
    if args.peers and args.device != "cpu":
        sub.error("--peers: the peers run on the CPU only (RecBole's environment here is its "
                  "CPU build)")
    checks.check_devices(sub, "--device", [args.device])
    args.dataset, = checks.check_datasets(sub, [args.dataset], args.split,
                        option="-d/--dataset")
    device = torch.device(args.device)
    split_name = args.split or DEFAULT_SPLIT.get(args.dataset, FALLBACK_SPLIT)
    cache = SplitCache(args.data_dir)
    checks.preload(cache, [args.dataset], args.split, range(1))
    split = cache.split(args.dataset, split_name, 0)
    for p in args.precisions:
        checks.check_precision(sub, "--precisions", p, args.device)
    if args.peers:
        return speed_peers(args, names, split, device)
    size = args.peak_size
    peaks = {"fp32": speed.matmul_peak_gflops(device, size)}
    if "bf16" in args.precisions:
        peaks["bf16"] = speed.matmul_peak_gflops(device, size, dtype=torch.bfloat16)
    if "tf32" in args.precisions:
        with precision.context("tf32", device, ("score",), "score"):
            peaks["tf32"] = speed.matmul_peak_gflops(device, size)
    peak = peaks["fp32"]
    rows, ceilings = [], {}
    for name, p in ((m, p) for m in names for p in args.precisions):
        x = models.config(name).view(split.train)
        for r in speed.measure(name, split, device, tuple(args.paths), args.repeats,
                               precision=p):
            r["pct_of_peak"] = (100 * r["gflops"] / peaks[r["precision"]] if r["gflops"]
                                else None)
            if r["bound"] == "gather" and r["width"] and r["gflops"]:
                key = (x.shape, r["width"])
                if key not in ceilings:
                    ceilings[key] = speed.gather_ceiling_gflops(x, r["width"], device)
                r["gather_ceiling_gflops"] = ceilings[key]
                r["pct_of_gather_ceiling"] = 100 * r["gflops"] / ceilings[key]
            rows.append(r)
    print(f"{args.dataset} {split_name}, {records.device_name(device)}, "
          f"{torch.get_num_threads()} threads; measured matmul peaks "
          + ", ".join(f"{p} {g:.1f}" for p, g in peaks.items()) + " GFLOP/s; "
          "gather ceilings (embedding_bag of the training entries at the first-layer width): "
          + ", ".join(f"{g:.1f} GFLOP/s at width {w} over {r} rows x {c} columns"
                     for ((r, c), w), g in ceilings.items()))
    print(tabulate([[r["model"], r["path"], r["precision"], r["epoch_s"], r.get("iteration_s"),
                     r["speedup_vs_classic"], r["gflop_per_epoch"], r["gflops"], r["bound"],
                     r["pct_of_peak"], r.get("pct_of_gather_ceiling")] for r in rows],
                   headers=["model", "path", "precision", "epoch s (median)",
                            "L-BFGS iteration s",
                            "x classic", "GFLOP/epoch", "GFLOP/s", "bound", "% of matmul peak",
                            "% of gather ceiling"],
                   tablefmt="github", floatfmt=".3g", missingval="—"))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"dataset": args.dataset, "split": split.describe(),
                       "env": records.environment(device), "matmul_peak_gflops": peak,
                       "matmul_peaks_gflops": peaks,
                       "gather_ceiling_gflops": {f"{w}@{s[0]}x{s[1]}": g
                                                 for (s, w), g in ceilings.items()},
                       "rows": rows}, fh, indent=1)
    return 0


def speed_peers(args, names, split, device) -> int:
    """`speed --peers`: each family with a peer, then its peer, back to back."""
    import json

    import torch
    from aebench.bench.runs import records
    from aebench.bench.speed import peers as peer_lib

    for name in (n for n in names if n not in peer_lib.PEERS):
        print(f"no peer: {name} (peers: {', '.join(peer_lib.PEERS)})")
    todo = [peer_lib.PEERS[n] for n in names if n in peer_lib.PEERS]
    python, why = peer_lib.find_python(args.peer_python)
    if python is None:
        print(f"speed --peers: skipped, {why}")
        return 0
    threads = torch.get_num_threads()
    rows = []
    for peer in todo:
        done = peer_lib.compare(peer, split, device, python, args.repeats, threads,
                                tuple(args.precisions))
        rows += done
        print(f"{peer.family}: aebench " + ", ".join(f"{r['aebench_s']:.3g} s ({r['precision']})"
                                                     for r in done)
              + f", {done[0]['peer']} {done[0]['peer_s']:.3g} s", flush=True)
    print(f"{split.dataset} {split.name}, {records.device_name(device)}, {threads} threads, "
          f"medians of {args.repeats}, back to back in this run (the peer in fp32):")
    print(peer_lib.markdown(rows))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"dataset": split.dataset, "split": split.describe(), "threads": threads,
                       "env": records.environment(device), "rows": rows}, fh, indent=1)
    return 0
