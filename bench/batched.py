"""The `batched` engine: mini-batches of users built from the sparse split, loss on observed.

Each epoch draws a user permutation on the host, turns it into one gather index over the
training nonzeros and sends that to the device once; batches are then slices of it, with
boundaries known on the host, so nothing inside the epoch waits for the device. The first
layer reads a batch as CSR (`SAE.encode_sparse`) instead of a dense users x items block, and
for the masked loss the decoder is evaluated only at the observed (user, item) pairs
(`SAE.decode_at`, an SDDMM) rather than at full item width (`output="dense"`, kept for
comparison and used on CUDA, where the sparse kernels have not been measured yet).
"""

from __future__ import annotations

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
        self.items = torch.as_tensor(train.indices.astype(np.int64), device=device)
        self.values = torch.as_tensor(train.data, device=device)
        self.indices = train.indices.astype(np.int64)
        self.col_order = np.argsort(self.indices, kind="stable")
        self.n_items = train.shape[1]
        self.users = np.flatnonzero(np.diff(self.indptr) > 0)
        self.rng = np.random.default_rng(seed)
        if output == "auto":
            output = "sparse" if device.type == "cpu" else "dense"
        if output not in OUTPUTS:
            raise ValueError(f"output must be auto, sparse or dense, got {output!r}")
        self.output = output

    def _epoch_plan(self) -> list[tuple[int, int, CSRBatch]]:
        """Host-side layout of one epoch, sent to the device in a few transfers: the training
        entries in permuted-user order, and per batch its CSR pattern plus the same entries
        in column order (for the X.T products of the backward pass). The column order comes
        from the column order of the whole matrix, computed once, stably re-sorted by batch
        id (a radix sort), so no per-batch sort is needed."""
        perm = self.rng.permutation(self.users)
        counts = self.indptr[perm + 1] - self.indptr[perm]
        ptr = np.zeros(len(perm) + 1, dtype=np.int64)
        np.cumsum(counts, out=ptr[1:])
        pos = np.repeat(self.indptr[perm] - ptr[:-1], counts) + np.arange(ptr[-1])
        bs, n_items = self.recipe.batch_size, self.n_items
        n_batches = -(-len(perm) // bs)
        user_batch = np.arange(len(perm)) // bs
        entry_batch = np.repeat(user_batch.astype(np.uint16 if n_batches < 2**16 else np.int64),
                                counts)
        local_row = np.repeat(np.arange(len(perm)) % bs, counts)
        epoch_pos = np.empty_like(pos)
        epoch_pos[pos] = np.arange(len(pos))
        by_col = epoch_pos[self.col_order]
        t_order = by_col[np.argsort(entry_batch[by_col], kind="stable")]
        col_counts = np.bincount(entry_batch[t_order].astype(np.int64) * n_items
                                 + self.indices[pos[t_order]], minlength=n_batches * n_items)
        t_ptr = np.zeros((n_batches, n_items + 1), dtype=np.int64)
        np.cumsum(col_counts.reshape(n_batches, n_items), axis=1, out=t_ptr[:, 1:])
        bounds = ptr[np.minimum(np.arange(n_batches + 1) * bs, len(perm))]
        t_local = t_order - np.repeat(bounds[:-1], np.diff(bounds))
        dev = self.device
        pos_d, ptr_d, t_local_d, t_rows_d, t_ptr_d = (
            torch.as_tensor(a, device=dev)
            for a in (pos, ptr, t_local, local_row[t_order], t_ptr))
        items = self.items[pos_d]
        plan = []
        for k in range(n_batches):
            a, b = k * bs, min((k + 1) * bs, len(perm))
            lo, hi = int(ptr[a]), int(ptr[b])
            plan.append((lo, hi, CSRBatch(ptr_d[a:b + 1] - lo, items[lo:hi], n_items,
                                          t_local_d[lo:hi], t_rows_d[lo:hi], t_ptr_d[k])))
        return pos_d, plan

    def epoch(self) -> float:
        """One pass over all users with ratings; returns the mean squared error per rating."""
        model, opt = self.model, self.opt
        model.train()
        pos, plan = self._epoch_plan()
        values = self.values[pos]
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
