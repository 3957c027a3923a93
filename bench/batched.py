"""The `batched` engine: mini-batches of users built from the sparse split, loss on observed.

Each epoch draws a user permutation on the host, turns it into one gather index over the
training nonzeros and sends that to the device once; batches are then slices of it, with
boundaries known on the host, so nothing inside the epoch waits for the device. The first
layer reads a batch as an `embedding_bag` over its (item, rating) pairs instead of a dense
users x items block, and for the masked loss the decoder is evaluated only at the observed
(user, item) pairs (`SAE.decode_at`) when that is cheaper than the full-width output
(`output="auto"` picks by the share of observed entries; see `DENSE_OUTPUT_ABOVE`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from models.sae import SAE, Recipe

# Above this share of observed entries per batch, one dense (B x h) @ (h x I) product beats
# gathering h-wide decoder rows per rating on CPU. Measured by `python -m bench speed`.
DENSE_OUTPUT_ABOVE = 0.02


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
        self.model, self.recipe, self.device = model, recipe, device
        self.opt = make_optimizer(model.parameters(), recipe, device)
        self.indptr = train.indptr.astype(np.int64)
        self.items = torch.as_tensor(train.indices.astype(np.int64), device=device)
        self.values = torch.as_tensor(train.data, device=device)
        self.users = np.flatnonzero(np.diff(self.indptr) > 0)
        self.rng = np.random.default_rng(seed)
        density = train.nnz / max(1, train.shape[0] * train.shape[1])
        if output == "auto":
            output = "dense" if density > DENSE_OUTPUT_ABOVE else "gather"
        if output not in ("dense", "gather"):
            raise ValueError(f"output must be auto, dense or gather, got {output!r}")
        self.output = output

    def _epoch_plan(self):
        """Host-side layout of one epoch: gather positions, per-batch offsets and rows."""
        perm = self.rng.permutation(self.users)
        counts = self.indptr[perm + 1] - self.indptr[perm]
        ends = np.cumsum(counts)
        starts = ends - counts
        pos = np.repeat(self.indptr[perm] - starts, counts) + np.arange(ends[-1])
        bs = self.recipe.batch_size
        bounds = [(i, min(i + bs, len(perm))) for i in range(0, len(perm), bs)]
        local_row = np.repeat(np.arange(len(perm)) % bs, counts)
        dev = self.device
        return (torch.as_tensor(pos, device=dev), torch.as_tensor(starts, device=dev),
                torch.as_tensor(local_row, device=dev), starts, ends, bounds)

    def epoch(self) -> float:
        """One pass over all users with ratings; returns the mean squared error per rating."""
        model, opt = self.model, self.opt
        model.train()
        pos, starts_d, rows_d, starts, ends, bounds = self._epoch_plan()
        items, values = self.items[pos], self.values[pos]
        total = torch.zeros((), device=self.device)
        for a, b in bounds:
            lo, hi = int(starts[a]), int(ends[b - 1])
            it, val = items[lo:hi], values[lo:hi]
            h = model.encode_sparse(it, val, starts_d[a:b] - lo)
            rows = rows_d[lo:hi]
            if self.output == "gather":
                pred = model.decode_at(h, rows, it)
            else:
                pred = model.decode(h)[rows, it]
            se = (pred - val).square().sum()
            loss = se / (hi - lo)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += se.detach()
        return float(total) / int(ends[-1])
