"""What the item-item families share (EASE, SLIM, ItemKNN, RP3beta): a closed-form model whose
learnt state is one items x items weight matrix W, a user's scores x_u W, the Gram matrix
X^T X of the binarised training matrix, and pruning W to the k largest weights of each column
or row. Kept apart so that each family file holds only its own fit."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from .base import Batch, Recommender
from .sparse_ops import held_blocks

GRAM_BLOCK_BYTES = 1 << 30  # the dense users x items block `gram` holds at once


def gram(x: sp.csr_matrix, dtype: torch.dtype = torch.float32,
         block_bytes: int = GRAM_BLOCK_BYTES) -> torch.Tensor:
    """X^T X (items x items) of a users x items matrix `x`, as sparse-dense products over
    blocks of users: for each item, an `embedding_bag` sums the dense rows of the block's
    users who have it, which reads only the stored ratings (faster than a dense GEMM or
    `torch.sparse.mm`; `bench speed` times them). A block is at most `block_bytes` of float32,
    so no dense users x items matrix is ever whole and the items x items sum is held once.
    Exact for binary data, whose entries are integer counts."""
    n_users, n_items = x.shape
    rows = max(1, block_bytes // (4 * max(1, n_items)))
    if n_users <= rows:  # one block (ml-100k, ml-1m): one product, no accumulator
        return _gram_block(x, x.T.tocsr(), 0, n_items).to(dtype)
    out = torch.zeros(n_items, n_items)
    for a in range(0, n_users, rows):
        part = x[a:a + rows]
        xt = part.T.tocsr()
        for c in range(0, n_items, GRAM_COLUMNS):  # a slice of columns at a time: the sum
            out[:, c:c + GRAM_COLUMNS] += _gram_block(part, xt, c, c + GRAM_COLUMNS)  # once
    return out.to(dtype)


GRAM_COLUMNS = 4096  # columns of X^T X a block's product fills at once


def _gram_block(x: sp.csr_matrix, xt: sp.csr_matrix, c0: int, c1: int) -> torch.Tensor:
    """Columns c0:c1 of X^T X for the rows of `x` (`xt` its transpose): items x (c1 - c0)."""
    dense = torch.from_numpy(x[:, c0:c1].toarray().astype(np.float32))
    return F.embedding_bag(torch.from_numpy(xt.indices.astype(np.int64)), dense,
                           torch.from_numpy(xt.indptr[:-1].astype(np.int64)), mode="sum",
                           per_sample_weights=torch.from_numpy(xt.data.astype(np.float32)))


TOP_K_BLOCK = 1024  # columns (or rows) of W whose top k `keep_top_k` selects at once


def keep_top_k(w: torch.Tensor, k: int, dim: int = 0, in_place: bool = False) -> torch.Tensor:
    """`w` with all but the k largest entries of each column (`dim` 0) or row (`dim` 1) set to
    0; k <= 0 or k >= the length keeps everything. Ties at the k-th value go to the lower
    index, as a stable descending sort would order them (torch.topk leaves their order open):
    a column keeps every entry above its k-th largest value and, of the entries equal to it,
    the first ones by index until k are kept. A partial selection (`topk` finds the k-th
    value) rather than a sort of every column: at 26,744 items the stable sort was most of
    ItemKNN's fit. Done a block of columns (or rows) at a time, so that the selection's
    values and indices never span the whole matrix (at 26,744 items a whole sort held 8.6 GB
    beside W's 2.9); `in_place` prunes `w` itself instead of a copy, for a caller that no
    longer needs it. Finite entries only (a NaN has no place in the order)."""
    n = w.shape[dim]
    if k <= 0 or k >= n:
        return w
    out = w if in_place else w.clone()
    for a in range(0, w.shape[1 - dim], TOP_K_BLOCK):
        part = out.narrow(1 - dim, a, min(TOP_K_BLOCK, w.shape[1 - dim] - a))
        kth = torch.topk(part, k, dim=dim, sorted=False).values.amin(dim, keepdim=True)
        above = part > kth
        tied = part == kth
        # of the entries tied at the k-th value, the first (k - how many lie above) by index
        room = k - above.sum(dim, keepdim=True)
        keep = above.logical_or_(tied.logical_and_(tied.cumsum(dim) <= room))
        part.masked_fill_(keep.logical_not_(), 0.0)
    return out


class ItemItem(Recommender):
    """A closed-form item-item model: `fit` sets `weight` (items x items), scores are x_u W."""

    trainer = "closed-form"
    # the Gram matrix, factored and inverted in its own memory, and the factorisation's copy
    working_copies = 2.0
    # each pass over the held column blocks of W serves more users (a user's scores are the
    # same whatever batch holds them)
    score_batch_bytes = 512 << 20

    def __init__(self, n_users: int, n_items: int, cfg):
        super().__init__()
        self.cfg = cfg
        # set by fit or by loading saved weights; empty until then, so that its untouched
        # pages hold no memory while the fit builds the matrix that replaces it
        self.register_buffer("weight", torch.empty(n_items, n_items))

    def weights(self, x: sp.csr_matrix) -> torch.Tensor:
        raise NotImplementedError

    def fit(self, x: sp.csr_matrix) -> None:
        w = self.weights(x)
        if w.shape != self.weight.shape:
            raise ValueError(f"{type(self).__name__}: weights {tuple(w.shape)}, expected "
                             f"{tuple(self.weight.shape)}")
        self.weight = w.to(self.weight.device, torch.float32).contiguous()

    def score(self, batch: Batch) -> torch.Tensor:
        return batch.pattern.rows_times(self.weight, batch.values,
                                        held_blocks(self, self.weight))
