"""`recommend`: top-k unrated movies for one user from a saved (or newly trained) model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import checks
from .options import POSITIVE, data_dir_option, plugin_option


def add(sub, default) -> argparse.ArgumentParser:
    rec = sub.add_parser("recommend", help="top-k unrated movies for one "
                                                               "user")
    rec.add_argument("--model", required=True, help="a registered variant")
    rec.add_argument("--dataset", required=True,
                     help="the dataset the model was (or is to be) trained on")
    rec.add_argument("--user", required=True,
                     help="the user's original id, as the ratings file writes it")
    rec.add_argument("-k", type=POSITIVE, default=10,
                     help="how many movies (default %(default)s)")
    rec.add_argument("--split", help="used only when a model must be trained")
    rec.add_argument("--mode", default="batched", choices=["batched", "per-user"],
                     help="used only when a model must be trained")
    rec.add_argument("--retrain", action="store_true", help="train even if weights exist")
    rec.add_argument("--runs", nargs="+", default=["results/runs", "results/published"],
                     help="folders searched for saved weights")
    data_dir_option(rec)
    plugin_option(rec)
    rec.add_argument("--config", metavar="FILE.toml",
                     help="a run's experiment file: its [dataset.NAME] tables (titles "
                          "included) and its plugins")
    return rec


def main(args, sub) -> int:
    from aebench.bench import recommend
    from aebench.bench.runs.runner import RunConfig, SplitCache, run_one
    from tabulate import tabulate

    checks.resolve_models(sub, [args.model], option="--model")
    args.dataset, = checks.check_datasets(sub, [args.dataset], args.split,
                        option="--dataset")
    cache = SplitCache(args.data_dir)
    checks.preload(cache, [args.dataset], args.split, range(1))
    path = None if args.retrain else recommend.find_weights(
        args.model, args.dataset, [Path(r) for r in args.runs])
    if path is None:
        out = Path(args.runs[0]) / f"recommend-{args.model}-{args.dataset}"
        print(f"no saved {args.model} model for {args.dataset} under {', '.join(args.runs)}; "
              f"training one ({args.mode}) into {out}")
        rec = run_one(RunConfig(model=args.model, dataset=args.dataset, split=args.split,
                                mode=args.mode, data_dir=args.data_dir), cache, out)
        if not rec.ok:
            sys.exit(f"aebench: training failed: {rec.error}")
        path = out / rec.weights
    else:
        print(f"using the saved model {path}")
    try:
        model, cfg, split, ckpt = recommend.load(
            path, lambda name, seed: cache.split(args.dataset, name, seed))
    except ValueError as exc:
        sys.exit(f"aebench: {exc}; rerun with --retrain")
    data = cache.dataset(args.dataset)
    try:
        user = data.labels.code("user", args.user)
        table = recommend.recommend(model, cfg, split, data.items, user, args.k)
        if data.labels.item is not None:  # the file's own ids, not their codes
            table["movie_id"] = data.labels.item[table["movie_id"].to_numpy() - 1]
    except KeyError as exc:
        sub.error(f"argument --user: {exc.args[0]}")
    u = split.user_index(user)
    print(f"top {args.k} for user {args.user} ({args.model}, {args.dataset} "
          f"{ckpt['split']['name']}), excluding the {split.train[u].nnz} + {split.test[u].nnz} "
          "movies the user rated:")
    print(tabulate(table, headers="keys", tablefmt="github", showindex=False, floatfmt=".3f"))
    return 0
