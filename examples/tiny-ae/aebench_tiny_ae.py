"""A tiny user-row autoencoder, registered into aebench as a plugin (the entry point
`tiny-ae` in pyproject.toml). A user's interactions go in (a sparse first layer, input
dropout), one tanh layer, a softmax over all items out, trained on the multinomial
log-likelihood of the user's items (Liang et al.'s Mult-DAE, shrunk)."""

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from aebench.models import register
from aebench.models.base import (
    Batch,
    IntRange,
    LogUniform,
    ModelConfig,
    Recipe,
    Recommender,
    Space,
)
from torch import nn


@dataclass(frozen=True)
class TinyAEConfig(ModelConfig):
    feedback: str = "implicit"  # ranks only: every rating is an interaction of value 1
    hidden: int = 64
    dropout: float = 0.5
    batched: Recipe | None = field(default_factory=lambda: Recipe(
        optimizer="adam", lr=1e-3, weight_decay=0.0, epochs=60, batch_size=128))


class TinyAE(Recommender):
    def __init__(self, n_items: int, cfg: TinyAEConfig):
        super().__init__()
        self.encoder = nn.EmbeddingBag(n_items, cfg.hidden, mode="sum")
        self.bias = nn.Parameter(torch.zeros(cfg.hidden))
        self.decoder = nn.Linear(cfg.hidden, n_items)
        self.dropout = cfg.dropout

    def forward(self, batch: Batch) -> torch.Tensor:
        p = batch.pattern
        kept = F.dropout(batch.values, self.dropout, self.training)
        h = self.encoder(p.cols, p.crow[:-1], per_sample_weights=kept)
        return self.decoder(torch.tanh(h + self.bias))

    def loss(self, batch: Batch) -> torch.Tensor:
        log_p = F.log_softmax(self(batch), dim=1)
        observed = log_p[batch.entry_rows(), batch.pattern.cols]
        return -(observed * batch.values).sum() / batch.size

    def score(self, batch: Batch) -> torch.Tensor:
        return self(batch)


register("tiny-ae", lambda n_rows, n_cols, cfg: TinyAE(n_cols, cfg), TinyAEConfig(),
         "aebench's example plugin: a one-layer Mult-DAE (examples/tiny-ae)",
         space=Space({"hidden": IntRange(16, 256), "batched.lr": LogUniform(1e-4, 1e-2)},
                     "the width and Adam's step"))
