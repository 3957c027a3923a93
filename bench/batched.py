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
        self.indptr = train.indptr.astype(np.int64)
        self.items = torch.as_tensor(train.indices.astype(np.int64), device=device)
        self.values = torch.as_tensor(train.data, device=device)
        self.users = np.flatnonzero(np.diff(self.indptr) > 0)
        self.rng = np.random.default_rng(seed)
        if output == "auto":
            output = "sparse" if device.type == "cpu" else "dense"
        if output not in OUTPUTS:
            raise ValueError(f"output must be auto, sparse or dense, got {output!r}")
        self.output = output

    def _epoch_plan(self):
        """Host-side layout of one epoch: gather positions into the training nonzeros, the
        permuted row pointers, and batch boundaries (as user positions)."""
        perm = self.rng.permutation(self.users)
        counts = self.indptr[perm + 1] - self.indptr[perm]
        ptr = np.zeros(len(perm) + 1, dtype=np.int64)
        np.cumsum(counts, out=ptr[1:])
        pos = np.repeat(self.indptr[perm] - ptr[:-1], counts) + np.arange(ptr[-1])
        bs = self.recipe.batch_size
        bounds = [(i, min(i + bs, len(perm))) for i in range(0, len(perm), bs)]
        dev = self.device
        return torch.as_tensor(pos, device=dev), torch.as_tensor(ptr, device=dev), ptr, bounds

    def epoch(self) -> float:
        """One pass over all users with ratings; returns the mean squared error per rating."""
        model, opt = self.model, self.opt
        model.train()
        pos, ptr_d, ptr, bounds = self._epoch_plan()
        items, values = self.items[pos], self.values[pos]
        total = torch.zeros((), device=self.device)
        for a, b in bounds:
            lo, hi = int(ptr[a]), int(ptr[b])
            it, val, crow = items[lo:hi], values[lo:hi], ptr_d[a:b + 1] - lo
            h = model.encode_sparse(crow, it, val)
            if self.output == "sparse":
                pred = model.decode_at(h, crow, it)
            else:
                rows = torch.repeat_interleave(torch.arange(b - a, device=self.device),
                                               crow.diff(), output_size=hi - lo)
                pred = model.decode(h)[rows, it]
            se = (pred - val).square().sum()
            loss = se / (hi - lo)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += se.detach()
        return float(total) / int(ptr[-1])
