"""Higher-order EASE (Steck and Liang, "Negative Interactions for Improved Collaborative
Filtering: Don't go Deeper, go Higher", RecSys 2021; code `hasteck/Higher_Recsys_2021`,
`train_higher`): EASE's item-item matrix B plus a matrix C of weights from item pairs, so that
a user who has both items of a pair gets scores neither item alone explains (a negative weight
where the pair signals a taste the items' sum does not):

    scores = x B + z C,   z_p = x_i x_j for each selected pair p = (i, j)

The pairs are the most frequent co-occurrences in the training matrix (the authors keep the
pairs whose count exceeds a threshold; here the `pairs` most frequent, the same rule with the
threshold set by the count). B keeps EASE's zero diagonal, and C_p is zero on the pair's own
two items. The authors fit both by ADMM (`epochs` rounds, penalty `rho`, with L2 strengths
`lam_b` on B and `lam_c` on C); the rounds here are the same updates, rewritten so that no
round forms B (only the diagonal its constraint needs): each round costs pairs^2 x items
instead of items^2 x pairs, and the tests check them against the authors' loop."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from .base import Batch, IntRange, LogUniform, ModelConfig, Recommender, Space
from .ease import penalised_inverse
from .item_item import gram
from .registry import register
from .sparse_ops import held_blocks


@dataclass(frozen=True)
class HigherEASEConfig(ModelConfig):
    feedback: str = "implicit"
    inductive: bool = True
    lam_b: float = 500.0        # L2 on the item-item matrix B (the authors' lambdaBB)
    lam_c: float = 5000.0       # L2 on the pair-item matrix C (lambdaCC)
    pairs: int = 250            # item pairs kept, the most frequent co-occurrences
    rho: float = 100_000.0      # ADMM penalty (the authors' ML-20M value)
    rounds: int = 40            # ADMM rounds (the authors' epochs)


def top_pairs(g: torch.Tensor, n: int, block: int = 1024) -> torch.Tensor:
    """The `n` item pairs (i < j) with the largest co-occurrence counts in the Gram matrix
    `g` (ties to the lower flat index i * items + j), as an (n, 2) tensor. Each row's n
    first pairs in that order are candidates (a pair among the n first overall is among its
    row's n first), taken `block` rows at a time: never a sort, or a masked copy, of all
    items x items entries."""
    m = g.shape[0]
    cols = torch.arange(m)
    values, flat = [], []
    for a in range(0, m, block):
        rows = torch.arange(a, min(a + block, m))
        part = g[a:a + block].masked_fill(cols[None, :] <= rows[:, None], -1.0)  # i < j only
        top = torch.sort(part, dim=1, descending=True, stable=True)
        values.append(top.values[:, :n].flatten())
        flat.append((rows[:, None] * m + top.indices[:, :n]).flatten())
    flat = torch.cat(flat)
    by_index = torch.argsort(flat)  # the candidates in flat order, so that the stable sort
    values, flat = torch.cat(values)[by_index], flat[by_index]  # below breaks ties by it
    order = flat[torch.sort(values, descending=True, stable=True).indices[:n]]
    return torch.stack([order // m, order % m], dim=1)


def pair_features(x: sp.csr_matrix, pairs: np.ndarray) -> sp.csr_matrix:
    """Z: users x pairs, 1 where a user has both items of the pair."""
    x = (x != 0).astype(np.float32).tocsc()
    return x[:, pairs[:, 0]].multiply(x[:, pairs[:, 1]]).tocsr()


def higher_weights(x: sp.csr_matrix, cfg: HigherEASEConfig
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, C, pairs) by the authors' ADMM, in float64. With M = ZtX P and A = M ZtX^T:

        diag(B~) = 1 - lam_b diag(P) - colsum(M * C),   gamma = diag(B~) / diag(P)
        C = Q (lam_b M + A C + M diag(gamma) + rho (D - U)),   D = C * mask,   U += C - D

    and once after the rounds B = I - lam_b P - M^T C - P diag(gamma)."""
    g = gram(x, torch.float64)
    pairs = top_pairs(g, min(cfg.pairs, g.shape[0] * (g.shape[0] - 1) // 2))
    z = pair_features(x, pairs.numpy())
    zt = z.T.tocsr().astype(np.float64)
    ztx = torch.from_numpy((zt @ x.astype(np.float64)).toarray())
    ztz = torch.from_numpy((zt @ zt.T).toarray())
    p = penalised_inverse(g, cfg.lam_b)
    del g
    q = penalised_inverse(ztz, cfg.lam_c + cfg.rho)
    m = ztx @ p
    a = m @ ztx.T
    mask = torch.ones_like(ztx)
    rows = torch.arange(len(pairs))
    mask[rows, pairs[:, 0]] = 0.0
    mask[rows, pairs[:, 1]] = 0.0
    c = torch.zeros_like(ztx)
    d = torch.zeros_like(ztx)
    u = torch.zeros_like(ztx)
    pdiag = p.diagonal()
    gamma = torch.zeros_like(pdiag)
    used = c  # the C that the last round's B was formed from
    for _ in range(cfg.rounds):
        used = c
        gamma = (1.0 - cfg.lam_b * pdiag - (m * c).sum(0)) / pdiag
        c = q @ (cfg.lam_b * m + a @ c + m * gamma + cfg.rho * (d - u))
        d = c * mask
        u += c - d
    # the authors return the last round's B (formed at its start) and its D (at its end)
    # the formula's float64 operations in its order, two items x items temporaries fewer
    b = p.mul(-cfg.lam_b).sub_(m.T @ used).sub_(p.mul_(gamma))
    del p
    b.diagonal().add_(1.0)
    return b, d, pairs


class HigherEASE(Recommender):
    trainer = "closed-form"
    # the weight buffer beside three float64 items x items matrices at the fit's peak (P, B
    # and the product M^T C)
    working_copies = 7.0

    def __init__(self, n_users: int, n_items: int, cfg: HigherEASEConfig):
        super().__init__()
        self.cfg = cfg
        n = min(cfg.pairs, n_items * (n_items - 1) // 2)
        self.register_buffer("weight", torch.zeros(n_items, n_items))
        self.register_buffer("pair_items", torch.zeros(n, 2, dtype=torch.long))
        self.register_buffer("pair_weight", torch.zeros(n, n_items))

    def fit(self, x: sp.csr_matrix) -> None:
        b, c, pairs = higher_weights(x, self.cfg)
        self.weight.copy_(b)  # rounded to float32 as it is copied: no float32 copy of B
        self.pair_weight.copy_(c)
        self.pair_items.copy_(pairs)

    def score(self, batch: Batch) -> torch.Tensor:
        dense = (batch.dense() != 0).to(self.weight.dtype)
        z = dense[:, self.pair_items[:, 0]] * dense[:, self.pair_items[:, 1]]
        return (batch.pattern.rows_times(self.weight, batch.values, held_blocks(self, self.weight))
                + z @ self.pair_weight)


register("ease-higher", lambda n_rows, n_cols, cfg: HigherEASE(n_rows, n_cols, cfg),
         HigherEASEConfig(note="250 pairs, lambda_C 5000 (lambda_B 500, rho 1e5, 40 rounds: "
                               "the authors' ML-20M values): validation NDCG@10 (5% carving, "
                               "seed 0) 0.1986 on u1, 0.1811 on ml-1m, the best mean over "
                               "both of pairs in {250, 1000, 2000} x lambda_C in {1000, 5000, "
                               "20000}; every setting read 0.1800-0.1811 on ml-1m (EASE at "
                               "lambda 500: 0.181)"),
         "Steck and Liang, RecSys 2021: EASE plus item-pair weights, scores x B + z C, "
         "fitted by ADMM",
         space=Space({"lam_b": LogUniform(10.0, 5000.0), "lam_c": LogUniform(100.0, 1e5),
                      "pairs": IntRange(50, 2000, 50)},
                     "the authors set lambda_B, lambda_C and the pairs' threshold per dataset "
                     "(rho fixed); here the number of pairs stands for the threshold"))
