"""Speed: one training epoch of the classic loop, the faithful per-user engine and the batched
engine, timed in one process on the same split, with FLOPs, achieved GFLOP/s and the
machine's measured dense matmul peak, so the ratios and the distance to the hardware limit
are read from one run.

FLOPs count 2 per multiply-add over the matrix products a path performs: the classic loop
works on dense item rows; the faithful and sparse batched paths only on each user's observed
items. A layer's backward pass computes its weight gradient (as many FLOPs as its forward) and
the gradient of its input (as many again), except the first layer, whose input is rating data
that needs no gradient; so the "backward = 2 x forward" convention would overstate the work.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

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


def gather_ceiling_gflops(split: Split, width: int, device: torch.device,
                          repeats: int = 10) -> float:
    """Best-of-`repeats` GFLOP/s of one `embedding_bag` of the split's training ratings over
    an items x `width` table, one bag per user: the cache-bandwidth ceiling of the sparse
    products, which do one multiply-add per gathered float (0.5 FLOP/byte) however well they
    are written, where a matmul reuses each operand from registers."""
    train = split.train
    cols = torch.as_tensor(train.indices.astype(np.int64), device=device)
    offsets = torch.as_tensor(train.indptr[:-1].astype(np.int64), device=device)
    weights = torch.as_tensor(train.data, dtype=torch.float32, device=device)
    table = torch.randn(split.n_items, width, device=device)

    def bag():
        F.embedding_bag(cols, table, offsets, mode="sum", per_sample_weights=weights)

    bag()
    return 2 * train.nnz * width / min(_time(bag, repeats, device)) / 1e9


def epoch_flops(split: Split, hidden: tuple[int, ...], path: str) -> float:
    """Forward+backward FLOPs of one epoch for `path` in classic, per-user, batched: the
    first layer's multiply-adds twice (forward, weight gradient), the others' three times."""
    counts = np.diff(split.train.indptr)
    users = int((counts > 0).sum())
    inner = users * sum(a * b for a, b in zip(hidden[:-1], hidden[1:]))
    inputs = users * split.n_items if path == "classic" else int(split.train.nnz)
    first, output = inputs * hidden[0], inputs * hidden[-1]
    return 2.0 * (2 * first + 3 * (inner + output))


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
            crit = classic.CRITERIA[cfg.per_user.loss]
            times = _time(lambda r=ref, o=opt, d=dense, c=crit: classic.train_epoch(r, o, d, c),
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


# Same-run gate: minimum speedups over the classic loop, measured in one process on the
# ML-1M-shaped synthetic matrix. On the 2-core CI machine (AMD EPYC, torch 2.13 CPU) two runs
# of `python -m bench perf-check` measured: 20-10-20 batched 56x and 48x, per-user 4.5x and
# 3.8x; 200-100-200 batched 237x and 289x, per-user 5.9x and 5.3x. Each floor is about 55% of
# the lower figure, so a change that halves a speedup fails, while the run-to-run noise of
# these shared machines (well under 40%) does not.
FLOORS = {
    ("sae-20-10-20", "batched"): 26.0,
    ("sae-200-100-200", "batched"): 130.0,
    ("sae-20-10-20", "per-user"): 2.0,
    ("sae-200-100-200", "per-user"): 2.8,
}


def slice_split(split: Split, users: int) -> Split:
    """The first `users` rows of a split (for the per-user paths, whose cost per user is flat)."""
    return Split(split.dataset, f"{split.name}[:{users}]", split.seed, split.train[:users],
                 split.test[:users], split.user_ids[:users], split.item_ids, "")


def same_run_ratios(split: Split, names: list[str], device: torch.device,
                    slice_users: int = 300, repeats: int = 3) -> list[dict]:
    """Speedups over the classic loop, all measured in this process. The classic and
    per-user paths run on a slice of users and are scaled to the full epoch by user count."""
    part = slice_split(split, slice_users)
    scale = (np.diff(split.train.indptr) > 0).sum() / (np.diff(part.train.indptr) > 0).sum()
    rows = []
    for name in names:
        classic_s = measure(name, part, device, ("classic",), classic_repeats=repeats)[0]
        per_user = measure(name, part, device, ("per-user",), classic_repeats=repeats)[0]
        batched = measure(name, split, device, ("batched",), repeats=repeats)[0]
        full_classic = classic_s["epoch_s"] * scale
        rows.append({"model": name, "path": "per-user", "epoch_s": per_user["epoch_s"] * scale,
                     "classic_epoch_s": full_classic,
                     "speedup": classic_s["epoch_s"] / per_user["epoch_s"]})
        rows.append({"model": name, "path": "batched", "epoch_s": batched["epoch_s"],
                     "classic_epoch_s": full_classic,
                     "speedup": full_classic / batched["epoch_s"]})
    for r in rows:
        r["floor"] = FLOORS.get((r["model"], r["path"]))
        r["ok"] = r["floor"] is None or r["speedup"] >= r["floor"]
    return rows
