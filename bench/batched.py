"""The `batched` engine: mini-batches of users built from the sparse split, loss on observed.

Each epoch draws a user permutation on the host, lays the training entries out in that order
with each batch's column order beside them (`_plan`, one compiled pass) and sends them to the
device once; batches are then slices, with boundaries known on the host, so nothing inside
the epoch waits for the device.

The first layer reads a batch as CSR (`SAE.encode_sparse`) instead of a dense users x items
block, and for the masked loss the decoder is evaluated only at the observed (user, item)
pairs (`SAE.decode_at`, an SDDMM) rather than at full item width (`output="dense"`, kept for
comparison and used on CUDA, where the sparse kernels have not been measured yet).
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp
import torch

from models.sae import SAE, Recipe
from models.sparse_ops import CSRBatch

OUTPUTS = ("sparse", "dense")


def make_optimizer(params, recipe: Recipe, device: torch.device) -> torch.optim.Optimizer:
    kind = {"adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop}
    if recipe.optimizer not in kind:
        raise ValueError(f"optimizer {recipe.optimizer!r} unknown; choose from {', '.join(kind)}")
    extra = {"foreach": True} if device.type == "cuda" else {}
    if recipe.optimizer == "adam":
        extra = {"fused": True}
    return kind[recipe.optimizer](params, lr=recipe.lr, weight_decay=recipe.weight_decay, **extra)


@numba.njit(parallel=True, cache=True, nogil=True)
def _plan(indptr, indices, data, perm, bs, n_items):  # pragma: no cover - compiled
    """Lay out one epoch: the rows `perm` of a CSR matrix concatenated (`ptr`, `cols`, `vals`)
    and, for each batch of `bs` rows, its entries in column order: `t_local` (entry position
    within the batch), `t_rows` (row within the batch) and `t_ptr` (column pointers, one row
    per batch). A counting sort per batch, O(nnz + batches x n_items), batches in parallel."""
    n = perm.size
    ptr = np.zeros(n + 1, np.int64)
    for i in range(n):
        ptr[i + 1] = ptr[i] + indptr[perm[i] + 1] - indptr[perm[i]]
    cols = np.empty(ptr[n], np.int64)
    vals = np.empty(ptr[n], np.float32)
    for i in numba.prange(n):
        src = indptr[perm[i]]
        for j in range(ptr[i + 1] - ptr[i]):
            cols[ptr[i] + j] = indices[src + j]
            vals[ptr[i] + j] = data[src + j]
    n_batches = (n + bs - 1) // bs
    t_local = np.empty(ptr[n], np.int64)
    t_rows = np.empty(ptr[n], np.int64)
    t_ptr = np.zeros((n_batches, n_items + 1), np.int64)
    for k in numba.prange(n_batches):
        first, last = k * bs, min((k + 1) * bs, n)
        lo, hi = ptr[first], ptr[last]
        col_ptr = t_ptr[k]
        for e in range(lo, hi):
            col_ptr[cols[e] + 1] += 1
        for c in range(n_items):
            col_ptr[c + 1] += col_ptr[c]
        fill = col_ptr[:-1].copy()
        for r in range(first, last):
            for e in range(ptr[r], ptr[r + 1]):
                j = lo + fill[cols[e]]
                fill[cols[e]] += 1
                t_local[j] = e - lo
                t_rows[j] = r - first
    return ptr, cols, vals, t_local, t_rows, t_ptr


class BatchedEngine:
    def __init__(self, model: SAE, train: sp.csr_matrix, recipe: Recipe, device: torch.device,
                 generator: torch.Generator, seed: int, output: str = "auto"):
        """`output`: `sparse` (decoder at observed pairs), `dense` (full width, then gather),
        or `auto` (sparse on CPU, dense on CUDA)."""
        self.model, self.recipe, self.device = model, recipe, device
        self.opt = make_optimizer(model.parameters(), recipe, device)
        schedules = {"constant": None,
                     "cosine": lambda: torch.optim.lr_scheduler.CosineAnnealingLR(
                         self.opt, T_max=max(1, recipe.epochs))}
        if recipe.schedule not in schedules:
            raise ValueError(f"schedule {recipe.schedule!r} unknown; "
                             f"choose from {', '.join(schedules)}")
        make = schedules[recipe.schedule]
        self.scheduler = make() if make else None
        self.indptr = train.indptr.astype(np.int64)
        self.indices = train.indices.astype(np.int64)
        self.data = np.ascontiguousarray(train.data, dtype=np.float32)
        self.n_items = train.shape[1]
        self.users = np.flatnonzero(np.diff(self.indptr) > 0)
        self.rng = np.random.default_rng(seed)
        if output == "auto":
            output = "sparse" if device.type == "cpu" else "dense"
        if output not in OUTPUTS:
            raise ValueError(f"output must be auto, sparse or dense, got {output!r}")
        self.output = output

    def _epoch_plan(self) -> tuple[torch.Tensor, list[tuple[int, int, CSRBatch]]]:
        """One epoch's batches, laid out on the host in one pass (`_plan`) and sent to the
        device in a few transfers: the training entries in permuted-user order, and per
        batch its CSR pattern plus the same entries in column order (for the X.T products of
        the backward pass)."""
        perm = self.rng.permutation(self.users)
        bs, n_items = self.recipe.batch_size, self.n_items
        ptr, cols, vals, t_local, t_rows, t_ptr = _plan(self.indptr, self.indices, self.data,
                                                        perm, bs, n_items)
        dev = self.device
        ptr_d, cols_d, vals_d, t_local_d, t_rows_d, t_ptr_d = (
            torch.from_numpy(a).to(dev) for a in (ptr, cols, vals, t_local, t_rows, t_ptr))
        plan = []
        for k in range(len(t_ptr)):
            a, b = k * bs, min((k + 1) * bs, len(perm))
            lo, hi = int(ptr[a]), int(ptr[b])
            plan.append((lo, hi, CSRBatch(ptr_d[a:b + 1] - lo, cols_d[lo:hi], n_items,
                                          t_local_d[lo:hi], t_rows_d[lo:hi], t_ptr_d[k])))
        return vals_d, plan

    def epoch(self) -> float:
        """One pass over all users with ratings; returns the mean squared error per rating."""
        model, opt = self.model, self.opt
        model.train()
        values, plan = self._epoch_plan()
        total = torch.zeros((), device=self.device)
        for lo, hi, batch in plan:
            val = values[lo:hi]
            h = model.encode_sparse(batch, val)
            if self.output == "sparse":
                pred = model.decode_at(h, batch)
            else:
                rows = torch.repeat_interleave(torch.arange(batch.n_rows, device=self.device),
                                               batch.crow.diff(), output_size=hi - lo)
                pred = model.decode(h)[rows, batch.cols]
            se = (pred - val).square().sum()
            loss = se / (hi - lo)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += se.detach()
        if self.scheduler is not None:
            self.scheduler.step()
        return float(total) / max(1, plan[-1][1])
