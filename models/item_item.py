"""What the item-item families share (EASE, SLIM, ItemKNN, RP3beta): a closed-form model whose
learnt state is one items x items weight matrix W, a user's scores x_u W, the Gram matrix
X^T X of the binarised training matrix, and pruning W to the k largest weights of each column
or row. Kept apart so that each family file holds only its own fit."""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from .base import Batch, Recommender
from .sparse_ops import held_blocks, numba_threads

GRAM_BLOCK_BYTES = 1 << 30  # the dense users x items block the dense path holds at once
# the pair path is taken where its updates, the sum of each row's entry count squared, are
# fewer than the dense path's (one per stored entry and item) over PAIR_COST: a pair's update
# is a scattered read-modify-write, the dense path's a streamed, vectorised one (the ratio
# measured at ML-1M's density and ML-20M's shape is in docs/speed.md)
PAIR_COST = 8
PAIR_ROWS = 256  # rows of X^T X a pair task fills (27 MB at 26,744 items: the cache's scale)
PAIR_TASKS = 256  # a task holds at most about this fraction of the pairs, for balance


def gram(x: sp.csr_matrix, dtype: torch.dtype = torch.float32,
         block_bytes: int = GRAM_BLOCK_BYTES) -> torch.Tensor:
    """X^T X (items x items) of a users x items matrix `x`, in `dtype`, never through a dense
    users x items matrix. Two exact ways, the cheaper taken by counting their work:

    - pairs (sparse data, every MovieLens shape): for each user, every pair of their entries
      adds x_ui x_uj to (i, j), Sum_u nnz_u^2 updates, in a compiled kernel whose tasks each
      own a band of rows (`_gram_pairs`): it reads only pairs that exist, where the dense
      path reads a dense row of the block for every stored entry.
    - dense (rows that hold a large share of the columns): over blocks of users of at most
      `block_bytes` of float32, an `embedding_bag` sums for each item the dense rows of the
      block's users who have it.

    Binary data gives integer counts, exact in float32 up to 2^24."""
    n_users, n_items = x.shape
    counts = np.diff(x.indptr).astype(np.float64)
    if PAIR_COST * float(counts @ counts) <= float(x.nnz) * n_items:
        return _gram_pairs(x, dtype)
    rows = max(1, block_bytes // (4 * max(1, n_items)))
    if n_users <= rows:  # one block: one product, no accumulator
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


def _gram_pairs(x: sp.csr_matrix, dtype: torch.dtype) -> torch.Tensor:
    """X^T X by pairs of each row's entries. The rows of the result are cut into bands of at
    most `PAIR_ROWS` rows and about 1/`PAIR_TASKS` of the updates each (a popular item's row
    takes many), dealt to the threads in turn; a band's task passes over every user and
    updates only its own rows, so no two threads write the same entry and a band stays in
    cache while the users pass."""
    n = x.shape[1]
    np_dtype = torch.empty(0, dtype=dtype).numpy().dtype
    if not x.has_sorted_indices:
        x = x.sorted_indices()
    indptr = x.indptr.astype(np.int64)
    indices = x.indices.astype(np.int64)
    counts = np.diff(indptr).astype(np.float64)
    work = np.bincount(indices, weights=np.repeat(counts, np.diff(indptr)), minlength=n)
    cum = np.cumsum(work)
    by_work = np.searchsorted(cum, np.arange(1, PAIR_TASKS) * (cum[-1] / PAIR_TASKS) if n
                              else np.empty(0), side="right")
    bounds = np.unique(np.concatenate([[0, n], np.arange(0, n, PAIR_ROWS), by_work]))
    out = np.zeros((n, n), dtype=np_dtype)
    _pairs_add(indptr, indices, x.data.astype(np_dtype), bounds.astype(np.int64), out,
               numba_threads())
    return torch.from_numpy(out)


@numba.njit(parallel=True, nogil=True, cache=True)
def _pairs_add(indptr, indices, data, bounds, out, threads):  # pragma: no cover - compiled
    """out[i, j] += x_ui x_uj for every user u and pair of their entries with i in a band:
    thread t takes bands t, t + threads, ...; each row's indices sorted."""
    for t in numba.prange(threads):
        for band in range(t, len(bounds) - 1, threads):
            lo, hi = bounds[band], bounds[band + 1]
            for u in range(len(indptr) - 1):
                s, e = indptr[u], indptr[u + 1]
                a = s + np.searchsorted(indices[s:e], lo)
                while a < e and indices[a] < hi:
                    i, v = indices[a], data[a]
                    for b in range(s, e):
                        out[i, indices[b]] += v * data[b]
                    a += 1


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
