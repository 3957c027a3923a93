"""Content-based item kNN: a film's predicted rating from the user's ratings of the films most
like it in content (Lops, de Gemmis and Semeraro, "Content-based Recommender Systems",
Recommender Systems Handbook 2011; the item-kNN estimate of Sarwar et al., WWW 2001, with a
content similarity in place of the rating one).

Similarity: the cosine of two films' encoded features (genres multi-hot, the standardised
year), kept for the `k` most similar films of each film, non-negative only. A user's
prediction for film i is their mean rating plus the similarity-weighted mean of their
deviations from it over the films they rated among i's neighbours,
    r^_ui = mu_u + sum_j s_ij (r_uj - mu_u) / (sum_j s_ij + shrink),
where mu_u is shrunk toward the global mean (`user_shrink` pseudo-ratings). A film nobody
rated is scored from its features alone, and a user with few ratings from those few: the
reference every cold-start hybrid is compared with. Reads only a user's row: inductive.
"""

from __future__ import annotations

from dataclasses import dataclass

import scipy.sparse as sp
import torch

from .base import Batch, IntRange, LogUniform, ModelConfig, Recommender, Side, Space
from .item_item import keep_top_k
from .registry import register
from .sparse_ops import held_blocks


@dataclass(frozen=True)
class ContentKNNConfig(ModelConfig):
    inductive: bool = True
    features: tuple[str, ...] = ("item",)
    k: int = 100                # neighbours kept per film
    shrink: float = 1.0         # added to the similarity sum (few, weak neighbours)
    user_shrink: float = 5.0    # pseudo-ratings at the global mean in a user's mean


class ContentKNN(Recommender):
    trainer = "closed-form"

    def __init__(self, n_users: int, n_items: int, cfg: ContentKNNConfig):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("features", torch.zeros(n_items, 0), persistent=False)
        self.register_buffer("weight", torch.zeros(n_items, n_items))
        self.register_buffer("mean", torch.zeros(()))

    def attach(self, side: Side) -> None:
        if side.cols is not None:
            self.features = side.cols.to(torch.float32).clone()

    def fit(self, x: sp.csr_matrix) -> None:
        f = torch.nn.functional.normalize(self.features, dim=1)
        s = (f @ f.t()).clamp_min(0.0)
        s.fill_diagonal_(0.0)
        self.weight.copy_(keep_top_k(s, self.cfg.k, dim=0))
        self.mean.fill_(float(x.data.mean()) if x.nnz else 3.0)

    def score(self, batch: Batch) -> torch.Tensor:
        n = batch.row_sums(torch.ones_like(batch.values))
        mu = (batch.row_sums() + self.cfg.user_shrink * self.mean) / (n + self.cfg.user_shrink)
        dev = batch.values - mu.index_select(0, batch.entry_rows())
        blocks = held_blocks(self, self.weight)
        num = batch.pattern.rows_times(self.weight, dev, blocks)
        den = batch.pattern.rows_times(self.weight, torch.ones_like(batch.values), blocks)
        return mu[:, None] + num / (den + self.cfg.shrink)


def _build(n_rows: int, n_cols: int, cfg: ContentKNNConfig) -> ContentKNN:
    return ContentKNN(n_rows, n_cols, cfg)


register("content-knn", _build,
         ContentKNNConfig(note="100 neighbours by feature cosine, shrink 1, user mean shrunk "
                               "by 5 pseudo-ratings"),
         "content-based item kNN (feature cosine, Sarwar et al.'s deviation estimate), "
         "after Lops et al., Recommender Systems Handbook 2011",
         kind="reference",
         space=Space({"k": IntRange(10, 500, 10), "shrink": LogUniform(0.01, 100.0),
                      "user_shrink": LogUniform(0.1, 100.0)},
                     "the neighbourhood, the damping of weak neighbourhoods and of short "
                     "profiles"))
