"""CDAE, the collaborative denoising autoencoder (Wu, DuBois, Zheng and Ester, "Collaborative
Denoising Auto-Encoders for Top-N Recommender Systems", WSDM 2016), after the authors' code
(jasonyaw/CDAE, src/model/recsys/cdae.hpp) and RecBole's `cdae.py`.

A user's binarised row, corrupted by dropout (each observed item kept with probability 1 - q
and scaled by 1 / (1 - q), the authors' `scaled` default), plus a user-specific input node
V_u: z_u = sigmoid(W^T y~_u + V_u + b); the output is sigmoid(W'^T z_u + b'). The loss is the
logistic loss on the user's observed items (target 1) and on `negatives` items per observed
item sampled uniformly, with replacement, from the items the user has not interacted with
(target 0), the authors' negative sampling (`num_neg` = 5), summed per user and averaged over
the batch; the L2 penalty on all parameters is the recipe's weight decay. The paper's K = 50
hidden units; trained with Adam on mini-batches of users (the authors used per-user AdaGrad).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from .base import (
    Batch,
    Flops,
    IntRange,
    LogUniform,
    ModelConfig,
    Recipe,
    Recommender,
    Space,
    Uniform,
    xavier_,
)
from .layers import ACTIVATIONS, ItemLinear
from .registry import register


@dataclass(frozen=True)
class CDAEConfig(ModelConfig):
    feedback: str = "implicit"
    hidden: int = 50            # K
    corruption: float = 0.5     # q: dropout on the input, in training
    negatives: int = 5          # sampled negatives per observed item
    activation: str = "sigmoid"
    batched: Recipe | None = field(default_factory=lambda: Recipe(
        optimizer="adam", lr=1e-3, weight_decay=1e-5, epochs=200, batch_size=256))


def sample_negatives(observed: torch.Tensor, per_row: torch.Tensor,
                     generator: torch.Generator | None = None, max_rounds: int = 100
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Uniform draws, with replacement, of `per_row[r]` columns for each row r from the
    columns that `observed` (a (B, n_cols) bool mask) leaves free; rows with no free column
    get none. Returns (rows, cols) of the draws. Colliding draws are drawn again."""
    n_rows, n_cols = observed.shape
    free = (~observed).sum(1)
    per_row = torch.where(free > 0, per_row, torch.zeros_like(per_row))
    rows = torch.repeat_interleave(torch.arange(n_rows, device=observed.device), per_row)
    cols = torch.randint(0, n_cols, rows.shape, device=observed.device, generator=generator)
    for _ in range(max_rounds):
        bad = observed[rows, cols]
        if not bad.any():
            break
        cols[bad] = torch.randint(0, n_cols, (int(bad.sum()),), device=observed.device,
                                  generator=generator)
    else:  # practically unreachable: keep only the draws that landed on free columns
        ok = ~observed[rows, cols]
        rows, cols = rows[ok], cols[ok]
    return rows, cols


class CDAE(Recommender):
    def __init__(self, n_users: int, n_items: int, cfg: CDAEConfig):
        super().__init__()
        self.first = ItemLinear(n_items, cfg.hidden)
        self.user = nn.Parameter(torch.empty(n_users, cfg.hidden))
        self.out = nn.Linear(cfg.hidden, n_items)
        self.cfg = cfg
        self.act = ACTIVATIONS[cfg.activation]
        xavier_(self)

    def _hidden(self, batch: Batch) -> torch.Tensor:
        values = batch.values
        if self.training and self.cfg.corruption > 0:
            values = F.dropout(values, self.cfg.corruption, True)  # keeps and scales 1/(1-q)
        return self.act(self.first.sparse(batch.pattern, values) + self.user[batch.rows])

    def loss(self, batch: Batch) -> torch.Tensor:
        logits = self.out(self._hidden(batch))
        rows, cols = batch.entry_rows(), batch.pattern.cols
        observed = torch.zeros(logits.shape, dtype=torch.bool, device=logits.device)
        observed[rows, cols] = True
        neg_rows, neg_cols = sample_negatives(observed,
                                              self.cfg.negatives * batch.pattern.crow.diff())
        positive = F.softplus(-logits[rows, cols]).sum()       # -log sigmoid(l), target 1
        negative = F.softplus(logits[neg_rows, neg_cols]).sum()  # -log(1 - sigmoid(l)), 0
        return (positive + negative) / batch.size

    def score(self, batch: Batch) -> torch.Tensor:
        return self.out(self._hidden(batch))

    def epoch_flops(self, x: sp.csr_matrix) -> Flops:
        rows = int((x.getnnz(axis=1) > 0).sum())
        k = self.cfg.hidden
        return Flops(2.0 * (2 * x.nnz * k + 3 * rows * k * x.shape[1]), "matmul")


def _build(n_rows: int, n_cols: int, cfg: CDAEConfig) -> CDAE:
    return CDAE(n_rows, n_cols, cfg)


register("cdae", _build,
         CDAEConfig(note="K 50, q 0.5, 5 negatives per positive, Adam 1e-3, batch 256"),
         "Wu et al., CDAE, WSDM 2016 (authors' code jasonyaw/CDAE): user input node, dropout "
         "corruption, logistic loss on observed items and sampled negatives",
         space=Space({"batched.lr": LogUniform(1e-4, 1e-2), "corruption": Uniform(0.0, 0.8),
                      "hidden": IntRange(20, 200, 10), "negatives": IntRange(1, 10),
                      "batched.weight_decay": LogUniform(1e-7, 1e-3)},
                     "the paper's K and corruption q, the negative ratio, the step size and "
                     "the L2 strength"))
