"""`run`: train and evaluate models x datasets x devices x seeds into a run folder.

Everything that can be checked is checked before the first cell trains: the options, the
experiment file, the datasets (their size, every split and validation carving), the executor's
extra, the output folder (writable, with room for the plan) and any records already there.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import checks
from .options import (
    FRACTION,
    LR,
    NONNEGATIVE,
    POSITIVE,
    RELEVANCE,
    WEIGHT_DECAY,
    config_options,
    data_dir_option,
    executor_options,
    plugin_option,
)

HELP = "train and evaluate models x datasets x devices x seeds"


def add(sub, default) -> argparse.ArgumentParser:
    from aebench.bench.engines.precision import AUTO, PRECISIONS

    run = sub.add_parser("run", help=HELP, description=HELP + ".")
    run.add_argument("--all", action="store_true",
                     help="every registered variant x ml-100k and ml-1m x every available "
                          "device (with --mode per-user: the variants that have that mode)")
    run.add_argument("-m", "--models", nargs="+", action="extend",
                     help="fnmatch patterns, e.g. 'sae-*' (repeatable)")
    run.add_argument("-d", "--datasets", nargs="+", action="extend",
                     help="ml-100k, ml-1m, synthetic[-UxI], synthetic-ml1m, "
                          "synthetic-ml20m[-half|-eighth], or a ratings file PATH.csv / "
                          "PATH.tsv, named by its stem (repeatable)")
    run.add_argument("--split", help="split protocol (default: u1 for ml-100k, "
                                     "random-90-10 otherwise)")
    run.add_argument("--devices", nargs="+", action="extend", choices=["cpu", "cuda"],
                     help="default: cpu (with --all: every available device)")
    run.add_argument("--mode", default=default("mode"), choices=["batched", "per-user"],
                     help="batched engines, or the notebooks' per-user loop (default "
                          "%(default)s)")
    run.add_argument("--epochs", type=POSITIVE,
                     help="override the most epochs of the recipe (the cells' recipe becomes "
                          "custom)")
    run.add_argument("--lr", type=LR, help="override the learning rate (> 0; custom recipe)")
    run.add_argument("--weight-decay", type=WEIGHT_DECAY,
                     help="override the weight decay (>= 0; custom recipe)")
    run.add_argument("--batch-size", type=POSITIVE,
                     help="override the batch size (custom recipe)")
    run.add_argument("--seeds", type=POSITIVE, default=1,
                     help="run every cell for seeds SEED..SEED+N-1 (default 1)")
    run.add_argument("--seed", type=NONNEGATIVE, default=default("seed"),
                     help="the first seed (default %(default)s)")
    run.add_argument("--valid-fraction", type=FRACTION,
                     help="share of the training ratings carved out for validation (default "
                          "0.05 in batched mode, 0 = none in per-user mode)")
    run.add_argument("--eval-every", type=POSITIVE,
                     help="read the validation figure every N epochs (default: ~25 per run)")
    run.add_argument("--patience", type=POSITIVE, default=default("patience"),
                     help="validation reads without improvement before stopping (default "
                          "%(default)s)")
    run.add_argument("--ks", type=POSITIVE, nargs="+", default=list(default("ks")),
                     help="cut-offs of the ranking metrics (default %(default)s)")
    run.add_argument("--relevance", type=RELEVANCE, default=default("relevance"),
                     help="held-out ratings >= this count as relevant for ranking (1-5, "
                          "default %(default)s)")
    run.add_argument("--engine-paths", default=default("engine_paths"), choices=["auto", "cuda"],
                     help="code paths of the engines: each device's default, or the ones CUDA "
                          "takes (dense outputs, multi-tensor optimizer, torch-op RMSprop) on "
                          "any device")
    data_dir_option(run)
    run.add_argument("--out", help="run folder (default: results/runs/<UTC timestamp>)")
    run.add_argument("--resume", action="store_true",
                     help="skip the cells whose ok record, made under the same settings, is "
                          "already in --out's runs.jsonl")
    run.add_argument("--recipes", help="tuned recipes (a tuning folder's recipes.json): "
                                       "cells with one use it, the rest their defaults")
    run.add_argument("--precision", default=AUTO, choices=[AUTO, *PRECISIONS],
                     help="bf16: autocast of the dense products (CPU and CUDA), tf32: CUDA's "
                          "TF32 matmuls; float32 master weights, reductions and metrics, and "
                          "float32 wherever a family keeps it. auto (the default): each "
                          "variant's registered precision where the device multiplies it "
                          "natively (CUDA, or a CPU with AVX-512 BF16 or AMX), fp32 elsewhere")
    run.add_argument("--refit", action="store_true",
                     help="select the epochs on the validation carving, then train again on "
                          "all training ratings for that many epochs before the test set")
    run.add_argument("--refit-from", metavar="DIR",
                     help="with --refit: take each cell's selection from the ok record of the "
                          "same cell, carving and config in this run folder where there is "
                          "one (it chose what a new selection fit would), else fit it")
    run.add_argument("--ignore-memory", action="store_true",
                     help="run cells whose estimated peak memory exceeds what this machine "
                          "has available (refused by default, before any work)")
    run.add_argument("-q", "--quiet", action="store_true",
                     help="print no progress and no per-cell lines: errors and the final "
                          "summary only")
    executor_options(run)
    plugin_option(run)
    config_options(run)
    return run


def _check_options(args, sub, chosen: list[str]) -> list[str]:
    """Checks across options (before any data is read); the variants that run."""
    from aebench.bench.engines import precision

    from aebench import models

    if args.mode == "per-user":
        lacking = [m for m in chosen if models.config(m).per_user is None]
        if args.all and not args.models:
            chosen = [m for m in chosen if m not in lacking]
        elif lacking:
            sub.error(f"argument --mode: {', '.join(lacking)} have no per-user recipe; "
                      f"per-user mode trains "
                      f"{', '.join(m for m in models.list() if models.config(m).per_user)}")
    if args.resume and not args.out:
        sub.error("argument --resume: give the run folder to resume with --out DIR")
    if args.precision not in ("fp32", precision.AUTO) and args.mode == "per-user":
        sub.error("argument --precision: per-user mode runs the classic float32 kernels")
    if args.refit_from and not args.refit:
        sub.error("argument --refit-from: it gives --refit its selections; add --refit")
    if args.refit_from and not (Path(args.refit_from) / "runs.jsonl").is_file():
        sub.error(f"argument --refit-from: {args.refit_from} holds no runs.jsonl")
    if args.refit and args.valid_fraction == 0:
        sub.error("argument --refit: it selects the epochs on the validation carving; "
                  "--valid-fraction 0 leaves none")
    if args.refit and args.mode == "per-user" and not args.valid_fraction:
        sub.error("argument --refit: per-user mode carves no validation by default; give "
                  "--valid-fraction")
    checks.check_executor(sub, args.executor, args.workers)
    return chosen


def main(args, sub) -> int:
    from aebench.bench.engines.device import available, resident_mb
    from aebench.bench.runs import plan as planning
    from aebench.bench.runs.runner import grid, pending, shared_cache

    base_mb = resident_mb() or 0.0  # this process before any data: a worker's floor
    if args.all:
        patterns, names = args.models or ["*"], args.datasets or ["ml-100k", "ml-1m"]
        devices = args.devices or available()
    else:
        if not args.models:
            sub.error("give -m/--models PATTERN (or --all)")
        patterns, names = args.models, args.datasets or ["ml-100k"]
        devices = args.devices or ["cpu"]
    if args.executor is None:
        args.executor = checks.default_executor(args.workers, devices, whole_grid=args.all)
    chosen = _check_options(args, sub, checks.resolve_models(sub, patterns))
    checks.check_devices(sub, "--devices", devices)
    names = checks.check_datasets(sub, names, args.split)
    for device in devices:
        checks.check_precision(sub, "--precision", args.precision, device)
    seeds = range(args.seed, args.seed + args.seeds)
    cells = grid(chosen, names, devices, seeds=seeds, split=args.split, mode=args.mode,
                 epochs=args.epochs, lr=args.lr, weight_decay=args.weight_decay,
                 batch_size=args.batch_size, valid_fraction=args.valid_fraction,
                 eval_every=args.eval_every, patience=args.patience, ks=tuple(args.ks),
                 relevance=args.relevance, data_dir=args.data_dir,
                 engine_paths=args.engine_paths, plugins=tuple(args.plugins),
                 refit=args.refit, refit_from=args.refit_from, precision=args.precision)
    if args.recipes:
        from aebench.bench.runs.tune import load_recipes

        try:
            cells = planning.with_recipes(cells, load_recipes(Path(args.recipes)))
        except ValueError as exc:
            sub.error(f"argument --recipes: {exc}")
    cells = planning.with_experiment(cells, args.experiment)
    out = Path(args.out or f"results/runs/{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}")
    checks.check_out(sub, out)
    done = checks.check_records(sub, out)
    cache = shared_cache(args.data_dir)
    fractions = sorted({c.validation for c in cells})
    for fraction in fractions:
        checks.preload(cache, names, args.split, seeds, fraction)
    the_plan = planning.plan(cells, out, done if args.resume else [], cache)
    the_plan = planning.with_costs(the_plan, cache, base_mb, planning.published_records())
    checks.check_memory(sub, the_plan, args)
    checks.check_out(sub, out, planning.output_bytes(the_plan, cache))
    if args.resume:
        print(f"resuming {out}: {the_plan.done} of {len(cells)} cells already ok")
    elif done and len(pending(cells, done)) < len(cells):
        print(f"note: {out} already holds records of some of these cells; without --resume "
              "they are trained again and both records are kept")
    for why in the_plan.skipped:
        print(f"skipped: {why}")
    if args.dry_run:
        return dry_run(the_plan, cache, parallel(args))
    return execute(args, sub, the_plan)


def execute(args, sub, the_plan) -> int:
    """Run the plan, write the reports, and print what ran."""
    from aebench.bench.reports import budget, report
    from aebench.bench.runs import records
    from aebench.bench.runs.grid import Interrupted, run_plan

    from .display import Display, Eta, minutes

    executor = checks.executor(sub, args)
    out = the_plan.out
    out.mkdir(parents=True, exist_ok=True)
    grid_started = time.perf_counter()
    eta = Eta(the_plan.cells, the_plan.costs, executor.parallel)
    if not args.quiet and (total := eta.total_s()) is not None:
        print(f"{len(the_plan.cells)} cells, {executor.parallel} at a time ({executor.name}): "
              f"about {minutes(total)} at the published run's pace")
    display = Display(len(the_plan.cells), quiet=args.quiet, local=executor.name == "local",
                      eta=eta)
    try:
        with display:
            finished = run_plan(the_plan, executor, display,
                                memory_mb=checks.memory_for(args))
    except Interrupted as stop:
        ok = sum(r.ok for r in stop.finished)
        print(f"\ninterrupted: {ok} of {len(the_plan.cells)} cells finished and are kept in "
              f"{out / 'runs.jsonl'}; resume with:\n  {resume_command(args, out)}",
              file=sys.stderr)
        return 130
    cells_done = time.perf_counter()
    failed = sum(not r.ok for r in finished)
    written = report.write(out)
    records.append_grid(out, {
        "argv": sys.argv[1:], "executor": executor.name, "cells": len(the_plan.cells),
        "failed": failed, "startup_s": grid_started - getattr(args, "started", grid_started),
        "cells_s": cells_done - grid_started, "report_s": time.perf_counter() - cells_done})
    written.append(budget.write(out))  # after the grid's line, which it reads
    print(summary_table(finished))
    print(f"{len(finished) - failed}/{len(finished)} runs ok; records in {out / 'runs.jsonl'}; "
          f"full tables in {out / 'tables.md'}")
    if not args.quiet:
        print("wrote " + ", ".join(str(p) for p in written))
    return 1 if failed else 0


def resume_command(args, out: Path) -> str:
    """The command line that resumes this run into `out`."""
    import shlex

    argv = [a for a in sys.argv[1:] if a != "--resume"]
    if args.out is None:
        argv += ["--out", str(out)]
    return "python -m bench " + " ".join(shlex.quote(a) for a in argv) + " --resume"


def summary_table(finished: list) -> str:
    """One row per variant, dataset and recipe that this run trained: its table metric (RMSE
    for a rating model, NDCG@10 otherwise) over the seeds it ran, their 95% interval, the
    median fit seconds, and failures."""
    from aebench.bench.evaluation.stats import mean_ci
    from tabulate import tabulate

    groups: dict[tuple, list] = {}
    for r in finished:
        groups.setdefault((r.model, r.dataset, r.split_name or "—", r.device, r.label),
                          []).append(r)
    rows = []
    for (model, dataset, split, device, label), recs in groups.items():
        ok = [r for r in recs if r.ok]
        metric = ("rmse" if ok and ok[0].rates else "ndcg@10")
        ci = mean_ci([r.metrics.get(metric) for r in ok])
        fit = sorted(r.timings.fit_s for r in ok)
        rows.append([model, dataset, split, device, label, metric.upper(),
                     "—" if not ok else f"{ci['mean']:.4f}",
                     "—" if ci["n"] < 2 else f"[{ci['ci_low']:.4f}, {ci['ci_high']:.4f}]",
                     len(ok), len(recs) - len(ok), "—" if not fit else f"{fit[len(fit) // 2]:.1f}"])
    return tabulate(rows, headers=["model", "dataset", "split", "device", "recipe", "metric",
                                   "mean", "95% CI", "seeds ok", "failed", "fit s (median)"],
                    tablefmt="github", disable_numparse=True)


def parallel(args) -> int | None:
    """How many cells the chosen executor runs at once, without starting it (None: a Ray
    cluster's, known once joined)."""
    from aebench.bench.runs.executors import process_workers

    if args.executor == "processes":
        return process_workers(args.workers, args.threads)
    return 1 if args.executor == "local" else None


def dry_run(the_plan, cache, at_once: int | None = 1) -> int:
    """Print the cells a run would train, what they read and their estimated cost, and the
    wall time on the chosen executor (`at_once` cells at a time); train nothing, write
    nothing."""
    from aebench.bench.runs.runner import model_config
    from tabulate import tabulate

    from .display import Eta, minutes

    rows, total, unknown = [], 0.0, 0
    for c, cost in zip(the_plan.cells, the_plan.costs):
        cfg = model_config(c)  # the recipe and overrides resolve
        split = cache.split(c.dataset, c.split_name, c.seed)
        est = cost.seconds
        total += est or 0.0
        unknown += est is None
        rows.append([c.model, c.dataset, split.name, c.seed, c.device, c.mode, c.recipe_name,
                     f"{split.n_users:,} x {split.n_items:,}, {split.train.nnz:,} train",
                     cfg.feedback, "—" if est is None else f"{est:.1f}",
                     f"{cost.peak_mb:,.0f}"])
    print(tabulate(rows, headers=["model", "dataset", "split", "seed", "device", "mode",
                                  "recipe", "data", "feedback", "est. s (published run)",
                                  "est. peak MB"],
                   tablefmt="github", disable_numparse=True))
    peak = max((c.peak_mb for c in the_plan.costs), default=0.0)
    print(f"dry run: {len(the_plan.cells)} cells, about {total / 60:.1f} min of the published "
          f"run's cost" + (f" plus {unknown} cells it did not run" if unknown else "")
          + f", the largest peak about {peak:,.0f} MB; nothing trained, nothing written "
          f"(would write {the_plan.out})")
    wall = Eta(the_plan.cells, the_plan.costs, at_once).total_s() if at_once else None
    if wall is not None and at_once > 1:
        print(f"{at_once} at a time, longest first: about {minutes(wall)} of wall time at the "
              "published run's pace")
    return 0
