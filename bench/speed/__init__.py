"""Speed: one training epoch of every path a variant has, timed in one process on the same
split, with FLOPs, achieved GFLOP/s and the machine's measured ceilings, so ratios and the
distance to the hardware limit are read from one run.

Paths: `classic` (the notebooks' dense per-user loop, for models with a dense layer stack and
a per-user recipe), `per-user` (the faithful engine), `batched` (every gradient-trained
family) and `fit` (a closed-form family's whole fit). Each model counts its own FLOPs
(`Recommender.epoch_flops`, 2 per multiply-add) and says what bounds them: sparse products
are bounded by gather bandwidth (one multiply-add per gathered float), dense GEMMs by the
matmul peak. The classic loop works on dense item rows, so its count is the dense one.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch
from aebench.bench.engines import classic
from aebench.bench.engines.batched import EngineOptions
from aebench.bench.engines.device import synchronize
from aebench.bench.engines.train import make_engine
from aebench.datasets import Split
from aebench.models.base import stack_flops
from aebench.models.sparse_ops import bag_sum

from aebench import models

PATHS = ("classic", "per-user", "batched", "fit")


def matmul_peak_gflops(device: torch.device, n: int = 2048, repeats: int = 10,
                       dtype: torch.dtype = torch.float32) -> float:
    """Best-of-`repeats` GFLOP/s of an n x n matmul in `dtype`: the practical compute
    ceiling (bf16's is what "% of peak" reads against under `--precision bf16`)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    return 2 * n**3 / min(_time(lambda: a @ b, repeats, device)) / 1e9


def gather_ceiling_gflops(x, width: int, device: torch.device, repeats: int = 10) -> float:
    """Best-of-`repeats` GFLOP/s of one `embedding_bag` of the entries of `x` (a training
    matrix) over an n_cols x `width` table, one bag per row, as the sparse products gather
    (`sparse_ops.bag_sum`, column blocks where the table outgrows the cache): the
    cache-bandwidth ceiling of the sparse products, which do one multiply-add per gathered
    float (0.5 FLOP/byte) however well they are written, where a matmul reuses each operand
    from registers."""
    cols = torch.as_tensor(x.indices.astype(np.int64), device=device)
    offsets = torch.as_tensor(x.indptr[:-1].astype(np.int64), device=device)
    weights = torch.as_tensor(x.data, dtype=torch.float32, device=device)
    table = torch.randn(x.shape[1], width, device=device)

    def bag():
        bag_sum(cols, table, offsets, weights)

    bag()
    return 2 * x.nnz * width / min(_time(bag, repeats, device)) / 1e9


def epoch_flops(split: Split, hidden: tuple[int, ...], path: str) -> float:
    """FLOPs of one epoch of a dense stack n_items -> hidden -> n_items on `split`'s training
    ratings: the classic loop's dense rows, or the sparse paths' observed entries."""
    widths = (split.n_items, *hidden, split.n_items)
    dense = path == "classic"
    return stack_flops(split.train, widths, dense_input=dense, sparse_output=not dense)


def _time(fn, repeats: int, device: torch.device) -> list[float]:
    out = []
    for _ in range(repeats):
        synchronize(device)
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        out.append(time.perf_counter() - t0)
    return out


def paths_of(model_name: str) -> tuple[str, ...]:
    """The paths a variant can be timed on."""
    cfg = models.config(model_name)
    model = models.get(model_name).make(2, 2, cfg)
    if model.trainer == "closed-form":
        return ("fit",)
    out = ("batched",) if cfg.batched is not None else ()
    if cfg.per_user is not None and model.stack() is not None:
        out = ("classic", "per-user", *out)
    return out


def measure(model_name: str, split: Split, device: torch.device, paths: tuple[str, ...],
            repeats: int = 3, classic_repeats: int = 1, seed: int = 0,
            precision: str = "fp32") -> list[dict]:
    """Median epoch (or fit) seconds of each of `paths` the variant has, after one warm-up
    epoch for the engines; FLOPs and their bound from the model. In a low `precision` only
    the batched path runs (the classic loop, the per-user engine and closed-form fits are
    float32), with the loss in that precision where the family allows it."""
    if precision != "fp32":
        paths = tuple(p for p in paths if p == "batched")
    cfg = models.config(model_name, split.dataset)
    x = cfg.view(split.train)
    rows = []
    for path in (p for p in paths if p in paths_of(model_name)):
        torch.manual_seed(seed)
        model = models.get(model_name).make(x.shape[0], x.shape[1], cfg).to(device)
        model.setup(x)
        count = model.epoch_flops(x)
        if path == "classic":
            ref = classic.from_model(model).to(device)
            opt = classic.make_optimizer(ref, cfg.per_user.lr, cfg.per_user.weight_decay)
            dense = torch.tensor(split.train.toarray(), device=device)
            crit = classic.CRITERIA[cfg.per_user.loss]
            times = _time(lambda r=ref, o=opt, d=dense, c=crit: classic.train_epoch(r, o, d, c),
                          classic_repeats, device)
            flops = epoch_flops(split, classic.hidden_of(model), "classic")
        elif path == "fit":
            times = _time(lambda m=model: m.fit(x), repeats, device)
            flops = None
        else:
            engine = make_engine(model, x, cfg, path, device, seed,
                                 EngineOptions(precision=precision))
            engine.epoch()
            times = _time(engine.epoch, repeats if path == "batched" else classic_repeats,
                          device)
            flops = count.total if count else None
        median = statistics.median(times)
        recipe = cfg.batched if path == "batched" else None
        lbfgs = recipe is not None and recipe.optimizer == "lbfgs"
        low = path == "batched" and precision != "fp32" and "loss" in cfg.low_precision
        rows.append({"model": model_name, "path": path, "epoch_s": median, "runs": len(times),
                     "precision": precision if low else "fp32",
                     # an L-BFGS epoch is a round: its iteration's seconds too
                     "iteration_s": median / recipe.iterations if lbfgs else None,
                     "gflop_per_epoch": flops / 1e9 if flops else None,
                     "gflops": flops / median / 1e9 if flops else None,
                     "bound": count.bound if count and path != "classic" else "matmul",
                     "width": count.width if count else 0})
    base = next((r["epoch_s"] for r in rows if r["path"] == "classic"), None)
    for r in rows:
        r["speedup_vs_classic"] = base / r["epoch_s"] if base else None
    return rows


# Same-run gate: minimum speedups over the classic loop, measured in one process on the
# ML-1M-shaped synthetic matrix. Each floor is about 55% of the lower of two CI runs' figures
# (docs/speed.md quotes them), so a change that halves a speedup fails while the run-to-run
# noise of shared machines does not.
FLOORS = {
    ("sae-20-10-20", "batched"): 26.0,
    ("sae-200-100-200", "batched"): 130.0,
    ("sae-20-10-20", "per-user"): 2.0,
    ("sae-200-100-200", "per-user"): 2.8,
}


def slice_split(split: Split, users: int) -> Split:
    """The first `users` rows of a split (for the per-user paths, whose cost per user is flat)."""
    return Split(split.dataset, f"{split.name}[:{users}]", split.seed, split.train[:users],
                 split.test[:users], split.user_ids[:users], split.item_ids, "", split.scale)


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
