"""Training: one entry point for every family and both modes, with per-epoch timing and early
stopping on a validation figure.

A closed-form family is one timed `fit(x)`. A gradient family trains by `batched` epochs
(`bench/engines/batched.py`) or, where it offers a dense layer stack and a per-user recipe, by the
faithful `per-user` engine (`bench/engines/per_user.py`). Epoch wall time excludes evaluation and is
read after a device synchronisation, so CUDA timings are real.

Early stopping: every `eval_every` epochs, outside the timed part, `monitor(epoch)` gives the
validation figure (the caller builds it from the validation carving, so it cannot read a test
rating); the best state is kept, training stops after `patience` evaluations without
improvement, and the best state is restored at the end. A model trained in stages
(pre-training, then fine-tuning) stops early only in its last stage, and the patience count
starts again when that stage begins.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import scipy.sparse as sp
import torch
from aebench.bench.engines.batched import DEFAULT_OPTIONS, BatchedEngine, EngineOptions
from aebench.bench.engines.device import synchronize
from aebench.bench.engines.per_user import PerUserEngine
from aebench.models.base import ModelConfig, Recipe, Recommender, check_trainer

MODES = ("per-user", "batched")


def recipe_for(cfg: ModelConfig, mode: str) -> Recipe | None:
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} unknown; choose from {', '.join(MODES)}")
    return cfg.recipe(mode)


def make_engine(model: Recommender, x: sp.csr_matrix, cfg: ModelConfig, mode: str,
                device: torch.device, seed: int, options: EngineOptions = DEFAULT_OPTIONS):
    """The engine of `mode` over `x`, the model's view of the training matrix."""
    recipe = recipe_for(cfg, mode)
    if recipe is None:
        raise ValueError(f"{type(model).__name__} has no {mode} recipe")
    if mode == "per-user":
        if options.precision != "fp32":
            raise ValueError(f"per-user mode runs the classic float32 kernels; precision "
                             f"{options.precision} is for batched mode")
        gen = torch.Generator(device=device).manual_seed(seed)
        return PerUserEngine(model, x, recipe, device, gen, options.use_numba(device))
    return BatchedEngine(model, x, recipe, device, seed, options, cfg.low_precision)


@dataclass(frozen=True)
class Stopping:
    """When the validation figure is read, and when training gives up on it."""

    eval_every: int = 0          # epochs between validation reads; 0: about 25 per run
    patience: int = 5            # validation reads without improvement before stopping
    higher_is_better: bool = False

    def every(self, epochs: int) -> int:
        return self.eval_every or max(1, round(epochs / 25))


@dataclass
class FitResult:
    history: list[dict]
    fit_s: float
    epochs_run: int
    best_epoch: int | None = None
    best_value: float | None = None
    stopped_early: bool = False
    curve: list[tuple[int, float]] = field(default_factory=list)
    valid_s: float = 0.0  # validation reads and keeping the best state: outside fit_s


def fit(model: Recommender, x: sp.csr_matrix, cfg: ModelConfig, mode: str,
        device: torch.device, seed: int, epochs: int | None = None,
        monitor: Callable[[int], float] | None = None, stopping: Stopping = Stopping(),
        on_epoch: Callable[[dict], None] | None = None,
        options: EngineOptions = DEFAULT_OPTIONS) -> FitResult:
    """Train `model` on `x` (its view of the training matrix). Without `monitor` the
    recipe's epochs run in full (the classic per-user protocol). Raises FloatingPointError
    on a non-finite loss, ContractError when the model lacks what its trainer needs."""
    check_trainer(model)
    model.setup(x)
    if model.trainer == "closed-form":
        synchronize(device)
        t0 = time.perf_counter()
        model.fit(x)
        synchronize(device)
        dt = time.perf_counter() - t0
        row = {"epoch": 1, "train_loss": None, "epoch_s": dt}
        result = FitResult([row], dt, 1)
        if monitor is not None:
            t0 = time.perf_counter()
            row["valid"] = result.best_value = monitor(1)
            result.best_epoch, result.curve = 1, [(1, row["valid"])]
            result.valid_s = time.perf_counter() - t0
        if on_epoch is not None:
            on_epoch(row)
        return result

    recipe = recipe_for(cfg, mode)
    epochs = epochs or recipe.epochs
    engine = make_engine(model, x, cfg, mode, device, seed, options)
    every = stopping.every(epochs)
    sign = -1.0 if stopping.higher_is_better else 1.0
    result = FitResult([], 0.0, 0)
    best_state, waited, final = None, 0, False
    for epoch in range(1, epochs + 1):
        if not final and engine.in_last_stage:
            final, waited = True, 0
        synchronize(device)
        t0 = time.perf_counter()
        loss = engine.epoch()
        synchronize(device)
        dt = time.perf_counter() - t0
        result.fit_s += dt
        result.epochs_run = epoch
        row = {"epoch": epoch, "train_loss": loss, "epoch_s": dt,
               **getattr(engine, "counts", {})}
        if not math.isfinite(loss):
            result.history.append(row)
            raise FloatingPointError(f"training loss is {loss} at epoch {epoch}")
        if monitor is not None and (epoch % every == 0 or epoch == epochs):
            t0 = time.perf_counter()
            value = row["valid"] = monitor(epoch)
            result.curve.append((epoch, value))
            if math.isfinite(value) and (result.best_value is None
                                         or sign * value < sign * result.best_value):
                result.best_value, result.best_epoch, waited = value, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                waited += 1
            synchronize(device)
            result.valid_s += time.perf_counter() - t0
        result.history.append(row)
        if on_epoch is not None:
            on_epoch(row)
        if final and waited >= stopping.patience:
            result.stopped_early = epoch < epochs
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return result
