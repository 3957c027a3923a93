"""Training: one entry point over the two modes, with per-epoch timing.

`per-user` is the faithful classic recipe (`bench/per_user.py`); `batched` is mini-batches of
users from the sparse split (`bench/batched.py`). Epoch wall time excludes evaluation and is
taken after a device synchronisation, so CUDA timings are real.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from datasets import Split
from models.sae import SAE, Recipe, SAEConfig

from .batched import BatchedEngine
from .per_user import PerUserEngine

MODES = ("per-user", "batched")


def recipe_for(cfg: SAEConfig, mode: str) -> Recipe:
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} unknown; choose from {', '.join(MODES)}")
    return cfg.per_user if mode == "per-user" else cfg.batched


def make_engine(model: SAE, split: Split, cfg: SAEConfig, mode: str, device: torch.device,
                seed: int):
    recipe = recipe_for(cfg, mode)
    gen = torch.Generator(device=device).manual_seed(seed)
    if mode == "per-user":
        return PerUserEngine(model, split.train, recipe, cfg.activation, device, gen)
    return BatchedEngine(model, split.train, recipe, device, gen, seed)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class FitResult:
    history: list[dict]
    fit_s: float


def fit(model: SAE, split: Split, cfg: SAEConfig, mode: str, device: torch.device, seed: int,
        epochs: int, evaluate: Callable[[], float] | None = None, eval_every: int = 0,
        on_epoch: Callable[[dict], None] | None = None) -> FitResult:
    """Train for `epochs`; `evaluate()` (test RMSE) runs every `eval_every` epochs and after
    the last, outside the timed part. Raises FloatingPointError on a non-finite loss."""
    engine = make_engine(model, split, cfg, mode, device, seed)
    history, fit_s = [], 0.0
    n_ratings = int(split.train.nnz)
    for epoch in range(1, epochs + 1):
        sync(device)
        t0 = time.perf_counter()
        loss = engine.epoch()
        sync(device)
        dt = time.perf_counter() - t0
        fit_s += dt
        row = {"epoch": epoch, "train_loss": loss, "epoch_s": dt,
               "ratings_per_s": n_ratings / dt if dt > 0 else math.inf}
        if not math.isfinite(loss):
            history.append(row)
            raise FloatingPointError(f"training loss is {loss} at epoch {epoch}")
        if evaluate is not None and (epoch == epochs or (eval_every and epoch % eval_every == 0)):
            row["rmse"] = evaluate()
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
    return FitResult(history, fit_s)
