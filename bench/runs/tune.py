"""Equal-budget hyperparameter tuning with Optuna, on validation data only.

One study per (variant, dataset, split): the same number of trials for every variant (and
the same `--timeout`), Optuna's TPE sampler seeded, the objective the best validation figure
of the fair protocol (validation RMSE of a rating model, NDCG@10 of a ranking-only one, read
on the carving of the training ratings; `train_cell` gets the fitting view, which holds no
test rating). The variant's default recipe is the first trial, so every study reports what
tuning moved. Trials are pruned on their intermediate validation reads (median pruner).

The study lives in the driver (Optuna's ask-and-tell): trials run as tasks of an executor,
in this process or as Ray tasks. A task cannot reach the study, so it prunes against a
snapshot of the study's finished trials taken when it was handed out (in this process the
snapshot is the whole study, as `study.optimize` would see it); the driver reports the
trial's intermediate values and tells the study how it ended.

Storage: an SQLite file in the output folder (`studies.db`) by default, so a killed study
resumes with its finished trials (`--resume`); `--storage URL` takes any database Optuna
supports, so that workers on several machines can share one study. A trial the killed driver
left running is marked failed with the user attribute `interrupted`, does not count against
the budget, and its parameters are asked again first, so the study still evaluates every
point its sampler chose.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import socket
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from aebench.bench.runs.executors import TaskLost
from aebench.bench.runs.runner import RunConfig, prepare, shared_cache, train_cell
from aebench.models.base import Choice, IntRange, LogUniform, Space, Uniform

from aebench import models

FORMAT = "aebench-recipes/1"


def suggest(trial: optuna.Trial, space: Space) -> dict[str, Any]:
    """The overrides one trial tries, drawn from a variant's search space. Choices that are
    not plain values (tuples of widths) are offered by their text and mapped back."""
    out: dict[str, Any] = {}
    for key, param in space.params.items():
        if isinstance(param, LogUniform):
            out[key] = trial.suggest_float(key, param.low, param.high, log=True)
        elif isinstance(param, Uniform):
            out[key] = trial.suggest_float(key, param.low, param.high)
        elif isinstance(param, IntRange):
            out[key] = trial.suggest_int(key, param.low, param.high, step=param.step)
        elif isinstance(param, Choice):
            labels = {choice_label(v): v for v in param.values}
            out[key] = labels[trial.suggest_categorical(key, list(labels))]
        else:
            raise TypeError(f"{key}: unknown search-space parameter {param!r}")
    return out


def choice_label(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return "-".join(map(str, value))
    return value


def default_params(model: str, dataset: str | None = None) -> dict[str, Any] | None:
    """The default recipe (on `dataset`, where the variant has one of its own) as a point of
    the search space (None if it lies outside)."""
    cfg = models.config(model, dataset)
    out = {}
    for key, param in models.get(model).space.params.items():
        head, _, tail = key.partition(".")
        value = getattr(getattr(cfg, head), tail) if tail else getattr(cfg, head)
        if isinstance(param, Choice):
            if value not in param.values:
                return None
            value = choice_label(value)
        elif isinstance(param, (LogUniform, Uniform, IntRange)):
            if not param.low <= value <= param.high:
                return None
        out[key] = value
    return out


def study_name(cell: RunConfig) -> str:
    return f"{cell.model}@{cell.dataset}/{cell.split_name}"


def trial_task(cell: RunConfig, snapshot: list, direction: str, pruner: dict) -> dict:
    """Run one trial (in any process): train `cell` on its fitting view, reporting each
    validation read to a local copy of the study's pruner over `snapshot`. Returns how it
    ended, its validation figure and its intermediate values."""
    study = optuna.create_study(direction=direction, pruner=make_pruner(pruner))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if snapshot:
            study.add_trials(snapshot)
    local = study.ask()
    steps: list[tuple[int, float]] = []

    def on_valid(epoch: int, value: float) -> None:
        steps.append((epoch, value))
        if math.isfinite(value):
            local.report(value, epoch)
            if local.should_prune():
                raise optuna.TrialPruned()

    t0 = time.perf_counter()
    cache = shared_cache(cell.data_dir)
    try:
        prepare(cell)
        view = cache.fitting_view(cell.dataset, cell.split_name, cell.seed, cell.validation)
        trained = train_cell(cell, view, on_valid=on_valid)
        v = trained.validation
        state = "complete" if v["best"] is not None and math.isfinite(v["best"]) else "failed"
        return {"state": state, "value": v["best"], "steps": steps, "validation": v,
                "seconds": time.perf_counter() - t0}
    except optuna.TrialPruned:
        return {"state": "pruned", "value": None, "steps": steps, "seconds":
                time.perf_counter() - t0}
    except Exception as exc:  # a failed trial is recorded, the study goes on
        return {"state": "failed", "value": None, "steps": steps,
                "error": f"{type(exc).__name__}: {exc}", "seconds": time.perf_counter() - t0}


def make_pruner(spec: dict) -> optuna.pruners.BasePruner:
    return optuna.pruners.MedianPruner(n_startup_trials=spec["startup"],
                                       n_warmup_steps=spec["warmup"])


INTERRUPTED = "interrupted"  # user attribute of a trial whose driver died while it ran


def finished(study: optuna.Study) -> list:
    """The trials the budget counts: complete, pruned, or failed by the model (an error), not
    interrupted."""
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
              optuna.trial.TrialState.FAIL)
    return [t for t in study.get_trials(deepcopy=False, states=states)
            if INTERRUPTED not in t.user_attrs]


def driver_id() -> str:
    """Who hands out a trial (user attribute `driver`): host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def driver_gone(driver: str) -> bool:
    """Whether the driver that handed a trial out is known to be dead: a process of this host
    that no longer exists. A driver on another host (a shared `--storage`) is never assumed
    dead."""
    host, _, pid = driver.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def requeue_interrupted(study: optuna.Study) -> list[int]:
    """On resume: mark the trials whose driver died while they ran as failed and
    `interrupted`, and enqueue the parameters of every interrupted trial not yet asked again
    (once each). Returns the numbers of the trials enqueued again."""
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if not driver_gone(t.user_attrs.get("driver", "")):
            continue
        study._storage.set_trial_user_attr(t._trial_id, INTERRUPTED,
                                           "its driver stopped while it ran")
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    again = [t for t in trials if INTERRUPTED in t.user_attrs and t.number not in retried]
    for t in again:
        attrs = {"retry_of": t.number}
        if t.user_attrs.get("default"):
            attrs["default"] = True
        study.enqueue_trial(t.params, user_attrs=attrs)
    return [t.number for t in again]


def tune_variant(cell: RunConfig, trials: int, storage: str, executor, seed: int = 0,
                 timeout: float | None = None, resume: bool = False, log=print) -> dict:
    """Run one variant's study up to `trials` finished trials (or `timeout` seconds of this
    call); returns its summary."""
    from aebench.bench.evaluation.evaluate import validation_metric

    variant = models.get(cell.model)
    metric, higher = validation_metric(models.config(cell.model))
    direction = "maximize" if higher else "minimize"
    name = study_name(cell)
    startup = max(3, trials // 4)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)
    pruner = {"startup": startup, "warmup": 0}
    if not resume and name in optuna.get_all_study_names(storage):
        raise FileExistsError(f"study {name!r} already exists in {storage}: pass --resume to "
                              "continue it, or choose another --out/--storage")
    study = optuna.create_study(study_name=name, storage=storage, direction=direction,
                                sampler=sampler, pruner=make_pruner(pruner),
                                load_if_exists=True)
    study.set_user_attr("metric", metric)
    study.set_user_attr("cell", {"model": cell.model, "dataset": cell.dataset,
                                 "split": cell.split_name})
    study.set_user_attr("space", {k: repr(v) for k, v in variant.space.params.items()})
    if not study.trials and (defaults := default_params(cell.model, cell.dataset)) is not None:
        study.enqueue_trial(defaults, user_attrs={"default": True})
    if again := requeue_interrupted(study):
        log(f"{name}: asking interrupted trial(s) {', '.join(map(str, again))} again")
    start = time.monotonic()

    def room() -> bool:
        """Whether the budget allows handing out one more trial."""
        return len(finished(study)) + len(running) < trials and (
            timeout is None or time.monotonic() - start <= timeout)

    def hand_out():
        trial = study.ask()
        trial.set_user_attr("driver", driver_id())
        overrides = suggest(trial, variant.space)
        task = dataclasses.replace(cell, overrides=tuple(sorted(overrides.items())))
        return trial, (task, finished(study), direction, pruner)

    def tell(trial, out: dict) -> None:
        for step, value in out["steps"]:
            if math.isfinite(value):
                trial.report(value, step)
        state = {"complete": optuna.trial.TrialState.COMPLETE,
                 "pruned": optuna.trial.TrialState.PRUNED,
                 "failed": optuna.trial.TrialState.FAIL}[out["state"]]
        trial.set_user_attr("seconds", out["seconds"])
        if "error" in out:
            trial.set_user_attr("error", out["error"])
        if out["state"] == "complete":
            trial.set_user_attr("best_epoch", out["validation"]["best_epoch"])
        study.tell(trial, out["value"] if out["state"] == "complete" else None, state=state)
        shown = "—" if out["value"] is None else f"{out['value']:.4f}"
        log(f"{name} trial {trial.number}: {out['state']} {metric} {shown} "
            f"({out['seconds']:.0f} s)")

    running: dict = {}  # task -> its trial
    gpus = 1 if cell.device == "cuda" else 0
    while True:
        while len(running) < executor.parallel and room():
            trial, args = hand_out()
            running[executor.submit(trial_task, args, gpus=gpus)] = trial
        if not running:
            break
        (ref, out), _ = executor.wait_one(list(running))
        if isinstance(out, TaskLost):  # its worker died: the trial failed, the study goes on
            out = {"state": "failed", "steps": [], "seconds": 0.0, "value": None,
                   "error": f"worker lost: {out}"}
        tell(running.pop(ref), out)
    return summary(study, storage)


def summary(study: optuna.Study, storage: str) -> dict:
    """The study's best recipe, its validation figure, the trial counts, and the default
    recipe's figure (its first trial) when the default lies in the search space."""
    trials = finished(study)
    states = [t.state for t in trials]
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    cell = study.user_attrs["cell"]
    out = {"study": study.study_name, "storage": storage, "model": cell["model"],
           "dataset": cell["dataset"], "split": cell["split"],
           "metric": study.user_attrs.get("metric"),
           "direction": study.direction.name.lower(), "trials": len(trials),
           "complete": states.count(optuna.trial.TrialState.COMPLETE),
           "pruned": states.count(optuna.trial.TrialState.PRUNED),
           "failed": states.count(optuna.trial.TrialState.FAIL),
           "interrupted": sum(INTERRUPTED in t.user_attrs
                              for t in study.get_trials(deepcopy=False))}
    default = next((t for t in complete if t.user_attrs.get("default")), None)
    out["default_value"] = default.value if default else None
    if complete:
        best = study.best_trial
        space = models.get(cell["model"]).space
        labels = {k: {choice_label(v): v for v in p.values} for k, p in space.params.items()
                  if isinstance(p, Choice)}
        out["value"] = best.value
        out["best_trial"] = best.number
        out["best_epoch"] = best.user_attrs.get("best_epoch")
        overrides = {}
        for k, v in sorted(best.params.items()):
            v = labels[k][v] if k in labels else v
            overrides[k] = list(v) if isinstance(v, tuple) else v
        out["overrides"] = overrides
    return out


def all_studies(storage: str) -> list[optuna.Study]:
    """Every aebench study in a storage, sorted by dataset, then model."""
    studies = [optuna.load_study(study_name=s.study_name, storage=storage)
               for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    studies = [s for s in studies if "cell" in s.user_attrs]
    return sorted(studies, key=lambda s: (s.user_attrs["cell"]["dataset"],
                                          s.user_attrs["cell"]["model"]))


def write_summaries(out_dir: Path, storage: str) -> list[Path]:
    """From every study in `storage` (so that the studies of several calls, datasets or
    machines add up): recipes.json (what `run --recipes` reads), studies.json (every study's
    summary) and tuning.md."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summaries = [summary(s, storage) for s in all_studies(storage)]
    recipes: dict = {}
    for s in summaries:
        if "overrides" in s:
            recipes.setdefault(s["model"], {})[s["dataset"]] = s
    (out_dir / "recipes.json").write_text(json.dumps({"format": FORMAT, "recipes": recipes},
                                                     indent=1, sort_keys=True) + "\n")
    (out_dir / "studies.json").write_text(json.dumps(summaries, indent=1, sort_keys=True)
                                          + "\n")
    from tabulate import tabulate

    rows = [[s["model"], f"{s['dataset']} {s['split']}", s["metric"], s["trials"],
             s["complete"], s["pruned"], s["failed"], s.get("interrupted", 0),
             "—" if s.get("default_value") is None else f"{s['default_value']:.4f}",
             "—" if s.get("value") is None else f"{s['value']:.4f}",
             json.dumps(s.get("overrides", {}))] for s in summaries]
    (out_dir / "tuning.md").write_text(
        "# Tuning studies (validation figures only)\n\n" + tabulate(
            rows, headers=["model", "data", "metric", "trials", "complete", "pruned", "failed",
                           "interrupted", "default", "best", "best recipe (overrides)"],
            tablefmt="github", disable_numparse=True) + "\n")
    return [out_dir / "recipes.json", out_dir / "studies.json", out_dir / "tuning.md"]


def write_study_files(out_dir: Path, study: optuna.Study) -> list[Path]:
    """One study's trial history (CSV) and two plots: optimisation history and parameter
    importances (where two complete trials differ)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization.matplotlib import plot_optimization_history, plot_param_importances

    stem = study.study_name.replace("@", "__").replace("/", "__")
    study.trials_dataframe().to_csv(out_dir / f"history-{stem}.csv", index=False)
    written = [out_dir / f"history-{stem}.csv"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ax = plot_optimization_history(study)
            ax.figure.savefig(out_dir / f"history-{stem}.png", dpi=100, bbox_inches="tight")
            plt.close(ax.figure)
            written.append(out_dir / f"history-{stem}.png")
            complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
            if len(complete) >= 2 and study.trials[0].params:
                ax = plot_param_importances(study)
                ax.figure.savefig(out_dir / f"importances-{stem}.png", dpi=100,
                                  bbox_inches="tight")
                plt.close(ax.figure)
                written.append(out_dir / f"importances-{stem}.png")
        except (ValueError, RuntimeError):  # too few distinct trials to plot
            plt.close("all")
    return written


def load_recipes(path: Path) -> dict:
    """{model: {dataset: summary}} from a recipes.json, checked: the error names the file."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a recipes file ({exc})") from exc
    if data.get("format") != FORMAT or not isinstance(data.get("recipes"), dict):
        raise ValueError(f"{path}: not an aebench recipes file (format {FORMAT!r} expected)")
    for model, per_dataset in data["recipes"].items():
        if model not in models.list():
            raise ValueError(f"{path}: model {model!r} is not registered")
        for dataset, recipe in per_dataset.items():
            try:
                models.config(model, **recipe["overrides"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}: {model} on {dataset}: {exc}") from exc
    return data["recipes"]
