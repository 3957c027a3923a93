"""Most-popular ranking: every user gets the items with the most training interactions
first. A reference for ranking (no rating predictions): the figure a personalised ranker has
to beat. Implicit feedback: a training rating of any value is one interaction."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from .base import Batch, ModelConfig, Recommender
from .registry import register


@dataclass(frozen=True)
class PopularityConfig(ModelConfig):
    feedback: str = "implicit"
    inductive: bool = True


class Popularity(Recommender):
    trainer = "closed-form"

    def __init__(self, n_users: int, n_items: int, cfg: PopularityConfig):
        super().__init__()
        self.register_buffer("counts", torch.zeros(n_items))

    def fit(self, x: sp.csr_matrix) -> None:
        self.counts.copy_(torch.from_numpy(
            np.bincount(x.indices, minlength=x.shape[1]).astype(np.float32)))

    def score(self, batch: Batch) -> torch.Tensor:
        return self.counts.expand(batch.size, -1)


def _build(n_rows: int, n_cols: int, cfg: PopularityConfig) -> Popularity:
    return Popularity(n_rows, n_cols, cfg)


register("popularity", _build, PopularityConfig(note="training interaction counts"),
         "most popular items by training interaction count (no parameters)",
         kind="reference")
