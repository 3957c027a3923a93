"""aebench command line: `python -m bench {run,list,report,speed,perf-check,timings,recommend}`.

argparse lives here only; every `run` option maps one to one onto a `RunConfig` field.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _check_datasets_package() -> None:
    """Stop with a clear message if `import datasets` finds a foreign package (e.g. Hugging
    Face's `datasets`) instead of aebench's own."""
    try:
        import datasets
    except ImportError as exc:
        sys.exit(f"aebench: cannot import its `datasets` package ({exc}). Run from the "
                 f"repository root or install it with `pip install -e .`.")
    if not getattr(datasets, "AEBENCH", False):
        where = getattr(datasets, "__file__", "?")
        sys.exit(f"aebench: `import datasets` resolved to {where}, which is not aebench's "
                 f"datasets package (probably Hugging Face's `datasets`). Run `python -m bench` "
                 f"from the aebench repository root, or `pip install -e .` in a virtual "
                 f"environment without the other package.")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train and evaluate models x datasets x devices")
    run.add_argument("--all", action="store_true",
                     help="every registered variant x ml-100k and ml-1m x every available device")
    run.add_argument("-m", "--models", nargs="+", help="fnmatch patterns, e.g. 'sae-*'")
    run.add_argument("-d", "--datasets", nargs="+", help="ml-100k, ml-1m, synthetic[-UxI]")
    run.add_argument("--split", help="split protocol (default: u1 for ml-100k, "
                                     "random-90-10 otherwise)")
    run.add_argument("--devices", nargs="+", help="cpu, cuda (default: cpu; --all: all available)")
    run.add_argument("--mode", default="batched", choices=["batched", "per-user"])
    run.add_argument("--epochs", type=int, help="override the variant's default for the mode")
    run.add_argument("--lr", type=float, help="override the learning rate")
    run.add_argument("--weight-decay", type=float, help="override the weight decay")
    run.add_argument("--batch-size", type=int, help="override the batch size (batched mode)")
    run.add_argument("--eval-every", type=int, help="test RMSE every N epochs in the history")
    run.add_argument("--ks", type=int, nargs="+", default=[5, 10, 20],
                     help="cut-offs of the ranking metrics")
    run.add_argument("--relevance", type=float, default=4.0,
                     help="test ratings >= this count as relevant for ranking")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--data-dir", help="folder with ml-100k/, ml-1m/ or their zips "
                                        "(default: BENCH_DATA_DIR, then the cache)")
    run.add_argument("--out", help="run folder (default: results/runs/<UTC timestamp>)")

    sub.add_parser("list", help="show registered variants, datasets and split protocols")

    sp = sub.add_parser("speed", help="time one epoch: classic loop vs per-user vs batched")
    sp.add_argument("-m", "--models", nargs="+", default=["sae-20-10-20", "sae-200-100-200"])
    sp.add_argument("-d", "--dataset", default="ml-1m")
    sp.add_argument("--split", help="default: random-90-10 (u1 for ml-100k)")
    sp.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    sp.add_argument("--paths", nargs="+", default=["classic", "per-user", "batched"],
                    choices=["classic", "per-user", "batched"])
    sp.add_argument("--repeats", type=int, default=3, help="timed batched epochs (median)")
    sp.add_argument("--data-dir")
    sp.add_argument("--out", help="also write the rows as JSON here")

    pc = sub.add_parser("perf-check", help="same-run speedup gate: batched and per-user vs "
                                           "the classic loop; exit 1 below a floor")
    pc.add_argument("--dataset", default="synthetic-ml1m")
    pc.add_argument("--slice-users", type=int, default=300)
    pc.add_argument("--repeats", type=int, default=3)
    pc.add_argument("--data-dir")

    tm = sub.add_parser("timings", help="pytest-benchmark suite (tests/bench): save, compare")
    tm.add_argument("--storage", default=".benchmarks")
    tm.add_argument("--save", help="save this run under a name (e.g. a commit) for --compare")
    tm.add_argument("--compare", help="compare with the saved run of this name "
                                      "(default: the newest saved run, if any)")
    tm.add_argument("--fail", default="median:50%",
                    help="pytest-benchmark --benchmark-compare-fail expression (default "
                         "median:50%%: identical code varied by up to 45%% here; see README)")

    rec = sub.add_parser("recommend", help="top-k unrated movies for one user")
    rec.add_argument("--model", required=True)
    rec.add_argument("--dataset", required=True)
    rec.add_argument("--user", type=int, required=True, help="original MovieLens user id")
    rec.add_argument("-k", type=int, default=10)
    rec.add_argument("--split", help="used only when a model must be trained")
    rec.add_argument("--mode", default="batched", choices=["batched", "per-user"],
                     help="used only when a model must be trained")
    rec.add_argument("--retrain", action="store_true", help="train even if weights exist")
    rec.add_argument("--runs", nargs="+", default=["results/runs", "results/published"],
                     help="folders searched for saved weights")
    rec.add_argument("--data-dir")

    rep = sub.add_parser("report", help="regenerate tables and plots from a run folder")
    rep.add_argument("dir", help="a run folder holding runs.jsonl")
    rep.add_argument("--readme", help="also rewrite the generated blocks of this README "
                                      "(headline, reference, modes) from the folder's records "
                                      "and the per-user reference runs")
    rep.add_argument("--reference", default="results/reference-per-user",
                     help="with --readme: run folder of the per-user reference runs")
    return p


def _require_device(dev: str, option: str) -> None:
    """Exit with a message naming `option` unless `dev` is cpu, or cuda on a machine with it."""
    from .runner import available_devices

    if dev not in ("cpu", "cuda"):
        sys.exit(f"aebench: {option}: unknown device {dev!r} (cpu, cuda)")
    if dev not in available_devices():
        sys.exit(f"aebench: {option} {dev}: no CUDA device is available on this machine")


def _cmd_run(args) -> int:
    from tqdm.auto import tqdm

    from . import records, report
    from .runner import SplitCache, available_devices, grid, run_one

    if args.all:
        patterns, names = args.models or ["*"], args.datasets or ["ml-100k", "ml-1m"]
        devices = args.devices or available_devices()
    else:
        if not args.models:
            sys.exit("aebench: give -m/--models PATTERN (or --all)")
        patterns, names = args.models, args.datasets or ["ml-100k"]
        devices = args.devices or ["cpu"]
    for dev in devices:
        _require_device(dev, "--devices")
    try:
        cells = grid(patterns, names, devices, split=args.split, mode=args.mode,
                     seed=args.seed, epochs=args.epochs, lr=args.lr,
                     weight_decay=args.weight_decay, batch_size=args.batch_size,
                     eval_every=args.eval_every, ks=tuple(args.ks), relevance=args.relevance,
                     data_dir=args.data_dir)
    except KeyError as exc:
        sys.exit(f"aebench: -m/--models: {exc.args[0]}")
    out = Path(args.out or f"results/runs/{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}")
    out.mkdir(parents=True, exist_ok=True)
    cache = SplitCache(args.data_dir)
    failed = 0
    with tqdm(cells, desc="grid", unit="run") as bar:
        for cell in bar:
            label = f"{cell.model} {cell.dataset} {cell.device} {cell.mode}"
            bar.set_postfix_str(label)
            with tqdm(desc=label, unit="epoch", leave=False) as ebar:
                def on_epoch(row, ebar=ebar):
                    ebar.update(1)
                    ebar.set_postfix(loss=f"{row['train_loss']:.4f}",
                                     **({"rmse": f"{row['rmse']:.4f}"} if "rmse" in row else {}))
                rec = run_one(cell, cache, out, on_epoch)
            records.append(out / "runs.jsonl", rec)
            if rec["status"] == "ok":
                m = rec["metrics"]
                ndcg = m.get(f"ndcg@{10 if 10 in cell.ks else cell.ks[0]}")
                tqdm.write(f"{label}: rmse {m['rmse']:.4f}  mae {m['mae']:.4f}  legacy "
                           f"{m['legacy_loss']:.4f}  ndcg {ndcg:.4f}  "
                           f"epoch {rec['timings']['epoch_s_median']:.3f}s")
            else:
                failed += 1
                tqdm.write(f"{label}: FAILED {rec['error']}")
    written = report.write(out)
    print(f"{len(cells) - failed}/{len(cells)} runs ok; records in {out / 'runs.jsonl'}")
    print("wrote " + ", ".join(str(p) for p in written))
    return 1 if failed else 0


def _cmd_list(args) -> int:
    from tabulate import tabulate

    import datasets
    import models

    rows = []
    for name in models.list():
        v = models.get(name)
        c = v.config
        rows.append([name, "-".join(map(str, c.hidden)), c.activation,
                     f"{c.per_user.optimizer} lr {c.per_user.lr:g} wd {c.per_user.weight_decay:g}"
                     f" x{c.per_user.epochs} loss/{c.per_user.loss}",
                     f"{c.batched.optimizer} lr {c.batched.lr:g} ({c.batched.schedule}) wd "
                     f"{c.batched.weight_decay:g} bs {c.batched.batch_size} x{c.batched.epochs}",
                     v.source])
    print(tabulate(rows, headers=["model", "hidden", "act", "per-user", "batched", "source"],
                   tablefmt="github"))
    print()
    print("datasets: " + ", ".join(datasets.names()) + " (synthetic-<users>x<items> too)")
    print("splits:   " + ", ".join(datasets.PROTOCOLS))
    return 0


def _cmd_report(args) -> int:
    from . import report

    written = report.write(Path(args.dir))
    if args.readme:
        from . import records

        recs = records.load(Path(args.dir))
        readme = Path(args.readme)
        text = report.replace_block(readme.read_text(encoding="utf-8"), report.START,
                                    report.END, report.headline(report.frame(recs)))
        per_user = records.load(Path(args.reference))
        text = report.replace_block(text, report.REF_START, report.REF_END,
                                    report.reference(per_user, recs))
        text = report.replace_block(text, report.MODES_START, report.MODES_END,
                                    report.modes(per_user, recs))
        readme.write_text(text, encoding="utf-8")
        written.append(readme)
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def _cmd_speed(args) -> int:
    import json

    import torch
    from tabulate import tabulate

    import models

    from . import records, speed
    from .runner import DEFAULT_SPLIT, FALLBACK_SPLIT, SplitCache

    _require_device(args.device, "--device")
    device = torch.device(args.device)
    split_name = args.split or DEFAULT_SPLIT.get(args.dataset, FALLBACK_SPLIT)
    split = SplitCache(args.data_dir).split(args.dataset, split_name, 0)
    peak = speed.matmul_peak_gflops(device)
    rows, ceilings = [], {}
    for name in models_list(args.models):
        width = models.config(name).hidden[0]
        if width not in ceilings:
            ceilings[width] = speed.gather_ceiling_gflops(split, width, device)
        for r in speed.measure(name, split, device, tuple(args.paths), args.repeats):
            r["pct_of_peak"] = 100 * r["gflops"] / peak
            r["gather_ceiling_gflops"] = ceilings[width]
            r["pct_of_gather_ceiling"] = 100 * r["gflops"] / ceilings[width]
            rows.append(r)
    print(f"{args.dataset} {split_name}, {records.device_name(device)}, "
          f"{torch.get_num_threads()} threads; measured fp32 matmul peak {peak:.1f} GFLOP/s; "
          "gather ceiling (embedding_bag of the ratings, first-layer width) "
          + ", ".join(f"{g:.1f} GFLOP/s at width {w}" for w, g in ceilings.items()))
    print(tabulate([[r["model"], r["path"], r["epoch_s"], r["speedup_vs_classic"],
                     r["gflop_per_epoch"], r["gflops"], r["pct_of_peak"],
                     r["pct_of_gather_ceiling"]] for r in rows],
                   headers=["model", "path", "epoch s (median)", "x classic", "GFLOP/epoch",
                            "GFLOP/s", "% of peak", "% of gather ceiling"],
                   tablefmt="github", floatfmt=".3g"))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"dataset": args.dataset, "split": split.describe(),
                       "env": records.environment(device), "matmul_peak_gflops": peak,
                       "gather_ceiling_gflops": {str(w): g for w, g in ceilings.items()},
                       "rows": rows}, fh, indent=1)
    return 0


def _cmd_recommend(args) -> int:
    from tabulate import tabulate

    from . import recommend, records
    from .runner import RunConfig, SplitCache, run_one

    cache = SplitCache(args.data_dir)
    path = None if args.retrain else recommend.find_weights(
        args.model, args.dataset, [Path(r) for r in args.runs])
    if path is None:
        out = Path(args.runs[0]) / f"recommend-{args.model}-{args.dataset}"
        print(f"no saved {args.model} model for {args.dataset} under {', '.join(args.runs)}; "
              f"training one ({args.mode}) into {out}")
        rec = run_one(RunConfig(model=args.model, dataset=args.dataset, split=args.split,
                                mode=args.mode, data_dir=args.data_dir), cache, out)
        records.append(out / "runs.jsonl", rec)
        if rec["status"] != "ok":
            sys.exit(f"aebench: training failed: {rec['error']}")
        path = out / rec["weights"]
    else:
        print(f"using the saved model {path}")
    try:
        model, split, ckpt = recommend.load(
            path, lambda name, seed: cache.split(args.dataset, name, seed))
    except ValueError as exc:
        sys.exit(f"aebench: {exc}; rerun with --retrain")
    try:
        table = recommend.recommend(model, split, cache.dataset(args.dataset).items,
                                    args.user, args.k)
    except KeyError as exc:
        sys.exit(f"aebench: --user: {exc.args[0]}")
    u = split.user_index(args.user)
    print(f"top {args.k} for user {args.user} ({args.model}, {args.dataset} "
          f"{ckpt['split']['name']}), excluding the {split.train[u].nnz} + {split.test[u].nnz} "
          "movies the user rated:")
    print(tabulate(table, headers="keys", tablefmt="github", showindex=False, floatfmt=".3f"))
    return 0


def _cmd_perf_check(args) -> int:
    import torch
    from tabulate import tabulate

    from . import speed
    from .runner import SplitCache

    split = SplitCache(args.data_dir).split(args.dataset, "random-90-10", 0)
    rows = speed.same_run_ratios(split, sorted({m for m, _ in speed.FLOORS}),
                                 torch.device("cpu"), args.slice_users, args.repeats)
    print(f"perf-check on {args.dataset} ({split.train.nnz:,} training ratings), "
          f"{torch.get_num_threads()} threads; speedups over the classic loop, same run:")
    print(tabulate([[r["model"], r["path"], r["epoch_s"], r["classic_epoch_s"], r["speedup"],
                     r["floor"], "ok" if r["ok"] else "FAIL"] for r in rows],
                   headers=["model", "path", "epoch s", "classic epoch s", "speedup", "floor",
                            ""], tablefmt="github", floatfmt=".3g"))
    return 0 if all(r["ok"] for r in rows) else 1


def _cmd_timings(args, extra) -> int:
    from . import timings

    return timings.main(args.storage, args.save, args.compare, args.fail, extra)


def models_list(patterns):
    import models

    names = models.list(patterns)
    if not names:
        sys.exit(f"aebench: -m/--models: no registered model matches {patterns}")
    return names


def main(argv: list[str] | None = None) -> int:
    _check_datasets_package()
    args, extra = _parser().parse_known_args(argv)
    if args.command == "timings":
        return _cmd_timings(args, extra)
    if extra:
        _parser().error(f"unrecognized arguments: {' '.join(extra)}")
    return {"run": _cmd_run, "list": _cmd_list, "report": _cmd_report, "speed": _cmd_speed,
            "recommend": _cmd_recommend, "perf-check": _cmd_perf_check}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
