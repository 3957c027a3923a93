"""DLAE and EDLAE (Steck, "Autoencoders that don't overfit towards the identity", NeurIPS
2020; code `hasteck/EDLAE_NeurIPS2020`, `learn_EDLAE_fullrank`): full-rank linear item-item
autoencoders whose L2 penalty is the one dropout with probability p induces, so that popular
items are regularised more:

    Lambda = lambda I + p / (1 - p) diag(X^T X),   P = (X^T X + Lambda)^-1

- DLAE, the dropout-denoising linear autoencoder: B = (X^T X + Lambda)^-1 X^T X = I - P Lambda
  (its diagonal is free: the model may learn part of the identity).
- EDLAE, emphasised denoising (only the dropped-out inputs count in the loss): full emphasis
  forces the diagonal to zero, B = I - P diag(1 / diag P), i.e. B_ij = -P_ij / P_jj, B_jj = 0,
  which is EASE with Lambda in place of lambda I (p = 0 gives EASE exactly).

Both fit in closed form from the Gram matrix with one Cholesky inverse, like EASE; a user's
scores are x_u B. The low-rank variant (the authors' alternating updates) is
`edlae_lowrank.py`. Steck's full-rank settings are p = 0.33, lambda = 300 on ML-20M; the
defaults here were chosen on the suite's validation carving (see the registrations)."""

from __future__ import annotations

from dataclasses import dataclass

import scipy.sparse as sp
import torch

from .base import LogUniform, ModelConfig, Space, Uniform
from .ease import penalised_inverse, zero_diagonal
from .item_item import ItemItem, gram
from .registry import register


@dataclass(frozen=True)
class DLAEConfig(ModelConfig):
    feedback: str = "implicit"
    inductive: bool = True
    lam: float = 300.0          # lambda: the constant part of the L2 penalty
    p: float = 0.5              # dropout probability behind the popularity-weighted part


def dropout_inverse(x: sp.csr_matrix, lam: float, p: float,
                    dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """P = (X^T X + Lambda)^-1 and Lambda's diagonal, Lambda = lam + p/(1-p) diag(X^T X)."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"p must lie in [0, 1) (a dropout probability), got {p}")
    g = gram(x, dtype)
    penalty = lam + p / (1.0 - p) * g.diagonal()  # a new tensor: read before g changes
    return penalised_inverse(g, penalty), penalty


def dlae_weights(x: sp.csr_matrix, lam: float, p: float) -> torch.Tensor:
    """DLAE's B = I - P Lambda."""
    inv, penalty = dropout_inverse(x, lam, p)
    b = inv.mul_(-penalty)  # P Lambda: column j of P times Lambda_jj, in P's memory
    b.diagonal().add_(1.0)
    return b.float()


def edlae_weights(x: sp.csr_matrix, lam: float, p: float) -> torch.Tensor:
    """EDLAE's B = I - P diag(1 / diag P) (zero diagonal)."""
    inv, _ = dropout_inverse(x, lam, p)
    return zero_diagonal(inv).float()


class DLAE(ItemItem):
    def weights(self, x: sp.csr_matrix) -> torch.Tensor:
        return dlae_weights(x, self.cfg.lam, self.cfg.p)


class EDLAE(ItemItem):
    def weights(self, x: sp.csr_matrix) -> torch.Tensor:
        return edlae_weights(x, self.cfg.lam, self.cfg.p)


SPACE = Space({"lam": LogUniform(1.0, 5000.0), "p": Uniform(0.0, 0.9)},
              "Steck tunes lambda and the dropout probability p on held-out users")

register("dlae", lambda n_rows, n_cols, cfg: DLAE(n_rows, n_cols, cfg),
         DLAEConfig(lam=300.0, p=0.67,
                    note="lambda 300, p 0.67: validation NDCG@10 (5% carving, seed 0) 0.1985 "
                         "on u1, 0.1826 on ml-1m, the best mean over both of lambda in "
                         "{10, 50, 100, 300, 600, 1000, 2000} x p in {0.1, 0.25, 0.33, 0.5, "
                         "0.67}; the best on one: 0.2011 (u1: 300, 0.33), 0.1837 (ml-1m: "
                         "600, 0.67)"),
         "Steck, NeurIPS 2020 (DLAE): B = (X^T X + Lambda)^-1 X^T X, "
         "Lambda = lambda I + p/(1-p) diag(X^T X)", space=SPACE)
register("edlae", lambda n_rows, n_cols, cfg: EDLAE(n_rows, n_cols, cfg),
         DLAEConfig(lam=300.0, p=0.5,
                    note="lambda 300, p 0.5: validation NDCG@10 (5% carving, seed 0) 0.1983 "
                         "on u1, 0.1828 on ml-1m, the best mean over both of the DLAE grid "
                         "(tied with 600, 0.25); the best on one: 0.1988 (u1: 300, 0.1), "
                         "0.1847 (ml-1m: 600, 0.5)"),
         "Steck, NeurIPS 2020 (full-rank EDLAE): B = I - P diag(1/diag P), "
         "P = (X^T X + Lambda)^-1", space=SPACE)
