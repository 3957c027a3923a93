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
kernel users x users during the fit."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from .base import Batch, LogUniform, ModelConfig, Recommender, Space
from .registry import register

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
    (scoring reads them from sparse rows without a dense copy of either side)."""
    s12 = W_VAR * dots / d + B_VAR
    s11 = W_VAR * a_sq / d + B_VAR
    s22 = W_VAR * b_sq / d + B_VAR
    norm = torch.sqrt(s11[:, None] * s22[None, :])
    cos = (s12 / norm).clamp(-1.0, 1.0)
    theta = torch.arccos(cos)
    e_relu = norm * (torch.sqrt(1.0 - cos * cos) + (math.pi - theta) * cos) / (2 * math.pi)
    e_drelu = (math.pi - theta) / (2 * math.pi)
    return W_VAR * e_relu + B_VAR + W_VAR * e_drelu * s12


def dual(k: torch.Tensor, x: torch.Tensor, lam: float) -> torch.Tensor:
    """(K + lam tr(K)/n I)^-1 X, the authors' regularisation (`jnp.abs(reg) * trace / n`),
    by a Cholesky solve in float64 (K is symmetric positive semi-definite)."""
    n = k.shape[0]
    reg = k.double()
    reg.diagonal().add_(abs(lam) * reg.diagonal().sum() / n)
    return torch.cholesky_solve(x.double(), torch.linalg.cholesky(reg)).float()


class InfAE(Recommender):
    trainer = "closed-form"

    def __init__(self, n_users: int, n_items: int, cfg: InfAEConfig):
        super().__init__()
        self.cfg = cfg
        n = n_users if cfg.user_support <= 0 else min(cfg.user_support, n_users)
        self.register_buffer("support", torch.zeros(n, n_items, dtype=torch.bool))
        self.register_buffer("alpha", torch.zeros(n, n_items))

    def fit(self, x: sp.csr_matrix) -> None:
        n = self.support.shape[0]
        rows = np.arange(x.shape[0])
        if n < x.shape[0]:  # the authors' `sample_users`: a random user support
            gen = torch.Generator().manual_seed(int(torch.initial_seed() % 2**63))
            rows = np.sort(torch.randperm(x.shape[0], generator=gen)[:n].numpy())
        support = torch.from_numpy((x[rows] != 0).toarray())
        dense = support.float()
        self.support.copy_(support)
        self.alpha.copy_(dual(ntk(dense, dense), dense, self.cfg.lam))

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
