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
from .sparse_ops import CSRBatch


@dataclass(frozen=True)
class CDAEConfig(ModelConfig):
    feedback: str = "implicit"
    hidden: int = 50            # K
    corruption: float = 0.5     # q: dropout on the input, in training
    negatives: int = 5          # sampled negatives per observed item
    activation: str = "sigmoid"
    batched: Recipe | None = field(default_factory=lambda: Recipe(
        optimizer="adam", lr=3e-3, weight_decay=1e-5, epochs=200, batch_size=256))


def sample_negatives(pattern: CSRBatch, per_row: torch.Tensor,
                     generator: torch.Generator | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Uniform draws, with replacement, of `per_row[r]` columns for each row r of `pattern`
    from the columns that row has no entry in (rows with none free get no draw). Returns
    (rows, cols) of the draws. Exact, without rejection: a draw j in [0, free_r) picks the
    j-th free column of row r. Since o_i - i free columns precede a row's i-th entry o_i
    (columns sorted within the row, as the engines lay them out), that column is j plus the
    number of entries with o_i - i <= j: a cumulative count over a rows x (n + 1) table of
    int32, read once per draw. (Listing every row's free columns with `nonzero` and `% n`
    took twice as long: half of a CDAE epoch on ML-1M.)"""
    crow, cols, n = pattern.crow, pattern.cols, pattern.n_cols
    dev = cols.device
    counts = crow.diff()
    free = n - counts
    per_row = torch.where(free > 0, per_row, torch.zeros_like(per_row))
    b = torch.arange(counts.numel(), device=dev)
    rows = torch.repeat_interleave(b, per_row)
    free_r = free.index_select(0, rows)
    j = (torch.rand(rows.numel(), device=dev, generator=generator) * free_r).long()
    j = torch.minimum(j, free_r - 1)
    entry_rows = torch.repeat_interleave(b, counts, output_size=cols.numel())
    within = torch.arange(cols.numel(), device=dev) - crow[:-1].index_select(0, entry_rows)
    table = torch.zeros(counts.numel() * (n + 1), dtype=torch.int32, device=dev)
    table.index_put_((entry_rows * (n + 1) + cols - within,),
                     torch.ones(cols.numel(), dtype=torch.int32, device=dev), accumulate=True)
    table = table.view(-1, n + 1).cumsum(1, dtype=torch.int32).view(-1)
    return rows, j + table.index_select(0, rows * (n + 1) + j)


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
        """Logistic loss at the observed entries (target 1) and at the sampled negatives
        (target 0), summed per user, averaged over the batch. The batch's entry columns are
        sorted within each row, as the engines lay them out."""
        logits = self.out(self._hidden(batch)).float()  # the losses in float32 (bf16 autocast)
        n = logits.shape[1]
        flat = logits.view(-1)
        pos = batch.entry_rows() * n + batch.pattern.cols
        neg_rows, neg_cols = sample_negatives(batch.pattern,
                                              self.cfg.negatives * batch.pattern.crow.diff())
        positive = F.softplus(-flat.index_select(0, pos)).sum()  # -log sigmoid(l), target 1
        negative = F.softplus(flat.index_select(0, neg_rows * n + neg_cols)).sum()  # target 0
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
         CDAEConfig(note="K 50, q 0.5, 5 negatives per observed item, Adam lr 3e-3, batch "
                         "256, up to 200 epochs: validation NDCG@10 (5% carving, seed 0) 0.173 "
                         "on u1, 0.154 on ml-1m; lr 1e-3 0.147 / 0.151, lr 1e-2 0.180 / 0.145, "
                         "q 0.2 (lr 3e-3) 0.172 / 0.156"),
         "Wu et al., CDAE, WSDM 2016 (authors' code jasonyaw/CDAE): user input node, dropout "
         "corruption, logistic loss on observed items and sampled negatives",
         space=Space({"batched.lr": LogUniform(1e-4, 1e-2), "corruption": Uniform(0.0, 0.8),
                      "hidden": IntRange(20, 200, 10), "negatives": IntRange(1, 10),
                      "batched.weight_decay": LogUniform(1e-7, 1e-3)},
                     "the paper's K and corruption q, the negative ratio, the step size and "
                     "the L2 strength"))
