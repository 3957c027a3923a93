"""Low-rank EDLAE (Steck, "Autoencoders that don't overfit towards the identity", NeurIPS
2020, section 3 and its supplement; code `hasteck/EDLAE_NeurIPS2020`, `learn_EDLAE_approx`):
a linear autoencoder B = U V^T of rank k trained with the dropout-derived penalty of
`edlae` (Lambda = lambda I + p / (1 - p) diag(X^T X)), so that a low-rank model does not
spend its rank on the identity.

The fit alternates the authors' closed-form updates, starting from V^T ~ N(0, 1e-4^2):

    U   = (I - C diag(gamma)) V (V^T V)^-1,          C = (X^T X + Lambda)^-1
    V^T = (U^T (X^T X + Lambda) U)^-1 U^T X^T X

where, with the zero-diagonal constraint that approximates full emphasis (`zero_diag`, the
paper's EDLAE for large ranks), gamma solves (C * K) gamma = diag(K), K = V (V^T V)^-1 V^T,
and V^T is corrected so that diag(U V^T) = 0; without it gamma is Lambda's diagonal (the
low-rank DLAE of Table 1, line 3). `iterations` rounds (the authors run 5 to 10). Scores are
x_u U V^T: 2 x items x k numbers kept instead of EASE's items^2, the fit itself still
factorises one items x items matrix, and each zero-diagonal round solves one items x items
system (cheap at ML-1M's 3,706 items; at ML-20M's 26,744 a round costs about EASE's fit).
"""

from __future__ import annotations

from dataclasses import dataclass

import scipy.sparse as sp
import torch

from .base import Batch, Choice, IntRange, LogUniform, Recommender, Space, Uniform
from .edlae import DLAEConfig, dlae_weights, edlae_weights
from .item_item import gram
from .registry import register


@dataclass(frozen=True)
class LowRankConfig(DLAEConfig):  # lambda and p as EDLAE's
    rank: int = 1000            # k
    iterations: int = 10
    zero_diag: bool = True      # EDLAE's zero-diagonal approximation (False: low-rank DLAE)


def lowrank_factors(x: sp.csr_matrix, cfg: LowRankConfig, seed: int = 0,
                    iterate_at_full_rank: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(U, V), items x k each, by the authors' alternating updates (float64). Where k is at
    least the number of items the rank constrains nothing, and the fit is the closed form
    itself (U = B of `edlae` or `dlae`, V = I): the updates land there too on
    well-conditioned data (tested with `iterate_at_full_rank`), but their k x k systems are
    near singular where B is (a large lambda on tiny data)."""
    if not 0.0 <= cfg.p < 1.0:
        raise ValueError(f"p must lie in [0, 1) (a dropout probability), got {cfg.p}")
    n_items = x.shape[1]
    if cfg.rank >= n_items and not iterate_at_full_rank:
        b = (edlae_weights if cfg.zero_diag else dlae_weights)(x, cfg.lam, cfg.p).double()
        return b, torch.eye(n_items, dtype=torch.float64)
    full = gram(x, torch.float64)
    # the items some training user has (the authors' data holds no other): an item with no
    # interaction has a zero row of U and column of V^T, and would make the updates singular
    active = torch.nonzero(full.diagonal() > 0).flatten()
    g = full if len(active) == n_items else full[active][:, active]
    del full  # the float64 items x items matrices held below: g, A, C and two in a round
    n = g.shape[0]
    k = min(cfg.rank, n)
    penalty = cfg.lam + cfg.p / (1.0 - cfg.p) * g.diagonal()
    a = g.clone()
    a.diagonal().add_(penalty)                       # X^T X + Lambda
    c = a.clone()                                    # its factor, then its inverse, in place
    c = torch.cholesky_inverse(torch.linalg.cholesky(c, out=c), out=c)
    gen = torch.Generator().manual_seed(seed)
    vt = torch.randn(k, n, generator=gen, dtype=torch.float64) * 1e-4
    u = torch.zeros(n, k, dtype=torch.float64)
    for _ in range(cfg.iterations):
        gg = torch.linalg.inv(vt @ vt.T)             # (V^T V)^-1, k x k
        gamma = penalty
        if cfg.zero_diag:
            kk = vt.T @ gg @ vt
            ck, kk = c * kk, kk.diagonal().clone()
            gamma = torch.linalg.solve(ck, kk)
            del ck
        h = c * (-gamma)                             # column j of C times -gamma_j
        h.diagonal().add_(1.0)
        u = h @ (vt.T @ gg)
        h2 = torch.linalg.solve(u.T @ a @ u, u.T)    # (U^T A U)^-1 U^T, k x n
        vt = h2 @ g
        if cfg.zero_diag:
            eta = (u * vt.T).sum(1) / (u * h2.T).sum(1)  # diag(U V^T) / diag(U H)
            vt = vt - h2 * eta
    out_u = torch.zeros(n_items, min(cfg.rank, n_items), dtype=torch.float64)
    out_v = torch.zeros_like(out_u)
    out_u[active, :k], out_v[active, :k] = u, vt.T
    return out_u, out_v


class LowRankEDLAE(Recommender):
    trainer = "closed-form"

    def __init__(self, n_users: int, n_items: int, cfg: LowRankConfig):
        super().__init__()
        self.cfg = cfg
        k = min(cfg.rank, n_items)
        self.register_buffer("u", torch.zeros(n_items, k))
        self.register_buffer("v", torch.zeros(n_items, k))
        # the fit's peak: about six float64 items x items matrices (G, A, C, and K, C * K and
        # its LU factor in a zero-diagonal round) against the 2 x items x k numbers kept
        self.working_copies = 2.0 + 12.0 * n_items / (2.0 * k)

    def fit(self, x: sp.csr_matrix) -> None:
        u, v = lowrank_factors(x, self.cfg, int(torch.initial_seed()) % 2**31)
        self.u.copy_(u.float())
        self.v.copy_(v.float())

    def score(self, batch: Batch) -> torch.Tensor:
        return batch.pattern.rows_times(self.u, batch.values) @ self.v.T


SPACE = Space({"lam": LogUniform(1.0, 5000.0), "p": Uniform(0.0, 0.9),
               "rank": Choice((100, 200, 500, 1000)), "iterations": IntRange(3, 20)},
              "Steck tunes lambda, p and the rank on held-out users")

register("edlae-lowrank", lambda n_rows, n_cols, cfg: LowRankEDLAE(n_rows, n_cols, cfg),
         LowRankConfig(note="edlae's lambda 300 and p 0.5, 10 rounds (the authors' 5 to 10), "
                            "rank 1000 (theirs): validation NDCG@10 (5% carving, seed 0) for "
                            "rank 100 / 200 / 500 / 1000: u1 0.1956 / 0.1927 / 0.1978 / "
                            "0.1980, ml-1m 0.1725 / 0.1801 / 0.1819 / 0.1833 (full-rank "
                            "edlae: 0.1983, 0.1828)"),
         "Steck, NeurIPS 2020 (low-rank EDLAE, zero-diagonal approximation): B = U V^T of "
         "rank k under EDLAE's dropout penalty, by the authors' alternating closed forms",
         space=SPACE)
