"""Autograd functions for autoencoders over sparse rating rows (a batch of rows given as CSR).

`sparse_linear`: X @ W + b for a CSR batch X and an item-major W (items x out), the first
layer of a user autoencoder. The forward is an `embedding_bag` over the observed (item, rating)
pairs; the weight gradient is X.T @ dZ, a sparse-dense product, instead of a dense users x
items product.

`sampled_linear`: (H @ W.T + b) at the observed pairs only (SDDMM), the output layer under a
loss masked to observed ratings. Its backward is again two sparse-dense products.

Both cost O(nnz x width) rather than O(users x items x width). The products with X.T need the
batch's entries in column order; a `CSRBatch` may carry that order precomputed (the batched
engine plans it for a whole epoch at once), else it is derived by a CSR transpose.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")


@dataclass(frozen=True)
class CSRBatch:
    """The pattern of a batch of sparse rows: row pointers `crow` and column indices `cols`.

    Optional column-ordered view of the same entries: `t_perm` (entry positions sorted by
    column), `t_rows` (their row indices) and `t_ptr` (column pointers, n_cols + 1).
    """

    crow: torch.Tensor
    cols: torch.Tensor
    n_cols: int
    t_perm: torch.Tensor | None = None
    t_rows: torch.Tensor | None = None
    t_ptr: torch.Tensor | None = None

    @property
    def n_rows(self) -> int:
        return self.crow.numel() - 1

    def csr(self, values: torch.Tensor) -> torch.Tensor:
        return torch.sparse_csr_tensor(self.crow, self.cols, values, (self.n_rows, self.n_cols),
                                       check_invariants=False)

    def rows_times(self, dense: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """X @ dense for X = this pattern with `weights`: (n_rows, width)."""
        return F.embedding_bag(self.cols, dense, self.crow[:-1], mode="sum",
                               per_sample_weights=weights)

    def cols_times(self, dense: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """X.T @ dense for X = this pattern with `weights`: (n_cols, width)."""
        if self.t_perm is None:
            return torch.sparse.mm(self.csr(weights).t(), dense)
        return F.embedding_bag(self.t_rows, dense, self.t_ptr, mode="sum",
                               per_sample_weights=weights.index_select(0, self.t_perm),
                               include_last_offset=True)


class _SparseLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight, bias, batch: CSRBatch, values):
        z = batch.rows_times(weight, values) + bias
        ctx.save_for_backward(values)
        ctx.batch = batch
        return z

    @staticmethod
    def backward(ctx, dz):
        (values,) = ctx.saved_tensors
        dw = ctx.batch.cols_times(dz, values) if ctx.needs_input_grad[0] else None
        db = dz.sum(0) if ctx.needs_input_grad[1] else None
        return dw, db, None, None


class _SampledLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, weight, bias, batch: CSRBatch):
        # the bias enters as the sampled input (beta = 1); index_select is 3x faster than
        # bias[cols] on CPU
        at = batch.csr(bias.index_select(0, batch.cols))
        ctx.save_for_backward(h, weight)
        ctx.batch = batch
        return torch.sparse.sampled_addmm(at, h, weight.t()).values()

    @staticmethod
    def backward(ctx, g):
        h, weight = ctx.saved_tensors
        batch = ctx.batch
        g = g.contiguous()
        dh = batch.rows_times(weight, g) if ctx.needs_input_grad[0] else None
        dw = batch.cols_times(h, g) if ctx.needs_input_grad[1] else None
        db = torch.zeros(weight.shape[0], dtype=g.dtype, device=g.device).index_add_(
            0, batch.cols, g) if ctx.needs_input_grad[2] else None
        return dh, dw, db, None


def sparse_linear(weight, bias, batch: CSRBatch, values):
    """Rows of X (pattern `batch`, entries `values`) -> X @ weight + bias, (rows, out), for an
    item-major `weight` (items x out)."""
    return _SparseLinear.apply(weight, bias, batch, values)


def sampled_linear(h, weight, bias, batch: CSRBatch):
    """(h @ weight.T + bias)[r, c] for each stored entry (r, c) of `batch`, in CSR order.
    The SDDMM runs in the weight's float32: a bf16-autocast `h` is cast up (and its
    gradient back down by autograd)."""
    return _SampledLinear.apply(h.to(weight.dtype), weight, bias, batch)
