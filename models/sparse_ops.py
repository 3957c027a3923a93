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

On CPU both are bound by gathering rows of a dense table, not by arithmetic: once the table
outgrows the core's cache, every gathered row is a trip to memory. Where a table is large and
each of its rows is gathered many times (a full batch, a large one), the product runs over
blocks of `BLOCK` columns, each small enough to stay in cache while the whole pattern passes
over it (`_blocks`); the SDDMM runs as a compiled kernel over the same blocks (`_sddmm`).
What blocking gains is measured by `bench speed` and recorded in results/ and the commit that
introduced it (27c9e74), not here.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import numba
import numpy as np
import torch
import torch.nn.functional as F

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")

# Cache blocking (CPU): a table of more than BLOCKED_BYTES whose rows are each gathered at least
# BLOCKED_REUSE times on average is processed BLOCK columns at a time (256 bytes of a float32
# row: four cache lines, the block width that was fastest on ML-1M). Small tables, or tables
# whose rows are gathered only a few times, run whole: copying the blocks would cost more than
# the cache saves.
BLOCK = 64
BLOCKED_BYTES = 4 << 20
BLOCKED_REUSE = 16


def _blockable(table: torch.Tensor) -> bool:
    """A table worth gathering from by column blocks: on CPU, wider than a block and larger
    than the cache budget."""
    return (table.device.type == "cpu" and table.shape[1] > BLOCK
            and table.numel() * table.element_size() > BLOCKED_BYTES)


def column_blocks(table: torch.Tensor) -> list[torch.Tensor]:
    """`table` (rows x width) as contiguous blocks of `BLOCK` columns (the last narrower)."""
    rows, width = table.shape
    # the whole blocks in one copy (a copy per block took three times as long)
    full = width // BLOCK * BLOCK
    blocks = list(table[:, :full].reshape(rows, full // BLOCK, BLOCK).transpose(0, 1)
                  .contiguous().unbind(0))
    return blocks + ([table[:, full:].contiguous()] if full < width else [])


def _blocks(table: torch.Tensor, n_gathers: int) -> list[torch.Tensor] | None:
    """The column blocks of `table` (rows x width) to gather from one at a time, contiguous;
    None where the whole table is better (not on CPU, small, or too little reuse to pay for
    the copy)."""
    if not _blockable(table) or n_gathers < BLOCKED_REUSE * table.shape[0]:
        return None
    return column_blocks(table)


def held_blocks(owner: torch.nn.Module, table: torch.Tensor) -> list[torch.Tensor] | None:
    """`table`'s column blocks, copied once and kept on `owner` while `table` is the same
    tensor at the same version, for `bag_sum(..., blocks=)`. Every batch of an evaluation
    gathers from an item-item model's weight: copied per batch, the blocks would not pay
    (`_blocks` declines them), copied once they do. The copy costs one more table's memory
    while it is held. None while `owner` trains, or where the table is not worth blocking."""
    if owner.training or not _blockable(table):
        return None
    held = owner.__dict__.get("_held_blocks")
    if held is None or held[0] is not table or held[1] != table._version:
        owner.__dict__["_held_blocks"] = None  # the stale copy goes before the new one is made
        held = owner.__dict__["_held_blocks"] = (table, table._version, column_blocks(table))
    return held[2]


def bag_sum(indices: torch.Tensor, table: torch.Tensor, offsets: torch.Tensor,
            weights: torch.Tensor, include_last_offset: bool = False,
            blocks: list[torch.Tensor] | None = None) -> torch.Tensor:
    """`embedding_bag` (weighted sums of `table`'s rows), column block by block where that
    keeps the table in cache: `blocks` given (`held_blocks`) where the batch gathers at least
    as many rows as the table has, else copied here where the reuse pays for it (`_blocks`)."""
    if blocks is None or indices.numel() < table.shape[0]:
        blocks = _blocks(table, indices.numel())
    if blocks is None:
        return F.embedding_bag(indices, table, offsets, mode="sum", per_sample_weights=weights,
                               include_last_offset=include_last_offset)
    return torch.cat([F.embedding_bag(indices, block, offsets, mode="sum",
                                      per_sample_weights=weights,
                                      include_last_offset=include_last_offset)
                      for block in blocks], dim=1)


def numba_threads() -> int:
    """Set numba's threads to torch's (what the executor gave this worker), within numba's
    pool, before a compiled parallel kernel; the count set."""
    threads = max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(threads)
    return threads


@numba.njit(parallel=True, fastmath=True, nogil=True, cache=True)
def _sddmm_add(crow, cols, h, w, out):  # pragma: no cover - compiled
    """out[e] += h[r] . w[cols[e]] for each entry e of row r (one column block)."""
    for r in numba.prange(h.shape[0]):
        for e in range(crow[r], crow[r + 1]):
            c = cols[e]
            acc = np.float32(0.0)
            for k in range(h.shape[1]):
                acc += h[r, k] * w[c, k]
            out[e] += acc


def _sddmm(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
           batch: CSRBatch) -> torch.Tensor | None:
    """(h @ weight.T + bias) at the batch's entries by column blocks of `weight` on CPU (see
    `_blocks`), float32; None where `_blocks` declines or the inputs are not float32."""
    if h.dtype != torch.float32 or weight.dtype != torch.float32:
        return None
    blocks = _blocks(weight, batch.cols.numel())
    if blocks is None:
        return None
    out = bias.detach().index_select(0, batch.cols)
    crow, cols, o = batch.crow.numpy(), batch.cols.numpy(), out.numpy()
    h = h.detach()
    numba_threads()
    for lo, block in zip(range(0, weight.shape[1], BLOCK), blocks):
        _sddmm_add(crow, cols, h[:, lo:lo + BLOCK].contiguous().numpy(), block.numpy(), o)
    return out


def pointers(index: torch.Tensor, n: int) -> torch.Tensor:
    """CSR pointers (n + 1) of entries whose row (or column) indices are `index`, for the
    entries in that order."""
    ptr = torch.zeros(n + 1, dtype=torch.long, device=index.device)
    ptr[1:] = torch.bincount(index, minlength=n).cumsum(0)
    return ptr


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

    @classmethod
    def of_rows(cls, rows: torch.Tensor, cols: torch.Tensor, n_rows: int, n_cols: int
                ) -> CSRBatch:
        """The pattern of entries (`rows`, `cols`) given in row order."""
        return cls(pointers(rows, n_rows), cols, n_cols)

    @property
    def n_rows(self) -> int:
        return self.crow.numel() - 1

    def entry_rows(self) -> torch.Tensor:
        """The row of every entry, in CSR order; computed once per pattern, as a batch's
        loss may ask for it several times."""
        held = self.__dict__.get("_entry_rows")
        if held is None:
            held = torch.repeat_interleave(torch.arange(self.n_rows, device=self.crow.device),
                                           self.crow.diff(), output_size=self.cols.numel())
            self.__dict__["_entry_rows"] = held  # a cache, not a field: frozen stays frozen
        return held

    def with_column_view(self) -> CSRBatch:
        """This pattern with its column-ordered view (`t_perm`, `t_rows`, `t_ptr`), so that
        `cols_times` gathers rows instead of multiplying by a transposed sparse matrix."""
        if self.t_perm is not None:
            return self
        perm = torch.argsort(self.cols, stable=True)
        return dataclasses.replace(self, t_perm=perm, t_rows=self.entry_rows()[perm],
                                   t_ptr=pointers(self.cols, self.n_cols))

    def csr(self, values: torch.Tensor) -> torch.Tensor:
        return torch.sparse_csr_tensor(self.crow, self.cols, values, (self.n_rows, self.n_cols),
                                       check_invariants=False)

    def rows_times(self, dense: torch.Tensor, weights: torch.Tensor,
                   blocks: list[torch.Tensor] | None = None) -> torch.Tensor:
        """X @ dense for X = this pattern with `weights`: (n_rows, width); `blocks`: `dense`'s
        column blocks where held (`held_blocks`)."""
        return bag_sum(self.cols, dense, self.crow[:-1], weights, blocks=blocks)

    def cols_times(self, dense: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """X.T @ dense for X = this pattern with `weights`: (n_cols, width)."""
        if self.t_perm is None:
            return torch.sparse.mm(self.csr(weights).t(), dense)
        return bag_sum(self.t_rows, dense, self.t_ptr, weights.index_select(0, self.t_perm),
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
        ctx.save_for_backward(h, weight)
        ctx.batch = batch
        blocked = _sddmm(h, weight, bias, batch)
        if blocked is not None:
            return blocked
        # the bias enters as the sampled input (beta = 1); index_select rather than
        # bias[cols], the faster gather on CPU
        at = batch.csr(bias.index_select(0, batch.cols))
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
