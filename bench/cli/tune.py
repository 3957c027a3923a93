"""`tune`: tune every matching variant with the same budget on validation data (Optuna).

Every variant gets the same number of trials, the same split, carving and seed; trials read
validation data only."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from . import checks
from .options import (
    NONNEGATIVE,
    POSITIVE,
    config_options,
    data_dir_option,
    executor_options,
    float_in,
    plugin_option,
)


def add(sub, default) -> argparse.ArgumentParser:
    from aebench.bench.engines.precision import AUTO, PRECISIONS

    tune = sub.add_parser("tune", help="tune every matching variant with the "
                                                      "same budget on validation data (Optuna)")
    tune.add_argument("-m", "--models", nargs="+", action="extend",
                      help="fnmatch patterns (repeatable; required, here or in --config)")
    tune.add_argument("-d", "--datasets", nargs="+", action="extend",
                      help="required, here or in --config")
    tune.add_argument("--split", help="default: u1 for ml-100k, random-90-10 otherwise")
    tune.add_argument("--trials", type=POSITIVE,
                      help="trials per variant (the same budget for every variant; required, "
                           "here or in --config)")
    tune.add_argument("--timeout", type=float_in(0.0, low_open=True),
                      help="seconds per variant and call (the same for every variant)")
    tune.add_argument("--seed", type=NONNEGATIVE, default=default("seed"),
                      help="seeds the sampler, the split, the carving and the weights")
    tune.add_argument("--out", help="output folder (default: results/tuning/<UTC timestamp>)")
    tune.add_argument("--storage", help="Optuna storage URL (default: sqlite file "
                                        "studies.db in --out)")
    tune.add_argument("--resume", action="store_true",
                      help="continue the studies in the storage up to --trials each")
    tune.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                      help="where every trial trains (default %(default)s)")
    tune.add_argument("--precision", default=AUTO, choices=[AUTO, *PRECISIONS],
                      help="as run's: every trial trains and scores in it")
    tune.add_argument("--valid-fraction", type=float_in(0.0, 1.0, low_open=True),
                      default=0.05, help="validation share of the training ratings")
    tune.add_argument("--eval-every", type=POSITIVE,
                      help="validation reads every N epochs (default: ~25 per run)")
    tune.add_argument("--patience", type=POSITIVE, default=default("patience"),
                      help="validation reads without improvement before a trial stops "
                           "(default %(default)s)")
    data_dir_option(tune)
    executor_options(tune)
    plugin_option(tune)
    config_options(tune)
    return tune


def main(args, sub) -> int:
    import optuna
    from aebench.bench.engines.precision import resolve
    from aebench.bench.runs import tune
    from aebench.bench.runs.plan import applicable
    from aebench.bench.runs.runner import RunConfig, shared_cache

    from aebench import datasets, models

    if args.experiment is not None and args.experiment.overrides:
        sub.error(f"argument --config: {args.experiment.path}: models: model tables with "
                  "overrides set a run's recipe; tune searches each variant's own space "
                  f"({', '.join(args.experiment.overrides)})")
    for option, value in (("-m/--models", args.models), ("-d/--datasets", args.datasets),
                          ("--trials", args.trials)):
        if not value:
            sub.error(f"the following arguments are required: {option} (or its key in "
                      "--config)")
    chosen = checks.resolve_models(sub, args.models)
    checks.check_devices(sub, "--device", [args.device])
    checks.check_precision(sub, "--precision", args.precision, args.device)
    args.datasets = checks.check_datasets(sub, args.datasets, args.split)
    empty = [m for m in chosen if not models.get(m).space.params]
    chosen = [m for m in chosen if m not in empty]
    if empty:
        print(f"no search space, nothing to tune: {', '.join(empty)}")
    out = Path(args.out or f"results/tuning/{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}")
    storage = args.storage or f"sqlite:///{out / 'studies.db'}"
    checks.preload(shared_cache(args.data_dir), args.datasets, args.split,
             range(args.seed, args.seed + 1))
    if args.dry_run:
        for dataset in args.datasets:
            for model in chosen:
                print(f"would tune {model} on {dataset}: {args.trials} trials over "
                      f"{', '.join(models.get(model).space.params)}")
        print(f"dry run: {len(chosen) * len(args.datasets)} studies into {out}; nothing "
              "trained")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    args.executor = args.executor or checks.default_executor(args.workers)
    executor = checks.executor(sub, args)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        for dataset in args.datasets:
            for model in chosen:
                cell = RunConfig(model=model, dataset=dataset, split=args.split,
                                 device=args.device, seed=args.seed,
                                 valid_fraction=args.valid_fraction,
                                 eval_every=args.eval_every, patience=args.patience,
                                 data_dir=args.data_dir, plugins=tuple(args.plugins),
                                 dataset_file=datasets.registered(dataset),
                                 precision=resolve(args.precision, models.get(model).precision,
                                                   args.device))
                kept, skipped = applicable([cell], shared_cache(args.data_dir))
                for why in skipped:
                    print(f"skipped: {why}")
                if not kept:
                    continue
                try:
                    s = tune.tune_variant(cell, args.trials, storage, executor, args.seed,
                                          args.timeout, args.resume)
                except FileExistsError as exc:
                    sub.error(f"argument --resume: {exc}")
                print(f"{s['study']}: best {s['metric']} {s.get('value')} (default "
                      f"{s.get('default_value')}) over {s['trials']} trials, {s['pruned']} "
                      f"pruned, {s['failed']} failed")
                tune.write_study_files(out, optuna.load_study(study_name=s["study"],
                                                              storage=storage))
                written = tune.write_summaries(out, storage)
    finally:
        executor.close()
    if chosen:
        print("wrote " + ", ".join(str(p) for p in written) + " and the studies' histories "
              "and plots in " + str(out))
    return 0
