"""aebench command line: `python -m bench {run,tune,list,report,compare,speed,perf-check,
timings,recommend}`.

argparse lives here only; `run` options map one to one onto `RunConfig` fields. Every option
is checked before any data is loaded or any run starts: a bad value exits with status 2 and
a message that names the option and the valid values (argparse's convention).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
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


# ---- option types: each names what it accepts, so argparse's message names option + values

def int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer "
                                             f"(give an integer >= {low})") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is out of range (give an integer "
                                             f">= {low})")
        return value
    return parse


def float_in(low: float, high: float = math.inf, low_open: bool = False,
             high_open: bool = True):
    lo, hi = "(" if low_open else "[", ")" if high_open else "]"
    span = f"a finite number in {lo}{low:g}, {'inf' if high == math.inf else f'{high:g}'}{hi}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number (give {span})") from None
        if not math.isfinite(value) or value < low or value > high or (
                low_open and value == low) or (high_open and value == high):
            raise argparse.ArgumentTypeError(f"{text} is out of range (give {span})")
        return value
    return parse


POSITIVE = int_at_least(1)
NONNEGATIVE = int_at_least(0)
LR = float_in(0.0, low_open=True)
WEIGHT_DECAY = float_in(0.0)
FRACTION = float_in(0.0, 1.0)
RELEVANCE = float_in(1.0, 5.0, high_open=False)


def _executor_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--executor", default="local", choices=["local", "ray"],
                        help="run cells (or trials) in this process, or as Ray tasks "
                             "(pip install -e .[ray])")
    parser.add_argument("--address", help="with --executor ray: join this Ray cluster "
                                           "(default: start a local one)")
    parser.add_argument("--threads", type=POSITIVE,
                        help="torch and numba threads per cell or trial (Ray: CPUs asked "
                             "per task, default 1; local: default torch's)")


def _config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE.toml",
                        help="experiment file: its keys are these options' long names, plus "
                             "[dataset.NAME] tables; options given here override it")
    parser.add_argument("--dry-run", action="store_true",
                        help="resolve everything (plugins, datasets, splits, recipes, "
                             "devices), print the cells with their estimated cost, and stop")


def _plugin_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plugin", dest="plugins", action="append", default=[],
                        metavar="MODULE_OR_FILE",
                        help="load model variants from this module, .py file or installed "
                             "entry point first (repeatable; installed `aebench.models` "
                             "entry points load anyway)")


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    from bench.engines.batched import EngineOptions  # noqa: F401 (presets named below)
    from bench.engines.precision import AUTO, PRECISIONS
    from bench.speed import PATHS

    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    subs = {}

    run = subs["run"] = sub.add_parser("run", help="train and evaluate models x datasets x "
                                                   "devices x seeds")
    run.add_argument("--all", action="store_true",
                     help="every registered variant x ml-100k and ml-1m x every available "
                          "device (with --mode per-user: the variants that have that mode)")
    run.add_argument("-m", "--models", nargs="+", action="extend",
                     help="fnmatch patterns, e.g. 'sae-*' (repeatable)")
    run.add_argument("-d", "--datasets", nargs="+", action="extend",
                     help="ml-100k, ml-1m, synthetic[-UxI], synthetic-ml1m (repeatable)")
    run.add_argument("--split", help="split protocol (default: u1 for ml-100k, "
                                     "random-90-10 otherwise)")
    run.add_argument("--devices", nargs="+", action="extend", choices=["cpu", "cuda"],
                     help="default: cpu (with --all: every available device)")
    run.add_argument("--mode", default="batched", choices=["batched", "per-user"])
    run.add_argument("--epochs", type=POSITIVE, help="override the most epochs of the recipe")
    run.add_argument("--lr", type=LR, help="override the learning rate (> 0)")
    run.add_argument("--weight-decay", type=WEIGHT_DECAY,
                     help="override the weight decay (>= 0)")
    run.add_argument("--batch-size", type=POSITIVE, help="override the batch size")
    run.add_argument("--seeds", type=POSITIVE, default=1,
                     help="run every cell for seeds SEED..SEED+N-1 (default 1)")
    run.add_argument("--seed", type=NONNEGATIVE, default=0, help="the first seed (default 0)")
    run.add_argument("--valid-fraction", type=FRACTION,
                     help="share of the training ratings carved out for validation (default "
                          "0.05 in batched mode, 0 = none in per-user mode)")
    run.add_argument("--eval-every", type=POSITIVE,
                     help="read the validation figure every N epochs (default: ~25 per run)")
    run.add_argument("--patience", type=POSITIVE, default=5,
                     help="validation reads without improvement before stopping (default 5)")
    run.add_argument("--ks", type=POSITIVE, nargs="+", default=[5, 10, 20],
                     help="cut-offs of the ranking metrics")
    run.add_argument("--relevance", type=RELEVANCE, default=4.0,
                     help="held-out ratings >= this count as relevant for ranking (1-5)")
    run.add_argument("--engine-paths", default="auto", choices=["auto", "cuda"],
                     help="code paths of the engines: each device's default, or the ones CUDA "
                          "takes (dense outputs, multi-tensor optimizer, torch-op RMSprop) on "
                          "any device")
    run.add_argument("--data-dir", help="folder with ml-100k/, ml-1m/ or their zips "
                                        "(default: BENCH_DATA_DIR, then the cache)")
    run.add_argument("--out", help="run folder (default: results/runs/<UTC timestamp>)")
    run.add_argument("--resume", action="store_true",
                     help="skip the cells whose ok record is already in --out's runs.jsonl")
    run.add_argument("--recipes", help="tuned recipes (a tuning folder's recipes.json): "
                                       "cells with one use it, the rest their defaults")
    run.add_argument("--precision", default=AUTO, choices=[AUTO, *PRECISIONS],
                     help="bf16: autocast of the dense products (CPU and CUDA), tf32: CUDA's "
                          "TF32 matmuls; float32 master weights, reductions and metrics, and "
                          "float32 wherever a family keeps it. auto (the default): each "
                          "variant's registered precision where the device has it natively "
                          "(bf16 where a parity study found no loss), fp32 elsewhere")
    run.add_argument("--refit", action="store_true",
                     help="select the epochs on the validation carving, then train again on "
                          "all training ratings for that many epochs before the test set")
    run.add_argument("--refit-from", metavar="DIR",
                     help="with --refit: take each cell's selection from the ok record of the "
                          "same cell, carving and config in this run folder where there is "
                          "one (it chose what a new selection fit would), else fit it")
    _executor_options(run)
    _plugin_option(run)
    _config_options(run)

    tune = subs["tune"] = sub.add_parser("tune", help="tune every matching variant with the "
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
    tune.add_argument("--seed", type=NONNEGATIVE, default=0,
                      help="seeds the sampler, the split, the carving and the weights")
    tune.add_argument("--out", help="output folder (default: results/tuning/<UTC timestamp>)")
    tune.add_argument("--storage", help="Optuna storage URL (default: sqlite file "
                                        "studies.db in --out)")
    tune.add_argument("--resume", action="store_true",
                      help="continue the studies in the storage up to --trials each")
    tune.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    tune.add_argument("--precision", default=AUTO, choices=[AUTO, *PRECISIONS],
                      help="as run's: every trial trains and scores in it")
    tune.add_argument("--valid-fraction", type=float_in(0.0, 1.0, low_open=True),
                      default=0.05, help="validation share of the training ratings")
    tune.add_argument("--eval-every", type=POSITIVE,
                      help="validation reads every N epochs (default: ~25 per run)")
    tune.add_argument("--patience", type=POSITIVE, default=5)
    tune.add_argument("--data-dir")
    _executor_options(tune)
    _plugin_option(tune)
    _config_options(tune)

    subs["list"] = sub.add_parser("list", help="show registered variants, datasets and "
                                               "split protocols")
    _plugin_option(subs["list"])

    sp = subs["speed"] = sub.add_parser("speed", help="time one epoch of every path each "
                                                      "variant has: classic, per-user, "
                                                      "batched, closed-form fit")
    sp.add_argument("-m", "--models", nargs="+", action="extend",
                    help="fnmatch patterns (default: every variant)")
    sp.add_argument("-d", "--dataset", default="ml-1m")
    sp.add_argument("--split", help="default: random-90-10 (u1 for ml-100k)")
    sp.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    sp.add_argument("--paths", nargs="+", default=list(PATHS), choices=list(PATHS))
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
    sp.add_argument("--data-dir")
    sp.add_argument("--out", help="also write the rows as JSON here")
    _plugin_option(sp)

    pc = subs["perf-check"] = sub.add_parser("perf-check", help="same-run speedup gate: "
                                             "batched and per-user vs the classic loop; exit 1 "
                                             "below a floor")
    pc.add_argument("--dataset", default="synthetic-ml1m")
    pc.add_argument("--slice-users", type=POSITIVE, default=300)
    pc.add_argument("--repeats", type=POSITIVE, default=3)
    pc.add_argument("--data-dir")

    tm = subs["timings"] = sub.add_parser("timings", help="pytest-benchmark suite "
                                                          "(tests/bench): save, compare")
    tm.add_argument("--storage", default=".benchmarks")
    tm.add_argument("--save", help="save this run under a name (e.g. a commit) for --compare")
    tm.add_argument("--compare", help="compare with the saved run of this name "
                                      "(default: the newest saved run, if any)")
    tm.add_argument("--fail", default="median:50%",
                    help="pytest-benchmark --benchmark-compare-fail expression (default "
                         "median:50%%: identical code varied by up to 45%% here; see README)")

    rec = subs["recommend"] = sub.add_parser("recommend", help="top-k unrated movies for one "
                                                               "user")
    rec.add_argument("--model", required=True)
    rec.add_argument("--dataset", required=True)
    rec.add_argument("--user", type=int, required=True, help="original MovieLens user id")
    rec.add_argument("-k", type=POSITIVE, default=10)
    rec.add_argument("--split", help="used only when a model must be trained")
    rec.add_argument("--mode", default="batched", choices=["batched", "per-user"],
                     help="used only when a model must be trained")
    rec.add_argument("--retrain", action="store_true", help="train even if weights exist")
    rec.add_argument("--runs", nargs="+", default=["results/runs", "results/published"],
                     help="folders searched for saved weights")
    rec.add_argument("--data-dir")
    _plugin_option(rec)
    rec.add_argument("--config", metavar="FILE.toml",
                     help="a run's experiment file: its [dataset.NAME] tables (titles "
                          "included) and its plugins")

    cmp_ = subs["compare"] = sub.add_parser("compare", help="paired tests of every variant "
                                            "against the best of its table, over seeds")
    cmp_.add_argument("dir", help="a run folder holding runs.jsonl and per_user/")
    cmp_.add_argument("--alpha", type=float_in(0.0, 1.0, low_open=True), default=0.05,
                      help="significance level after Holm's correction (default 0.05)")

    rep = subs["report"] = sub.add_parser("report", help="regenerate tables and plots from a "
                                                         "run folder")
    rep.add_argument("dir", help="a run folder holding runs.jsonl")
    rep.add_argument("--readme", help="also rewrite the generated blocks of this README "
                                      "(headline, reference, modes) from the folder's records "
                                      "and the per-user reference runs")
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
    rep.add_argument("--parity", nargs="*", metavar="DIR",
                     help="also write parity.md: this folder's bf16 cells against its fp32 "
                          "cells (bench/reports/parity.py), with the epoch ratios of its "
                          "speed-cpu.json, and its fp32 cells against those of each DIR (a "
                          "control); with --readme, its README block")
    return p, subs


# ---- checks that need more than one option, still before any data is read

def _load_plugins(sub: argparse.ArgumentParser, specs: list[str]) -> None:
    """The installed plugins (a broken one is reported once, on stderr, and the built-in
    variants still run), then the named ones (a broken one stops the command, exit 2)."""
    from models import plugins

    for message in plugins.load_installed():
        print(f"aebench: warning: {message}; its variants are not available", file=sys.stderr)
    for spec in specs:
        try:
            plugins.load(spec)
        except plugins.PluginError as exc:
            sub.error(f"argument --plugin: {exc}")


def _resolve_models(sub: argparse.ArgumentParser, patterns: list[str]) -> list[str]:
    """Every pattern must match a registered variant."""
    import models

    for pattern in patterns:
        if not models.list(pattern):
            broken = models.plugins.broken()
            sub.error(f"argument -m/--models: {pattern!r} matches no registered model; "
                      f"registered: {', '.join(models.list())}"
                      + (f"; broken plugins: {'; '.join(broken.values())}" if broken else ""))
    return models.list(patterns)


def _check_devices(sub: argparse.ArgumentParser, option: str, devices: list[str]) -> None:
    from bench.engines.device import available

    for dev in devices:
        if dev not in available():
            sub.error(f"argument {option}: {dev}: no CUDA device is available on this machine "
                      f"(available: {', '.join(available())})")


def _check_datasets(sub: argparse.ArgumentParser, names: list[str], split: str | None) -> None:
    import datasets
    from bench.runs.runner import DEFAULT_SPLIT, FALLBACK_SPLIT

    for name in names:
        try:
            datasets.check_name(name)
        except datasets.DatasetError as exc:
            sub.error(f"argument -d/--datasets: {exc}")
        spec = datasets.file_spec(name)
        if spec is not None and datasets.registered(name) is None:  # `-d PATH`, made absolute
            datasets.register_file(dataclasses.replace(
                spec, path=str(Path(spec.path).expanduser().resolve())))
        try:
            datasets.check_split(name, split or DEFAULT_SPLIT.get(name, FALLBACK_SPLIT))
        except datasets.DatasetError as exc:
            sub.error(f"argument --split: {exc}")


def _preload(cache, names: list[str], split: str | None, seeds: range) -> None:
    """Load every dataset and make every split once, before the grid: a dataset that cannot
    be had, or a split it cannot give, stops the grid once with the reason (exit 1)."""
    import datasets
    from bench.runs.runner import DEFAULT_SPLIT, FALLBACK_SPLIT

    for name in names:
        try:
            for seed in seeds:
                cache.split(name, split or DEFAULT_SPLIT.get(name, FALLBACK_SPLIT), seed)
        except datasets.DatasetError as exc:
            sys.exit(f"aebench: {name}: {exc}")


def _check_precision(sub: argparse.ArgumentParser, option: str, precision: str,
                     device: str) -> None:
    """Refuse a precision the device lacks (exit 2), and warn where bf16 is emulated."""
    from bench.engines import precision as prec

    if precision == prec.AUTO:  # never a precision the device lacks or emulates
        return
    try:
        prec.check(precision, device)
    except ValueError as exc:
        sub.error(f"argument {option}: {exc}")
    if prec.warning(precision, device):
        print(f"aebench: warning: {prec.warning(precision, device)}", file=sys.stderr)


def _applicable(cells, cache):
    """Drop, saying why, the cells a variant cannot run: a rating model on an implicit
    dataset or under a protocol that keeps interactions only (no ratings to learn), and a
    model that is not inductive under a held-out-users protocol."""
    import datasets
    import models
    from bench.runs.runner import not_inductive

    keep, skipped = [], {}
    for c in cells:
        split, cfg = c.split_name, models.config(c.model)
        if cfg.feedback == "explicit" and cache.dataset(c.dataset).implicit:
            skipped[c.model, c.dataset] = (f"{c.model} learns from ratings; {c.dataset} is "
                                           f"implicit (no ratings)")
        elif cfg.feedback == "explicit" and split in datasets.splits.INTERACTIONS:
            skipped[c.model, c.dataset] = (f"{c.model} learns from ratings; {split} keeps "
                                           f"interactions only")
        elif split in datasets.splits.HELDOUT_USERS and not cfg.inductive:
            skipped[c.model, c.dataset] = not_inductive(c.model, split)
        else:
            keep.append(c)
    for why in dict(sorted(skipped.items())).values():
        print(f"skipped: {why}")
    return keep


def _cmd_run(args, sub) -> int:
    from tqdm.auto import tqdm

    import models
    from bench.engines import precision
    from bench.engines.device import available
    from bench.reports import budget, report
    from bench.runs import records
    from bench.runs.executors import TaskLost
    from bench.runs.runner import cell_task, grid, lost_record, pending, save, shared_cache

    if args.all:
        patterns, names = args.models or ["*"], args.datasets or ["ml-100k", "ml-1m"]
        devices = args.devices or available()
    else:
        if not args.models:
            sub.error("give -m/--models PATTERN (or --all)")
        patterns, names = args.models, args.datasets or ["ml-100k"]
        devices = args.devices or ["cpu"]
    chosen = _resolve_models(sub, patterns)
    if args.mode == "per-user":
        lacking = [m for m in chosen if models.config(m).per_user is None]
        if args.all and not args.models:
            chosen = [m for m in chosen if m not in lacking]
        elif lacking:
            sub.error(f"argument --mode: {', '.join(lacking)} have no per-user recipe; "
                      f"per-user mode trains "
                      f"{', '.join(m for m in models.list() if models.config(m).per_user)}")
    _check_devices(sub, "--devices", devices)
    _check_datasets(sub, names, args.split)
    if args.resume and not args.out:
        sub.error("argument --resume: give the run folder to resume with --out DIR")
    seeds = range(args.seed, args.seed + args.seeds)
    cells = grid(chosen, names, devices, seeds=seeds, split=args.split, mode=args.mode,
                 epochs=args.epochs, lr=args.lr, weight_decay=args.weight_decay,
                 batch_size=args.batch_size, valid_fraction=args.valid_fraction,
                 eval_every=args.eval_every, patience=args.patience, ks=tuple(args.ks),
                 relevance=args.relevance, data_dir=args.data_dir,
                 engine_paths=args.engine_paths, plugins=tuple(args.plugins),
                 refit=args.refit, refit_from=args.refit_from, precision=args.precision)
    for device in devices:
        _check_precision(sub, "--precision", args.precision, device)
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
    if args.recipes:
        cells = _with_recipes(sub, cells, args.recipes)
    cells = _with_experiment(cells, args.experiment)
    out = Path(args.out or f"results/runs/{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}")
    done = records.load(out) if args.resume and (out / "runs.jsonl").is_file() else []
    todo = pending(cells, done)
    if args.resume:
        print(f"resuming {out}: {len(cells) - len(todo)} of {len(cells)} cells already ok")
    _preload(shared_cache(args.data_dir), names, args.split, seeds)
    todo = _applicable(todo, shared_cache(args.data_dir))
    if args.dry_run:
        return _dry_run(todo, out, shared_cache(args.data_dir))
    executor = _executor(sub, args)
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    grid_started = time.perf_counter()

    def finish(rec, artifacts, label):
        nonlocal failed
        save(rec, artifacts, out)
        if rec["status"] == "ok":
            tqdm.write(f"{label}: {summary(rec)}")
        else:
            failed += 1
            tqdm.write(f"{label}: FAILED {rec['error']}")

    def label(cell):
        return f"{cell.model} {cell.dataset} {cell.device} {cell.mode} s{cell.seed}"

    try:
        with tqdm(total=len(todo), desc="grid", unit="run") as bar, \
                tqdm(unit="epoch", leave=False, disable=executor.name != "local") as ebar:

            current = None  # the cell whose epochs the epoch bar counts

            def progress(cell):
                """Epoch progress of a cell that runs in this process (None on Ray, whose
                workers print nothing)."""
                if ebar.disable:
                    return None

                def on_epoch(row):
                    nonlocal current
                    if current is not cell:  # the first epoch of this cell
                        current = cell
                        ebar.reset()
                        ebar.set_description_str(label(cell))
                    ebar.update(1)
                    ebar.set_postfix(**{k: f"{row[k]:.4f}" for k in ("train_loss", "valid")
                                        if row.get(k) is not None})
                return on_epoch

            running = {executor.submit(cell_task, (c, progress(c)),
                                       gpus=int(c.device == "cuda")): c for c in todo}
            while running:  # the oldest unfinished cell is the one the local executor runs
                bar.set_postfix_str(label(next(iter(running.values()))))
                (ref, result), _ = executor.wait_one(list(running))
                cell = running.pop(ref)
                if isinstance(result, TaskLost):  # its worker died: this cell fails, not all
                    result = lost_record(cell, result), {}
                finish(*result, label(cell))
                bar.update(1)
    finally:
        executor.close()
    cells_done = time.perf_counter()
    written = report.write(out)
    records.append_grid(out, {
        "argv": sys.argv[1:], "executor": executor.name, "cells": len(todo),
        "failed": failed, "startup_s": grid_started - getattr(args, "started", grid_started),
        "cells_s": cells_done - grid_started, "report_s": time.perf_counter() - cells_done})
    written.append(budget.write(out))  # after the grid's line, which it reads
    print(f"{len(todo) - failed}/{len(todo)} runs ok; records in {out / 'runs.jsonl'}")
    print("wrote " + ", ".join(str(p) for p in written))
    return 1 if failed else 0


def _with_experiment(cells, exp):
    """Cells as the experiment file sets them: a model table's config overrides (recipe
    `custom`), and the definition of a user's dataset, which a worker registers itself."""
    import datasets

    out = []
    for c in cells:
        if exp is not None and c.model in exp.overrides:
            merged = {**dict(c.overrides), **exp.overrides[c.model]}
            c = dataclasses.replace(c, overrides=tuple(sorted(merged.items())),
                                    recipe="custom" if c.recipe == "default" else c.recipe)
        out.append(dataclasses.replace(c, dataset_file=datasets.registered(c.dataset)))
    return out


def _estimate(cell, published: list[dict]) -> float | None:
    """Seconds a cell took in the published run (median over seeds; the whole cell where the
    record timed it, else fit plus evaluation), if it ran."""
    from bench.reports.budget import cell_parts

    same = sorted(cell_parts(r)["cell_s"] for r in published
                  if r["model"] == cell.model and r["dataset"] == cell.dataset
                  and r.get("status") == "ok" and r["mode"] == cell.mode)
    return same[len(same) // 2] if same else None


def _dry_run(cells, out: Path, cache) -> int:
    """Print the cells a run would train, what they read and their estimated cost; train
    nothing, write nothing."""
    from tabulate import tabulate

    from bench.runs import records
    from bench.runs.runner import model_config

    published = Path("results/published/runs.jsonl")
    recs = records.load(published.parent) if published.is_file() else []
    rows, total, unknown = [], 0.0, 0
    for c in cells:
        cfg = model_config(c)  # the recipe and overrides resolve
        split = cache.split(c.dataset, c.split_name, c.seed)
        est = _estimate(c, recs)
        total += est or 0.0
        unknown += est is None
        rows.append([c.model, c.dataset, split.name, c.seed, c.device, c.mode, c.recipe,
                     f"{split.n_users:,} x {split.n_items:,}, {split.train.nnz:,} train",
                     cfg.feedback, "—" if est is None else f"{est:.1f}"])
    print(tabulate(rows, headers=["model", "dataset", "split", "seed", "device", "mode",
                                  "recipe", "data", "feedback", "est. s (published run)"],
                   tablefmt="github", disable_numparse=True))
    print(f"dry run: {len(cells)} cells, about {total / 60:.1f} min of the published run's "
          f"cost" + (f" plus {unknown} cells it did not run" if unknown else "")
          + f"; nothing trained, nothing written (would write {out})")
    return 0


def _executor(sub, args):
    from bench.runs import executors

    try:
        return executors.make(args.executor, args.address, args.threads)
    except RuntimeError as exc:
        sub.error(f"argument --executor: {exc}")


def _with_recipes(sub, cells, path):
    """Cells with a tuned recipe for their (model, dataset) in `path` use it."""
    import dataclasses

    from bench.runs.tune import load_recipes

    try:
        recipes = load_recipes(Path(path))
    except ValueError as exc:
        sub.error(f"argument --recipes: {exc}")
    out = []
    for c in cells:
        tuned = recipes.get(c.model, {}).get(c.dataset)
        out.append(c if tuned is None else dataclasses.replace(
            c, overrides=tuple(sorted(tuned["overrides"].items())), recipe="tuned",
            study=tuned["study"]))
    return out


def _cmd_tune(args, sub) -> int:
    import optuna

    import datasets
    import models
    from bench.engines.precision import resolve
    from bench.runs import tune
    from bench.runs.runner import RunConfig, shared_cache

    if args.experiment is not None and args.experiment.overrides:
        sub.error(f"argument --config: {args.experiment.path}: models: model tables with "
                  "overrides set a run's recipe; tune searches each variant's own space "
                  f"({', '.join(args.experiment.overrides)})")
    for option, value in (("-m/--models", args.models), ("-d/--datasets", args.datasets),
                          ("--trials", args.trials)):
        if not value:
            sub.error(f"the following arguments are required: {option} (or its key in "
                      "--config)")
    chosen = _resolve_models(sub, args.models)
    _check_devices(sub, "--device", [args.device])
    _check_precision(sub, "--precision", args.precision, args.device)
    _check_datasets(sub, args.datasets, args.split)
    empty = [m for m in chosen if not models.get(m).space.params]
    chosen = [m for m in chosen if m not in empty]
    if empty:
        print(f"no search space, nothing to tune: {', '.join(empty)}")
    out = Path(args.out or f"results/tuning/{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}")
    storage = args.storage or f"sqlite:///{out / 'studies.db'}"
    _preload(shared_cache(args.data_dir), args.datasets, args.split,
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
    executor = _executor(sub, args)
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
                if not _applicable([cell], shared_cache(args.data_dir)):
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


def summary(rec: dict) -> str:
    """One line of a finished cell's figures."""
    m, v = rec["metrics"], rec.get("validation")
    parts = [f"rmse {m['rmse']:.4f}" if "rmse" in m else "rmse —",
             f"ndcg@10 {m['ndcg@10']:.4f}" if m.get("ndcg@10") is not None else "ndcg —"]
    if v:
        parts.append(f"valid {v['metric']} {v['best']:.4f} @ epoch {v['best_epoch']}")
    parts.append(f"epoch {rec['timings']['epoch_s_median']:.3f}s")
    return "  ".join(parts)


def _cmd_list(args, sub) -> int:
    from tabulate import tabulate

    import datasets
    import models

    def recipe(r, stages=()) -> str:
        if r is None:
            return "—"
        if r.optimizer == "lbfgs" and stages:
            return "lbfgs, " + ", then ".join(
                f"{s.name} {s.rounds} rounds of {s.iterations or r.iterations}" for s in stages)
        if r.optimizer == "lbfgs":
            return f"lbfgs, {r.epochs} rounds of {r.iterations} iterations"
        bs = "full" if r.batch_size == 0 else r.batch_size
        sched = f" ({r.schedule})" if r.schedule != "constant" else ""
        return (f"{r.optimizer} lr {r.lr:g}{sched} wd {r.weight_decay:g} bs {bs} "
                f"x{r.epochs}")

    rows, per_dataset = [], []
    for name in models.list():
        v = models.get(name)
        c = v.config
        model = v.build(2, 2, c)
        per_user = c.per_user
        pu = "—" if per_user is None else f"{recipe(per_user)} loss/{per_user.loss}"
        kind = v.kind + (f" (plugin {v.plugin})" if v.plugin else "")
        rows.append([name, kind, c.feedback, c.rows, model.trainer, pu,
                     recipe(c.batched, model.stages()), ", ".join(v.space.params) or "—",
                     v.source])
        per_dataset += [f"  {name} on {d}: " + ", ".join(f"{k}={val}" for k, val in o.items())
                        for d, o in v.datasets.items()]
    print(tabulate(rows, headers=["model", "kind", "feedback", "rows", "trains", "per-user",
                                  "batched", "search space", "source"], tablefmt="github"))
    if per_dataset:
        print("\ndefaults that differ per dataset:\n" + "\n".join(per_dataset))
    print()
    print("datasets: " + ", ".join(datasets.names()) + " (synthetic-<users>x<items> and "
          "ratings files PATH.csv / PATH.tsv too)")
    print("splits:   " + ", ".join(datasets.PROTOCOLS))
    return 0


def _cmd_report(args, sub) -> int:
    from bench.reports import budget, report
    from bench.runs import records

    if not (Path(args.dir) / "runs.jsonl").is_file():
        sub.error(f"argument dir: {args.dir} holds no runs.jsonl")
    for option, dirs in (("--protocols", args.protocols), ("--parity", args.parity)):
        missing = [d for d in dirs or [] if not (Path(d) / "runs.jsonl").is_file()]
        if missing:
            sub.error(f"argument {option}: {', '.join(missing)} holds no runs.jsonl")
    written = [*report.write(Path(args.dir)), budget.write(Path(args.dir))]
    if args.protocols is not None:
        from bench.reports import verdict

        written += verdict.write([Path(args.dir), *map(Path, args.protocols)], Path(args.dir))
    if args.reproduction:  # the folder of the publishers' protocols: README's block of it
        from bench.reports import literature

        written += literature.write(records.load(Path(args.dir)), Path(args.dir),
                                    Path(args.readme) if args.readme else None)
    elif args.parity is not None:  # both precisions' folder: parity.md and README's block
        from bench.reports import parity

        written += parity.write(Path(args.dir), [Path(d) for d in args.parity],
                                readme=Path(args.readme) if args.readme else None)
    elif args.readme:
        written.append(report.update_readme(
            Path(args.readme), Path(args.dir), Path(args.reference),
            Path(args.tuned) if args.tuned else None, Path(args.tuning) if args.tuning else None,
            Path(args.heldout) if args.heldout else None))
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def _cmd_compare(args, sub) -> int:
    from bench.reports import report
    from bench.runs import records

    run_dir = Path(args.dir)
    if not (run_dir / "runs.jsonl").is_file():
        sub.error(f"argument dir: {args.dir} holds no runs.jsonl")
    recs = records.load(run_dir)
    for key, cells in report.groups(recs).items():
        for spec in (report.RATING, report.RANKING):
            _, md = report.comparison(run_dir, cells, spec, args.alpha)
            if md:
                print(f"## {report.title(key, spec)}\n\n{md}\n")
    return 0


def _cmd_speed(args, sub) -> int:
    import json

    import torch
    from tabulate import tabulate

    import models
    from bench import speed
    from bench.engines import precision
    from bench.runs import records
    from bench.runs.runner import DEFAULT_SPLIT, FALLBACK_SPLIT, SplitCache
    from bench.speed import peers as peer_lib

    names = _resolve_models(sub, args.models or (list(peer_lib.PEERS) if args.peers else ["*"]))
    if args.peer_python and not args.peers:
        sub.error("--peer-python needs --peers")
    if args.peers and args.device != "cpu":
        sub.error("--peers: the peers run on the CPU only (RecBole's environment here is its "
                  "CPU build)")
    _check_devices(sub, "--device", [args.device])
    _check_datasets(sub, [args.dataset], args.split)
    device = torch.device(args.device)
    split_name = args.split or DEFAULT_SPLIT.get(args.dataset, FALLBACK_SPLIT)
    cache = SplitCache(args.data_dir)
    _preload(cache, [args.dataset], args.split, range(1))
    split = cache.split(args.dataset, split_name, 0)
    for p in args.precisions:
        _check_precision(sub, "--precisions", p, args.device)
    if args.peers:
        return _speed_peers(args, names, split, device)
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


def _speed_peers(args, names, split, device) -> int:
    """`speed --peers`: each family with a peer, then its peer, back to back."""
    import json

    import torch

    from bench.runs import records
    from bench.speed import peers as peer_lib

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


def _cmd_recommend(args, sub) -> int:
    from tabulate import tabulate

    from bench import recommend
    from bench.runs.runner import RunConfig, SplitCache, run_one

    _resolve_models(sub, [args.model])
    _check_datasets(sub, [args.dataset], args.split)
    cache = SplitCache(args.data_dir)
    _preload(cache, [args.dataset], args.split, range(1))
    path = None if args.retrain else recommend.find_weights(
        args.model, args.dataset, [Path(r) for r in args.runs])
    if path is None:
        out = Path(args.runs[0]) / f"recommend-{args.model}-{args.dataset}"
        print(f"no saved {args.model} model for {args.dataset} under {', '.join(args.runs)}; "
              f"training one ({args.mode}) into {out}")
        rec = run_one(RunConfig(model=args.model, dataset=args.dataset, split=args.split,
                                mode=args.mode, data_dir=args.data_dir), cache, out)
        if rec["status"] != "ok":
            sys.exit(f"aebench: training failed: {rec['error']}")
        path = out / rec["weights"]
    else:
        print(f"using the saved model {path}")
    try:
        model, cfg, split, ckpt = recommend.load(
            path, lambda name, seed: cache.split(args.dataset, name, seed))
    except ValueError as exc:
        sys.exit(f"aebench: {exc}; rerun with --retrain")
    try:
        table = recommend.recommend(model, cfg, split, cache.dataset(args.dataset).items,
                                    args.user, args.k)
    except KeyError as exc:
        sys.exit(f"aebench: --user: {exc.args[0]}")
    u = split.user_index(args.user)
    print(f"top {args.k} for user {args.user} ({args.model}, {args.dataset} "
          f"{ckpt['split']['name']}), excluding the {split.train[u].nnz} + {split.test[u].nnz} "
          "movies the user rated:")
    print(tabulate(table, headers="keys", tablefmt="github", showindex=False, floatfmt=".3f"))
    return 0


def _cmd_perf_check(args, sub) -> int:
    import torch
    from tabulate import tabulate

    from bench import speed
    from bench.runs.runner import SplitCache

    _check_datasets(sub, [args.dataset], "random-90-10")
    cache = SplitCache(args.data_dir)
    _preload(cache, [args.dataset], "random-90-10", range(1))
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


def _cmd_timings(args, extra) -> int:
    from bench.speed import timings

    return timings.main(args.storage, args.save, args.compare, args.fail, extra)


COMMANDS = {"run": _cmd_run, "list": _cmd_list, "report": _cmd_report,
            "compare": _cmd_compare, "speed": _cmd_speed, "recommend": _cmd_recommend,
            "perf-check": _cmd_perf_check, "tune": _cmd_tune}


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    _check_datasets_package()
    parser, subs = _parser()
    args, extra = parser.parse_known_args(argv)
    args.started = started  # `run` reports its start-up from here (grids.jsonl)
    if args.command == "timings":
        return _cmd_timings(args, extra)
    if extra:
        subs[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    sub = subs[args.command]
    args.experiment = None
    if getattr(args, "config", None):
        rest = list(sys.argv[1:] if argv is None else argv)
        rest = rest[rest.index(args.command) + 1:]
        if args.command == "recommend":  # a run's file: only its datasets and plugins
            run = _read_experiment(subs["run"], argparse.Namespace(config=args.config), [],
                                   report=sub)
            args.plugins = [*run.values.get("plugins", []), *args.plugins]
        else:
            args.experiment = _read_experiment(sub, args, rest)
    if hasattr(args, "plugins"):
        _load_plugins(sub, args.plugins)
    if args.experiment is not None:
        from bench.runs.experiment import ExperimentError

        try:
            args.experiment.check_overrides()
        except ExperimentError as exc:
            sub.error(f"argument --config: {exc}")
    return COMMANDS[args.command](args, sub)


def _read_experiment(sub: argparse.ArgumentParser, args: argparse.Namespace,
                     argv: list[str], report: argparse.ArgumentParser | None = None):
    """Read `--config` against `sub`'s options, register its datasets, and fill the options
    the command line did not set (exit 2 naming the file, line and key on any error, through
    `report`, default `sub`)."""
    import datasets
    from bench.runs import experiment

    report = report or sub
    try:
        exp = experiment.load(args.config, sub)
        for spec in exp.datasets:
            try:
                datasets.register_file(spec)
            except datasets.DatasetError as exc:
                raise experiment.ExperimentError(
                    f"{exp.path}:{experiment.header_line(exp.text, f'dataset.{spec.name}')}: "
                    f"{exc}") from None
    except experiment.ExperimentError as exc:
        report.error(f"argument --config: {exc}")
    experiment.merge(exp, args, experiment.given(sub, argv))
    return exp


if __name__ == "__main__":
    sys.exit(main())
