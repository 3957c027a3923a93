"""The runner: one linear function per run (load, split, carve validation, build, fit,
evaluate once on test, record) and the grid of models x datasets x devices x seeds, which
records every cell, failed ones included.

Refit (`RunConfig.refit`, `run --refit`): select on the validation carving as always (the
early-stopping epoch, or L-BFGS round, and the recipe), then build the variant again with
the same seed and train it on all the training ratings for the selected number of epochs,
without reading validation; that model meets the test set once. GC-MC reports this way, and
it sets the suite beside papers that train on the whole 90% without selecting on test. A
closed-form family refits with the same hyperparameters."""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import resource
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from aebench.bench.engines import precision
from aebench.bench.engines.batched import EngineOptions
from aebench.bench.engines.device import MemoryProbe
from aebench.bench.engines.train import Stopping, fit, recipe_for
from aebench.bench.evaluation.evaluate import evaluate, validate, validation_metric
from aebench.bench.runs import records

from aebench import datasets, models

DEFAULT_SPLIT = {"ml-100k": "u1", "ml-1m": "random-90-10"}
FALLBACK_SPLIT = "random-90-10"
VALID_FRACTION = 0.05  # default validation carving of the training ratings


@dataclass(frozen=True)
class RunConfig:
    """One cell of the grid. `None` fields keep the variant's defaults for the mode."""

    model: str
    dataset: str
    split: str | None = None        # default: u1 for ml-100k, random-90-10 otherwise
    mode: str = "batched"           # per-user | batched
    device: str = "cpu"
    seed: int = 0                   # the split (seeded protocols), carving, weights, batches
    epochs: int | None = None       # the most epochs (early stopping may end sooner)
    lr: float | None = None
    weight_decay: float | None = None
    batch_size: int | None = None
    valid_fraction: float | None = None  # None: 0.05 in batched mode, 0 (off) in per-user mode
    eval_every: int | None = None   # validation reads every N epochs (default: ~25 per run)
    patience: int = 5               # validation reads without improvement before stopping
    ks: tuple[int, ...] = (5, 10, 20)  # cut-offs of the ranking metrics
    relevance: float = 4.0          # held-out ratings >= this are relevant for ranking
    data_dir: str | None = None
    engine_paths: str = "auto"      # auto | cuda (take CUDA's code paths on any device)
    overrides: tuple[tuple[str, Any], ...] = ()  # config overrides of a tuned recipe
    recipe: str = "default"         # default | tuned (which recipe the cell uses)
    study: str | None = None        # the tuning study a tuned recipe came from
    plugins: tuple[str, ...] = ()   # plugins to load first (`--plugin`), in any worker
    dataset_file: Any = None        # a user's dataset (`datasets.user.FileSpec`), if it is one
    refit: bool = False             # retrain on all training ratings for the selected epochs
    refit_from: str | None = None   # a run folder whose records of the same cells selected them
    precision: str = "fp32"         # fp32 | bf16 | tf32 (where the family allows it)

    @property
    def split_name(self) -> str:
        return self.split or default_split(self.dataset)

    @property
    def validation(self) -> float:
        """The validation share carved from the training ratings (0: none)."""
        if self.valid_fraction is not None:
            return self.valid_fraction
        return 0.0 if self.mode == "per-user" else VALID_FRACTION

    CLI_OVERRIDES = ("epochs", "lr", "weight_decay", "batch_size")

    def applied_overrides(self) -> dict[str, Any]:
        """The command line's recipe overrides (`--epochs`, `--lr`, `--weight-decay`,
        `--batch-size`) as config overrides of the mode's recipe section, where the variant
        has a recipe for the mode (a closed-form fit has no epochs to override)."""
        given = {k: getattr(self, k) for k in self.CLI_OVERRIDES if getattr(self, k) is not None}
        if not given:
            return {}
        try:
            if models.config(self.model).recipe(self.mode) is None:
                return {}
        except KeyError:  # a plugin's variant that is not loaded here: the record says
            pass
        section = "per_user" if self.mode == "per-user" else "batched"
        return {f"{section}.{k}": v for k, v in given.items()}

    def all_overrides(self) -> dict[str, Any]:
        """Every config override the cell trains with: its recipe's (tuned, or an experiment
        file's), then the command line's."""
        return {**dict(self.overrides), **self.applied_overrides()}

    @property
    def recipe_name(self) -> str:
        """`default`, `tuned` or `custom`: a recipe the command line changed is `custom`,
        whatever it started from."""
        return "custom" if self.applied_overrides() else self.recipe

    def key(self) -> tuple:
        """What identifies a cell for `--resume` and `--refit-from`: where it runs, its
        recipe with every override, and every setting that changes what it trains or how it
        is measured. A resume never takes a record made under other settings."""
        return (self.model, self.dataset, self.split_name, self.mode, self.device, self.seed,
                records.recipe_label(self.recipe_name, self.refit, self.precision),
                json.dumps(records._clean(self.all_overrides()), sort_keys=True),
                self.validation, self.eval_every, self.patience, tuple(self.ks),
                float(self.relevance), self.engine_paths)

    @classmethod
    def from_run_config(cls, values: dict) -> RunConfig:
        """The cell a record's `run_config` describes (fields it lacks keep their defaults;
        a user's dataset definition is not rebuilt)."""
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in values.items() if k in names and k != "dataset_file"}
        kw["overrides"] = tuple((k, tuple(v) if isinstance(v, list) else v)
                                for k, v in kw.get("overrides") or ())
        for k in ("ks", "plugins"):
            if k in kw:
                kw[k] = tuple(kw[k])
        return cls(**kw)


def default_split(dataset: str) -> str:
    """The split a dataset runs under when none is named."""
    return DEFAULT_SPLIT.get(dataset, FALLBACK_SPLIT)


def available_devices() -> list[str]:
    from aebench.bench.engines.device import available

    return available()


class SplitCache:
    """Loads each dataset, split and validation carving once per grid; a dataset that cannot
    be had fails once, and every later request repeats that error without trying again."""

    def __init__(self, data_dir: str | None = None):
        self.data_dir = data_dir
        self._data: dict[str, datasets.Dataset | Exception] = {}
        self._splits: dict[tuple, datasets.Split] = {}
        # what loading each dataset and its splits grew this process's resident memory by,
        # and the most it held above that while loading (the dry run's memory estimate)
        self.resident_mb: dict[str, float] = {}
        self.loading_mb: dict[str, float] = {}

    def _measured(self, name: str, make):
        from aebench.bench.engines.device import MemoryProbe, resident_mb

        before, probe = resident_mb(), MemoryProbe(torch.device("cpu"))
        probe.reset()
        try:
            return make()
        finally:
            after, peak = resident_mb(), probe.peak_mb()
            if before is not None and after is not None:
                held = self.resident_mb.get(name, 0.0)
                self.resident_mb[name] = held + max(0.0, after - before)
                if peak is not None and probe.kind == "cpu-rss":
                    self.loading_mb[name] = max(self.loading_mb.get(name, 0.0),
                                                held + peak - before)

    def dataset(self, name: str) -> datasets.Dataset:
        if name not in self._data:
            try:
                self._data[name] = self._measured(
                    name, lambda: datasets.load(name, self.data_dir))
            except datasets.DatasetError as exc:
                self._data[name] = exc
        found = self._data[name]
        if isinstance(found, Exception):
            raise found
        return found

    def split(self, name: str, split: str, seed: int) -> datasets.Split:
        key = (name, split, seed)
        if key not in self._splits:
            data = self.dataset(name)
            self._splits[key] = self._measured(
                name, lambda: datasets.make_split(data, split, seed))
        return self._splits[key]

    def fitting_view(self, name: str, split: str, seed: int, fraction: float) -> datasets.Split:
        """What training and model selection see: the validation carving of the split's
        training ratings (`fraction` > 0), or the training ratings alone; never a test
        rating (the carving is made from `Split.without_test()`)."""
        key = (name, split, seed, fraction)
        if key not in self._splits:
            train_only = self.split(name, split, seed).without_test()
            self._splits[key] = (datasets.carve_validation(train_only, fraction, seed)
                                 if fraction else train_only)
        return self._splits[key]


_CACHES: dict[str | None, SplitCache] = {}


def shared_cache(data_dir: str | None = None) -> SplitCache:
    """This process's `SplitCache` for `data_dir`: tasks that run here, or in a Ray worker,
    load each dataset and split once per process."""
    if data_dir not in _CACHES:
        _CACHES[data_dir] = SplitCache(data_dir)
    return _CACHES[data_dir]


def prepare(cfg: RunConfig) -> None:
    """What a cell needs in whichever process runs it (a Ray worker too): the installed model
    plugins, the ones the cell names, and its dataset's definition if a user's file."""
    from aebench.models import plugins

    plugins.load_installed()
    for spec in cfg.plugins:
        plugins.load(spec)
    if cfg.dataset_file is not None and datasets.registered(cfg.dataset) is None:
        datasets.register_file(cfg.dataset_file)


def cell_task(cfg: RunConfig, on_epoch=None) -> tuple[dict, dict]:
    """One grid cell as an executor's task: its record and artifacts, computed with this
    process's cache."""
    return execute(cfg, shared_cache(cfg.data_dir), on_epoch)


def model_config(cfg: RunConfig):
    """The variant's config for the cell's dataset with every override it trains with."""
    return models.config(cfg.model, cfg.dataset, **cfg.all_overrides())


@dataclass
class Trained:
    """A model trained on a cell's fitting view, and how the training went."""

    model: Any
    config: Any
    view: datasets.Split
    x: Any
    result: Any
    validation: dict | None
    memory: dict


def train_cell(cfg: RunConfig, view: datasets.Split, on_epoch=None, on_valid=None,
               epochs: int | None = None) -> Trained:
    """Everything before the test set: build the variant and fit it on `view`, the cell's
    fitting view (`SplitCache.fitting_view`: no test rating in it), reading the validation
    figure for early stopping when the view carries a validation set. `on_valid(epoch,
    value)` sees each validation read (tuning's pruning hook; it may raise to stop). With
    `epochs` (a refit), exactly that many epochs run and no validation is read."""
    variant = models.get(cfg.model)
    mcfg = model_config(cfg)
    recipe = recipe_for(mcfg, cfg.mode)
    if recipe is None and cfg.mode == "per-user":
        raise ValueError(f"{cfg.model} has no per-user recipe")
    device = torch.device(cfg.device)
    x = mcfg.view(view.train)
    if view.fit_rows is not None:  # held-out users: their rows are fold-in input only
        if not mcfg.inductive:
            raise ValueError(not_inductive(cfg.model, view.name))
        x = (sp.diags(view.fit_rows.astype(np.float32)) @ x).tocsr()
        x.eliminate_zeros()
        x.sort_indices()
    if view.cold_items and "item" not in mcfg.features:
        raise ValueError(not_cold_items(cfg.model, view.name))
    lacking = missing_features(mcfg, cfg.dataset, {"item": view.item_side is not None,
                                                   "user": view.user_side is not None},
                               cfg.model)
    if lacking:
        raise ValueError(lacking)
    torch.manual_seed(cfg.seed)
    model = variant.make(x.shape[0], x.shape[1], mcfg,
                         mcfg.side(view.user_side, view.item_side)).to(device)
    metric, higher = validation_metric(mcfg)
    if model.trainer == "closed-form":
        on_valid = None  # one read, after the fit: nothing left to prune
    monitor = None
    if cfg.validation and epochs is None:
        def monitor(epoch: int) -> float:
            with precision.context(cfg.precision, device, mcfg.low_precision, "score"):
                value = validate(model, mcfg, view, device, cfg.relevance)
            if on_valid is not None:
                on_valid(epoch, value)
            return value
    stopping = Stopping(cfg.eval_every or 0, cfg.patience, higher)
    probe = MemoryProbe(device)
    probe.reset()
    result = fit(model, x, mcfg, cfg.mode, device, cfg.seed, epochs=epochs, monitor=monitor,
                 stopping=stopping, on_epoch=on_epoch,
                 options=dataclasses.replace(EngineOptions.preset(cfg.engine_paths),
                                             precision=cfg.precision))
    epochs = recipe.epochs if recipe else 1
    validation = None if monitor is None else {
        "fraction": view.carved, "fingerprint": view.fingerprint,
        "n_valid": int(view.test.nnz), "metric": metric, "higher_is_better": higher,
        "best": result.best_value, "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run, "stopped_early": result.stopped_early,
        "eval_every": stopping.every(epochs), "patience": cfg.patience}
    return Trained(model, mcfg, view, x, result, validation, probe.fields())


def refit(cfg: RunConfig, cache: SplitCache, epochs: int | None, on_epoch=None) -> Trained:
    """The variant trained again, same seed, on all the split's training ratings for the
    `epochs` its selection chose on validation (its best read; 1 for a closed-form fit)."""
    if not cfg.validation:
        raise ValueError("--refit selects the epochs on the validation carving; it needs a "
                         "valid fraction > 0")
    if epochs is None:
        raise ValueError("--refit: the selection fit read no validation figure")
    full = cache.fitting_view(cfg.dataset, cfg.split_name, cfg.seed, 0.0)
    return train_cell(cfg, full, on_epoch, epochs=epochs)


def earlier_selection(cfg: RunConfig, view: datasets.Split) -> dict | None:
    """With `refit_from`, the ok record there of this very selection: the same cell (not
    refitted), the same validation carving and the same config. Its best epoch is what this
    cell's own selection fit would choose (same seed, same data, same code path), so the
    refit need not train it again."""
    if cfg.refit_from is None:
        return None
    want = dataclasses.replace(cfg, refit=False).key()
    mcfg = model_config(cfg)
    found = None
    for r in _records_of(Path(cfg.refit_from)):
        if (r.ok and record_key(r) == want and r.validation is not None
                and r.validation.fingerprint == view.fingerprint
                and same_config(r.config, mcfg)):
            found = r
    return found


def same_config(recorded: dict | None, mcfg) -> bool:
    """Whether a record's config is `mcfg`. A field the record lacks (written before the
    field existed) matches where `mcfg` holds that field's default: a field joins a config
    with the default that keeps the behaviour before it (`low_precision` did so). `note`,
    the variant's prose about its recipe, changes nothing a fit does and is not compared."""
    import json

    if recorded is None:
        return False
    recorded = {k: v for k, v in recorded.items() if k != "note"}
    now = records._clean(dataclasses.asdict(mcfg))
    now.pop("note", None)
    defaults = {f.name: records._clean(f.default) for f in dataclasses.fields(mcfg)
                if f.default is not dataclasses.MISSING}
    for name in set(now) - set(recorded):
        if name not in defaults or now.pop(name) != defaults[name]:
            return False
    return json.dumps(now, sort_keys=True) == json.dumps(recorded, sort_keys=True)


_READ: dict[Path, tuple[tuple[int, int], list[records.Record]]] = {}


def _records_of(folder: Path) -> list[records.Record]:
    """`records.read(folder)`, read again only when its runs.jsonl changed (size, mtime):
    a refitted grid asks once per cell."""
    path = (folder / "runs.jsonl").resolve()
    stat = path.stat()
    stamp = (stat.st_size, stat.st_mtime_ns)
    if path not in _READ or _READ[path][0] != stamp:
        _READ[path] = (stamp, records.read(path))
    return _READ[path][1]


def not_inductive(model: str, split: str) -> str:
    """Why `model` cannot run under a held-out-users protocol."""
    why = ("it reads items' rows, in which every user is an input it trained on"
           if models.config(model).rows == "item" else
           "its config does not declare `inductive`: a vector per training user, as MF, "
           "biases and CDAE keep, cannot score a user it never saw")
    return (f"{model} is not inductive ({why}); {split.split('/')[0]} scores users no model "
            f"trained on, from their fold-in rows")


def not_cold_items(model: str, split: str) -> str:
    """Why `model` cannot run under a protocol that holds out whole items."""
    return (f"{model} reads no item features; {split.split('/')[0]} scores films no one has "
            f"rated, which such a model only knows as an empty row or an untrained vector")


def missing_features(cfg, dataset: str, has: dict[str, bool], model: str) -> str:
    """Why a variant cannot run on `dataset`: a kind of features its config declares that
    the dataset lacks (`has`: kind -> whether the dataset or split holds it); "" where none
    is missing."""
    lacking = [k for k in cfg.features if not has[k]]
    if not lacking:
        return ""
    what = {"item": "item features (genres, year)", "user": "user features (demographics)"}
    return (f"{model} reads {' and '.join(cfg.features)} features; {dataset} has no "
            f"{' and no '.join(what[k] for k in lacking)}")


def base_record(cfg: RunConfig) -> dict:
    """What every record of a cell holds before it runs (the fields `execute` fills in)."""
    return {"schema": records.SCHEMA, "model": cfg.model, "dataset": cfg.dataset,
            "mode": cfg.mode, "device": cfg.device, "seed": cfg.seed,
            "run_config": records._clean(dataclasses.asdict(cfg)),
            "recipe": {"name": cfg.recipe_name, "study": cfg.study,
                       "overrides": cfg.all_overrides()},
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def lost_record(cfg: RunConfig, error: Exception) -> records.Record:
    """The failed record of a cell whose worker died under it (`executors.TaskLost`)."""
    return records.Record.from_json({**base_record(cfg), "status": "failed",
                                     "error": f"worker lost: {error}"})


def execute(cfg: RunConfig, cache: SplitCache,
            on_epoch=None) -> tuple[records.Record, dict]:
    """Train one cell on its fitting view, then evaluate it once on the test set. Returns the
    record and its artifacts (the weights and the per-user values, for `save`); never raises
    for a failed run, records it instead. Writes nothing: whichever process runs a cell, only
    the driver writes."""
    record = base_record(cfg)
    artifacts: dict = {}
    device = torch.device(cfg.device)
    started = time.perf_counter()
    try:
        prepare(cfg)
        variant = models.get(cfg.model)
        record["plugin"] = models.plugins.info(cfg.model)
        record["env"] = records.environment(device)
        split = cache.split(cfg.dataset, cfg.split_name, cfg.seed)
        record["split"] = split.describe()
        view = cache.fitting_view(cfg.dataset, cfg.split_name, cfg.seed, cfg.validation)
        earlier = earlier_selection(cfg, view) if cfg.refit else None
        setup_s = time.perf_counter() - started
        if earlier is None:
            trained = train_cell(cfg, view, on_epoch)
        # the selection's validation reads (none in this cell when --refit-from chose)
        reads = (0, 0.0) if earlier is not None else (len(trained.result.curve),
                                                      trained.result.valid_s)
        if cfg.refit:
            if earlier is not None:
                validation, selection_s = earlier.validation, earlier.timings.fit_s
                epochs = validation.best_epoch
            else:
                validation, selection_s = trained.validation, trained.result.fit_s
                epochs = trained.result.best_epoch
            trained = refit(cfg, cache, epochs, on_epoch)
            record["refit"] = {"epochs": trained.result.epochs_run,
                               "fit_s": trained.result.fit_s, "n_train": int(trained.x.nnz),
                               "selection_fit_s": selection_s,
                               "selected_in": None if earlier is None else
                               f"{cfg.refit_from} ({earlier.started})"}
            trained.validation = validation
        mcfg, result = trained.config, trained.result
        recipe = recipe_for(mcfg, cfg.mode)
        record["config"] = dataclasses.asdict(mcfg)
        record["variant"] = {"kind": variant.kind, "feedback": mcfg.feedback,
                             "rows": mcfg.rows, "rates": mcfg.rates}
        record["trainer"] = trained.model.trainer
        record["epochs"] = recipe.epochs if recipe else 1
        record["history"] = result.history
        record["validation"] = trained.validation
        t0 = time.perf_counter()
        # the test set, touched once: the model reads the full training ratings
        with precision.context(cfg.precision, device, mcfg.low_precision, "score"):
            record["metrics"], per_user = evaluate(trained.model, mcfg, split, device,
                                                   cfg.ks, cfg.relevance)
        trains = trained.model.trainer == "epochs"  # a closed-form fit runs in float32
        record["precision"] = precision.effective(
            cfg.precision, tuple(p for p in mcfg.low_precision if trains or p != "loss"))
        eval_s = time.perf_counter() - t0
        epoch_s = sorted(h["epoch_s"] for h in result.history)
        record["timings"] = {
            "epoch_s_median": epoch_s[len(epoch_s) // 2],
            "fit_s": result.fit_s, "eval_s": eval_s, "epochs_run": result.epochs_run,
            "ratings_per_s": (trained.x.nnz * len(epoch_s) / result.fit_s
                              if result.fit_s else None),
            # where the cell's time went (`report` writes budget.md from these): reading
            # the data and carving, validation reads, and the whole cell as the driver saw it
            "setup_s": setup_s, "valid_reads": reads[0], "valid_s": reads[1],
            **_solver_totals(result.history),
            **trained.memory,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
        values = dict(per_user)
        ranked = values.pop("user")
        artifacts = {
            "state_dict": {k: v.cpu() for k, v in trained.model.state_dict().items()},
            "shape": list(trained.x.shape),
            "per_user": {"user_id": split.user_ids, "ranked_user_id": split.user_ids[ranked],
                         **{k.replace("@", "_at_"): v for k, v in values.items()}}}
        record["timings"]["cell_s"] = time.perf_counter() - started
        record["status"] = "ok"
    except (Exception, torch.OutOfMemoryError) as exc:  # a failed cell must not stop the grid
        if _caused_by_interrupt(exc):  # Ctrl-C stops the grid, whatever wrapped it
            raise KeyboardInterrupt from exc
        record["status"] = "failed"
        record["error"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc(limit=5)
    return records.Record.from_json(records._clean(record)), artifacts


def _caused_by_interrupt(exc: BaseException) -> bool:
    """Whether `exc` stands for a Ctrl-C: Python reports a KeyboardInterrupt raised inside
    some machinery as another error caused by it (a lazy import's class body reports it as
    "RuntimeError: Error calling __set_name__"), which must not pass for a failed cell."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _solver_totals(history: list[dict]) -> dict:
    """The fit's L-BFGS iterations and loss evaluations over its rounds (none for a
    trainer without them)."""
    keys = ("lbfgs_iterations", "lbfgs_evaluations")
    return {k: sum(h[k] for h in history) for k in keys if any(k in h for h in history)}


def save(record: records.Record, artifacts: dict, out_dir: Path) -> records.Record:
    """Write a cell's weights and per-user values under `out_dir` (the record names them)
    and append the record to `out_dir/runs.jsonl`."""
    if record.ok and artifacts:
        name = cell_name(record)
        weights = out_dir / "weights" / f"{name}.pt"
        weights.parent.mkdir(parents=True, exist_ok=True)
        partial = weights.with_suffix(".pt.part")  # renamed once whole: no half-written file
        torch.save({"state_dict": artifacts["state_dict"], "config": record.config,
                    "split": records._plain(record.split), "model": record.model,
                    "shape": artifacts["shape"]}, partial)
        partial.replace(weights)
        per_user = out_dir / "per_user" / f"{name}.npz"
        per_user.parent.mkdir(parents=True, exist_ok=True)
        partial = per_user.with_suffix(".part.npz")
        np.savez_compressed(partial, **artifacts["per_user"])
        partial.replace(per_user)
        record = dataclasses.replace(record, weights=str(weights.relative_to(out_dir)),
                                     per_user=str(per_user.relative_to(out_dir)),
                                     folder=Path(out_dir))
    records.append(out_dir / "runs.jsonl", record)
    return record


def run_one(cfg: RunConfig, cache: SplitCache, out_dir: Path | None = None,
            on_epoch=None) -> records.Record:
    """`execute` one cell and, with `out_dir`, `save` it there."""
    record, artifacts = execute(cfg, cache, on_epoch)
    return save(record, artifacts, Path(out_dir)) if out_dir is not None else record


def cell_name(record: records.Record) -> str:
    parts = re.split(r"[+@]", record.label)
    tag = "".join(f"__{p}" for p in parts if p != "default")
    return (f"{record.model}__{record.dataset}__{record.split_name}__"
            f"{record.mode}__{record.device}__s{record.seed}{tag}")


def grid(model_patterns, dataset_names, devices, seeds=(0,), **common) -> list[RunConfig]:
    """Every cell: datasets x seeds x models x devices, in that order. A `precision` of
    `auto` becomes each variant's own on each device (`precision.resolve`)."""
    names = models.list(model_patterns)
    if not names:
        raise KeyError(f"no registered model matches {model_patterns}; "
                       f"registered: {', '.join(models.list())}")
    asked = common.pop("precision", "fp32")
    mode = common.get("mode", "batched")
    return [RunConfig(model=m, dataset=d, device=dev, seed=s, **common,
                      precision=precision.resolve(asked, models.get(m).precision, dev, mode))
            for d, s, m, dev in itertools.product(dataset_names, seeds, names, devices)]


def record_key(record: records.Record) -> tuple:
    """The `RunConfig.key()` of a record's cell."""
    values = {**record.run_config, "model": record.model, "dataset": record.dataset,
              "mode": record.mode, "device": record.device, "seed": record.seed}
    if "recipe" not in record.run_config:
        values["recipe"] = record.recipe.name
        values["overrides"] = list(record.recipe.overrides.items())
    cfg = RunConfig.from_run_config(values)
    return dataclasses.replace(cfg, split=record.split_name or cfg.split).key()


def pending(cells: list[RunConfig], done: list[records.Record]) -> list[RunConfig]:
    """The cells without an `ok` record among `done` (what `--resume` still runs)."""
    finished = {record_key(r) for r in done if r.ok}
    return [c for c in cells if c.key() not in finished]
