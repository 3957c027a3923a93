"""Speed: one training epoch of the classic loop, the faithful per-user engine and the batched
engine, timed in one process on the same split, with FLOPs, achieved GFLOP/s and the
machine's measured dense matmul peak, so the ratios and the distance to the hardware limit
are read from one run.

FLOPs count 2 per multiply-add over the matrix products a path performs, and a backward pass
as twice its forward (the usual convention): the classic loop works on dense item rows; the
faithful and sparse batched paths only on each user's observed items.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

import models
from datasets import Split

from . import classic
from .train import make_engine, sync


def matmul_peak_gflops(device: torch.device, n: int = 2048, repeats: int = 10) -> float:
    """Best-of-`repeats` fp32 GFLOP/s of an n x n matmul: the practical compute ceiling."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def epoch_flops(split: Split, hidden: tuple[int, ...], path: str) -> float:
    """Forward+backward FLOPs of one epoch for `path` in classic, per-user, batched."""
    counts = np.diff(split.train.indptr)
    users = int((counts > 0).sum())
    inner = sum(a * b for a, b in zip(hidden[:-1], hidden[1:]))
    if path == "classic":
        per_user = split.n_items * (hidden[0] + hidden[-1]) + inner
        fwd = 2 * users * per_user
    else:
        fwd = 2 * (int(split.train.nnz) * (hidden[0] + hidden[-1]) + users * inner)
    return 3.0 * fwd


def _time(fn, repeats: int, device: torch.device) -> list[float]:
    out = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        out.append(time.perf_counter() - t0)
    return out


def measure(model_name: str, split: Split, device: torch.device, paths: tuple[str, ...],
            repeats: int = 3, classic_repeats: int = 1, seed: int = 0) -> list[dict]:
    """Median epoch seconds per path (after one warm-up epoch for the fast paths)."""
    cfg = models.config(model_name)
    rows = []
    for path in paths:
        torch.manual_seed(seed)
        model = models.get(model_name).build(split.n_items, cfg).to(device)
        if path == "classic":
            ref = classic.ClassicSAE(split.n_items, cfg.hidden).load_from(model).to(device)
            opt = classic.make_optimizer(ref, cfg.per_user.lr, cfg.per_user.weight_decay)
            dense = torch.tensor(split.train.toarray(), device=device)
            times = _time(lambda r=ref, o=opt, d=dense: classic.train_epoch(r, o, d),
                          classic_repeats, device)
        else:
            engine = make_engine(model, split, cfg, path, device, seed)
            engine.epoch()
            times = _time(engine.epoch, repeats if path == "batched" else classic_repeats,
                          device)
        median = statistics.median(times)
        flops = epoch_flops(split, cfg.hidden, path)
        rows.append({"model": model_name, "path": path, "epoch_s": median, "runs": len(times),
                     "gflop_per_epoch": flops / 1e9, "gflops": flops / median / 1e9})
    base = next((r["epoch_s"] for r in rows if r["path"] == "classic"), None)
    for r in rows:
        r["speedup_vs_classic"] = base / r["epoch_s"] if base else None
    return rows
