"""The infinite-width autoencoder, ∞-AE (Sachdeva, Dhaliwal, Wu and McAuley, "Infinite
Recommendation Networks: A Data-Centric Approach", NeurIPS 2022; code `noveens/infinite_ae_cf`,
`model.py`): kernel ridge regression over users with the neural tangent kernel (NTK) of a
one-hidden-layer ReLU autoencoder of infinite width,

    scores(x) = K(x, X) (K(X, X) + lambda tr(K) / n I)^-1 X

for X the binary users x items support (every training user, or `user_support` of them drawn
at random, as the authors do for large data) and K its NTK. The authors take the kernel from
neural-tangents (`stax.Dense(W_std=sqrt 2, b_std=0.1, parameterization='ntk')`, ReLU, Dense);
here it is the same kernel in closed form (`ntk`: the arc-cosine expectations of ReLU), checked
against the empirical NTK of a wide finite network in the tests. A row the model never saw
scores through its kernel with the support, so the model folds new users in.

Memory: the support and the dual coefficients are users x items (bool and float32), the
kernel users x users during the fit (five float32 buffers while it is formed, then one float64
for its inverse); no dense float copy of the support is made."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from .base import Batch, LogUniform, ModelConfig, Recommender, Space
from .item_item import gram
from .registry import register
from .sparse_ops import CSRBatch

W_VAR, B_VAR = 2.0, 0.01  # the authors' W_std = sqrt(2), b_std = 0.1, squared


@dataclass(frozen=True)
class InfAEConfig(ModelConfig):
    feedback: str = "implicit"
    inductive: bool = True
    lam: float = 5.0            # ridge, relative to the kernel's mean diagonal
    user_support: int = -1      # users in the support (-1: every training user)


def ntk(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The NTK of Dense(W_VAR, B_VAR) -> ReLU -> Dense(W_VAR, B_VAR) in the NTK
    parameterisation between the rows of `a` and of `b` (neural-tangents' conventions: the
    input kernel is x.x' / d):

        S1 = W_VAR x.x'/d + B_VAR                          (first layer's NNGP and NTK)
        theta = arccos(S1(x, x') / sqrt(S1(x, x) S1(x', x')))
        E[relu relu] = sqrt(S1(x,x) S1(x',x')) (sin theta + (pi - theta) cos theta) / 2 pi
        E[relu' relu'] = (pi - theta) / 2 pi
        NTK = W_VAR E[relu relu] + B_VAR + W_VAR E[relu' relu'] S1"""
    return ntk_of_dots(a @ b.T, (a * a).sum(1), (b * b).sum(1), a.shape[1])


def ntk_of_dots(dots: torch.Tensor, a_sq: torch.Tensor, b_sq: torch.Tensor,
                d: int) -> torch.Tensor:
    """`ntk` from the inner products it needs: x.x' (rows of a by rows of b), x.x and x'.x'
    (scoring reads them from sparse rows without a dense copy of either side). Computed in
    `dots`' memory (which it overwrites) and four more buffers of its shape, each step the
    same float32 operation, in the same order, as the formula's."""
    s12 = dots.mul_(W_VAR).div_(d).add_(B_VAR)
    s11 = W_VAR * a_sq / d + B_VAR
    s22 = W_VAR * b_sq / d + B_VAR
    norm = torch.sqrt(s11[:, None] * s22[None, :])
    cos = torch.div(s12, norm).clamp_(-1.0, 1.0)
    root = torch.mul(cos, cos).neg_().add_(1.0).sqrt_()       # sqrt(1 - cos^2) = sin theta
    theta = torch.arccos(cos).neg_().add_(math.pi)            # pi - theta
    e_relu = norm.mul_(root.add_(cos.mul_(theta))).div_(2 * math.pi)
    del root, cos
    e_drelu = theta.div_(2 * math.pi)
    return e_relu.mul_(W_VAR).add_(B_VAR).add_(e_drelu.mul_(W_VAR).mul_(s12))


def dual(k: torch.Tensor, x: sp.csr_matrix, lam: float, block: int = 2048) -> torch.Tensor:
    """(K + lam tr(K)/n I)^-1 X, the authors' regularisation (`jnp.abs(reg) * trace / n`),
    for a float64 kernel `k` (overwritten: its Cholesky factor, then the inverse, take its
    memory) and the binary support `x` (n x items, sparse); float32. The product with X
    reads X's nonzero entries (X^T's sparse rows times the inverse, `CSRBatch.rows_times`:
    n nnz(X) flop, where a dense Cholesky solve takes 2 n^2 items), `block` columns of the
    symmetric inverse at a time."""
    n = k.shape[0]
    k.diagonal().add_(abs(lam) * k.diagonal().sum() / n)
    inv = torch.cholesky_inverse(torch.linalg.cholesky(k, out=k), out=k)
    xt = x.T.tocsr()  # X^T's rows: each item's users
    pattern = CSRBatch(torch.from_numpy(xt.indptr.astype(np.int64)),
                       torch.from_numpy(xt.indices.astype(np.int64)), n)
    weights = torch.from_numpy(xt.data.astype(np.float64))
    out = torch.empty(n, x.shape[1])
    for a in range(0, n, block):
        cols = inv[a:a + block].T.contiguous()  # columns a.. of the inverse, by symmetry
        out[a:a + block] = pattern.rows_times(cols, weights).T  # (X^T inv[:, a..])^T
    return out


class InfAE(Recommender):
    trainer = "closed-form"

    def __init__(self, n_users: int, n_items: int, cfg: InfAEConfig):
        super().__init__()
        self.cfg = cfg
        n = n_users if cfg.user_support <= 0 else min(cfg.user_support, n_users)
        self.register_buffer("support", torch.zeros(n, n_items, dtype=torch.bool))
        self.register_buffer("alpha", torch.zeros(n, n_items))
        # the fit's peak (the dry run's estimate, in float32 copies of the 2 n x items saved
        # values): the support and alpha (5 bytes per entry) beside the kernel's five float32
        # n x n buffers, or scoring's float items x n copy of the support
        self.working_copies = (5.0 * n * n_items + max(20.0 * n * n, 4.0 * n * n_items)) / (
            8.0 * n * n_items)

    def fit(self, x: sp.csr_matrix) -> None:
        n = self.support.shape[0]
        rows = np.arange(x.shape[0])
        if n < x.shape[0]:  # the authors' `sample_users`: a random user support
            gen = torch.Generator().manual_seed(int(torch.initial_seed() % 2**63))
            rows = np.sort(torch.randperm(x.shape[0], generator=gen)[:n].numpy())
        xs = sp.csr_matrix(x[rows] != 0, dtype=np.float32)  # the binary support, sparse
        coo = xs.tocoo()
        self.support.zero_()
        self.support[torch.from_numpy(coo.row.astype(np.int64)),
                     torch.from_numpy(coo.col.astype(np.int64))] = True
        # X X^T from the stored entries (integer counts: exact in float32, as the dense
        # product of the 0/1 rows is), the kernel in its memory, then the float64 inverse
        counts = torch.from_numpy(np.diff(xs.indptr).astype(np.float32))
        k = ntk_of_dots(gram(xs.T.tocsr()), counts, counts, xs.shape[1])
        reg = k.double()
        del k
        self.alpha.copy_(dual(reg, xs, self.cfg.lam))

    def _support_t(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The support as a float items x users matrix and its rows' counts, made once per
        support (a fit or a load changes its version) instead of in every scoring call."""
        key = (self.support.data_ptr(), self.support._version)
        held = self.__dict__.get("_held")
        if held is None or held[0] != key:
            held = (key, self.support.t().float().contiguous(), self.support.sum(1).float())
            self.__dict__["_held"] = held
        return held[1], held[2]

    def score(self, batch: Batch) -> torch.Tensor:
        support_t, counts = self._support_t()
        ones = torch.ones_like(batch.values)  # the binary rows: x.x' gathers support rows
        dots = batch.pattern.rows_times(support_t, ones)
        return ntk_of_dots(dots, batch.row_sums(ones), counts, self.support.shape[1]) @ self.alpha


register("inf-ae", lambda n_rows, n_cols, cfg: InfAE(n_rows, n_cols, cfg),
         InfAEConfig(lam=5.0,
                     note="lambda 5: validation NDCG@10 (5% carving, seed 0) 0.1981 on u1, "
                          "0.1763 on ml-1m, the best mean over both of lambda in {0.1, 1, 5, "
                          "20, 50, 100}; 2 / 3 / 8 / 12 read 0.2013 / 0.2021 / 0.1940 / "
                          "0.1843 on u1"),
         "Sachdeva et al., ∞-AE, NeurIPS 2022: kernel ridge regression with the NTK of an "
         "infinitely wide one-hidden-layer autoencoder",
         space=Space({"lam": LogUniform(0.01, 200.0)},
                     "lambda is the only hyperparameter of the kernel machine (the authors "
                     "search 0, 1, 5, 20, 50, 100 on validation HR@100)"))
