"""PureSVD (Cremonesi, Koren and Turrin, "Performance of Recommender Algorithms on Top-N
Recommendation Tasks", RecSys 2010): the rank-k truncated SVD X ~ U S V^T of the binarised
training matrix, a user's scores x_u V V^T (the user's row projected on the top right
singular vectors, so that a row the model never saw scores the same way). The SVD is
scikit-learn's `randomized_svd` (Halko, Martinsson and Tropp's range finder with power
iterations), seeded by the cell's seed (torch's initial seed), as Dacrema et al.'s
`PureSVDRecommender` calls it; BLAS threads follow torch's thread count."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from .base import Batch, IntRange, ModelConfig, Recommender, Space
from .registry import register


@dataclass(frozen=True)
class PureSVDConfig(ModelConfig):
    feedback: str = "implicit"
    inductive: bool = True
    factors: int = 32
    n_iter: int = 7             # power iterations of the randomised range finder


class PureSVD(Recommender):
    trainer = "closed-form"

    def __init__(self, n_users: int, n_items: int, cfg: PureSVDConfig):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("items", torch.zeros(n_items, min(cfg.factors, n_items)))

    def fit(self, x: sp.csr_matrix) -> None:
        from sklearn.utils.extmath import randomized_svd
        from threadpoolctl import threadpool_limits

        k = self.items.shape[1]
        seed = int(torch.initial_seed() % 2**32)
        with threadpool_limits(torch.get_num_threads()):
            _, _, vt = randomized_svd(x.astype(np.float64), k, n_iter=self.cfg.n_iter,
                                      random_state=seed)
        self.items.copy_(torch.from_numpy(vt.T.astype(np.float32)))

    def score(self, batch: Batch) -> torch.Tensor:
        return batch.pattern.rows_times(self.items, batch.values) @ self.items.T


def _build(n_rows: int, n_cols: int, cfg: PureSVDConfig) -> PureSVD:
    return PureSVD(n_rows, n_cols, cfg)


register("puresvd", _build,
         PureSVDConfig(note="32 factors: validation NDCG@10 (5% carving, seed 0) 0.1847 on u1, "
                            "0.1635 on ml-1m; 16 / 24 / 48 / 64 factors 0.1937 / 0.1894 / "
                            "0.1622 / 0.1424 on u1, 0.1522 / 0.1595 / 0.1646 / 0.1611 on "
                            "ml-1m"),
         "PureSVD (Cremonesi et al., RecSys 2010): truncated randomised SVD of the binary "
         "matrix, scores x_u V V^T", kind="reference",
         space=Space({"factors": IntRange(4, 512, 4)},
                     "the rank is PureSVD's only hyperparameter (Dacrema et al. search 1-350)"))
