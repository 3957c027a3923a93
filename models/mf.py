"""Biased matrix factorisation (Koren, Bell and Volinsky, "Matrix Factorization Techniques
for Recommender Systems", IEEE Computer 2009), a reference baseline for rating prediction.

r_ui = mu + b_u + b_i + p_u . q_i, trained by the suite's batched engine on mini-batches of
user rows: squared error at the observed ratings plus, per rating, lambda (||p_u||^2 +
||q_i||^2 + b_u^2 + b_i^2), the regularisation of the SGD formulation (Funk; Koren et al.),
so frequent users and items are regularised in proportion to their data. mu is the training
mean, fixed before training. Factors start at N(0, 0.1^2), biases at 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import scipy.sparse as sp
import torch
from torch import nn

from .base import Batch, Flops, IntRange, LogUniform, ModelConfig, Recipe, Recommender, Space
from .registry import register


@dataclass(frozen=True)
class MFConfig(ModelConfig):
    dim: int = 64               # latent factors
    reg: float = 0.05           # lambda, per observed rating
    batched: Recipe | None = field(default_factory=lambda: Recipe(
        optimizer="adam", lr=0.005, weight_decay=0.0, epochs=100, batch_size=256))


class MF(Recommender):
    def __init__(self, n_users: int, n_items: int, cfg: MFConfig):
        super().__init__()
        self.user = nn.Parameter(torch.randn(n_users, cfg.dim) * 0.1)
        self.item = nn.Parameter(torch.randn(n_items, cfg.dim) * 0.1)
        self.user_bias = nn.Parameter(torch.zeros(n_users))
        self.item_bias = nn.Parameter(torch.zeros(n_items))
        self.register_buffer("mean", torch.zeros(()))
        self.reg = cfg.reg

    def setup(self, x: sp.csr_matrix) -> None:
        self.mean.fill_(float(x.data.mean()) if x.nnz else 0.0)

    def loss(self, batch: Batch) -> torch.Tensor:
        users = batch.rows[batch.entry_rows()]
        items = batch.pattern.cols
        p, q = self.user.index_select(0, users), self.item.index_select(0, items)
        bu, bi = self.user_bias.index_select(0, users), self.item_bias.index_select(0, items)
        err = self.mean + bu + bi + (p * q).sum(1) - batch.values
        penalty = p.square().sum(1) + q.square().sum(1) + bu.square() + bi.square()
        return (err.square() + self.reg * penalty).mean()

    def score(self, batch: Batch) -> torch.Tensor:
        users = batch.rows
        return torch.addmm(self.item_bias + self.mean, self.user[users], self.item.t()) + \
            self.user_bias[users, None]

    def epoch_flops(self, x: sp.csr_matrix) -> Flops:
        # per rating: the dot product forward, and the gradients of both factors
        return Flops(2.0 * 3 * x.nnz * self.user.shape[1], "gather", self.user.shape[1])


def _build(n_rows: int, n_cols: int, cfg: MFConfig) -> MF:
    return MF(n_rows, n_cols, cfg)


register("mf", _build, MFConfig(note="Adam lr 0.005, batch 256, 64 factors, lambda 0.05"),
         "biased matrix factorisation (Koren, Bell and Volinsky, IEEE Computer 2009), "
         "per-rating L2 as in its SGD formulation, trained by the batched engine",
         kind="reference",
         space=Space({"dim": IntRange(16, 256, 16), "reg": LogUniform(1e-3, 0.3),
                      "batched.lr": LogUniform(1e-4, 3e-2),
                      "batched.batch_size": IntRange(64, 1024, 64)},
                     "the factor count and regularisation that set MF's bias-variance "
                     "trade-off, and the Adam step and batch that set how fast it gets there"))
