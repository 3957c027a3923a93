"""EASE, the embarrassingly shallow autoencoder (Steck, "Embarrassingly Shallow Autoencoders
for Sparse Data", WWW 2019): a linear item-item autoencoder with a zero diagonal, fitted in
closed form on the binarised training matrix X:

    P = (X^T X + lambda I)^-1,   B = I - P diag(1 / diag(P)),  i.e. B_ij = -P_ij / P_jj, B_jj = 0

and a user's scores are x_u B. The fit is one Gram matrix (a sparse-dense product) and one
Cholesky factorisation of the symmetric positive definite X^T X + lambda I, whose inverse
comes from the factor (`cholesky_inverse`), in float32: the Gram entries are integer counts,
exact in float32, and lambda bounds the condition number (tests compare with a float64 solve).
Steck's default lambda = 500 (his ML-20M setting); RecBole's `ease.py` was read alongside.
"""

from __future__ import annotations

from dataclasses import dataclass

import scipy.sparse as sp
import torch

from .base import LogUniform, ModelConfig, Space
from .item_item import ItemItem, gram
from .registry import register


@dataclass(frozen=True)
class EASEConfig(ModelConfig):
    feedback: str = "implicit"
    inductive: bool = True
    lam: float = 500.0          # L2 strength on B


def penalised_inverse(g: torch.Tensor, penalty) -> torch.Tensor:
    """(G + diag(penalty))^-1 of a Gram matrix `g` by its Cholesky factor, computed in `g`'s
    own memory and returned (the factor and the inverse overwrite it, so an items x items fit
    holds one such matrix): EASE's P with penalty lambda, EDLAE's with its dropout-weighted
    Lambda."""
    g.diagonal().add_(penalty)
    torch.linalg.cholesky(g, out=g)
    return torch.cholesky_inverse(g, out=g)


def zero_diagonal(p: torch.Tensor) -> torch.Tensor:
    """B = I - P diag(1 / diag P), i.e. B_ij = -P_ij / P_jj and B_jj = 0, in `p`'s memory."""
    p.div_(p.diagonal().neg())  # a copy of -diag P, broadcast over rows: column j by -P_jj
    p.diagonal().zero_()
    return p


def ease_weights(x: sp.csr_matrix, lam: float, dtype: torch.dtype = torch.float32
                 ) -> torch.Tensor:
    """B for a binary users x items matrix `x` (the closed form above), from the Gram matrix
    X^T X (`item_item.gram`)."""
    return zero_diagonal(penalised_inverse(gram(x, dtype), lam)).float()


class EASE(ItemItem):
    def weights(self, x: sp.csr_matrix) -> torch.Tensor:
        return ease_weights(x, self.cfg.lam)


def _build(n_rows: int, n_cols: int, cfg: EASEConfig) -> EASE:
    return EASE(n_rows, n_cols, cfg)


register("ease", _build,
         EASEConfig(note="closed form, Steck's lambda 500: validation NDCG@10 (5% carving, "
                         "seed 0) 0.198 on u1, 0.181 on ml-1m; lambda 100 / 250 / 1000 gave "
                         "0.190 / 0.197 / 0.194 on u1 and 0.165 / 0.176 / 0.183 on ml-1m"),
         "Steck, EASE, WWW 2019: B = I - P diag(1/diag P), P = (X^T X + lambda I)^-1",
         space=Space({"lam": LogUniform(10.0, 5000.0)},
                     "lambda is EASE's only hyperparameter; Steck tunes it on a log scale"))
