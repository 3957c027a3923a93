"""Item-based neighbourhood references, after the implementations of Dacrema, Cremonesi and
Jannach's reproducibility study ("Are We Really Making Much Progress?", RecSys 2019, and TOIS
2021; MaurizioFD/RecSys2019_DeepLearning_Evaluation, `ItemKNNCFRecommender` with
`Compute_Similarity_Python`, and `RP3betaRecommender`), on the binarised training matrix X.
A user's scores are x_u W.

- `itemknn`: cosine similarity with shrinkage, W_ij = x_i . x_j / (|x_i| |x_j| + shrink + 1e-6)
  over the item columns x_i of X, diagonal 0, the `topk` largest of each column j kept (the
  neighbours that score item j), as Dacrema et al.'s `Compute_Similarity` keeps them.
- `rp3beta` (Paudel, Christoffel, Newell and Bernstein, "Updatable, Accurate, Diverse, and
  Scalable Recommendations for Interactive Applications", TiiS 2017): the two-step random walk
  item -> user -> item, P_iu = x_ui / |i| and P_uj = x_uj / |u|, each raised to the power
  `alpha`, W_ij = sum_u P_iu^alpha P_uj^alpha / pop(j)^beta, the `topk` largest of each row i
  kept (as Dacrema et al. prune it), then each row L1-normalised if `normalize`. Unlike
  Dacrema et al.'s code, the diagonal is set to 0 before pruning: a self-loop scores only
  items the user already has, never candidates, so it would only take a neighbour's place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from .base import Choice, IntRange, ModelConfig, Space, Uniform
from .item_item import GRAM_COLUMNS, TOP_K_BLOCK, ItemItem, gram, keep_top_k
from .registry import register


@dataclass(frozen=True)
class ItemKNNConfig(ModelConfig):
    feedback: str = "implicit"
    inductive: bool = True
    topk: int = 200             # neighbours kept per item
    shrink: float = 100.0       # added to the cosine's denominator


def cosine_weights(x: sp.csr_matrix, topk: int, shrink: float) -> torch.Tensor:
    w = gram(x)
    norm = w.diagonal().clamp_min(0).sqrt()  # a copy: read before w changes
    for a in range(0, w.shape[1], TOP_K_BLOCK):  # in the Gram's memory, a block at a time
        b = slice(a, a + TOP_K_BLOCK)
        w[:, b].div_(norm[:, None] * norm[None, b] + shrink + 1e-6)
    w.diagonal().zero_()
    return keep_top_k(w, topk, dim=0, in_place=True)


class ItemKNN(ItemItem):
    def weights(self, x: sp.csr_matrix) -> torch.Tensor:
        return cosine_weights(x, self.cfg.topk, self.cfg.shrink)


@dataclass(frozen=True)
class RP3betaConfig(ModelConfig):
    feedback: str = "implicit"
    inductive: bool = True
    alpha: float = 1.0          # power on both transition probabilities
    beta: float = 0.6           # popularity penalty: W_ij / pop(j)^beta
    topk: int = 200             # transitions kept per item
    normalize: bool = False     # L1-normalise each row after pruning


def rp3beta_weights(x: sp.csr_matrix, alpha: float, beta: float, topk: int,
                    normalize: bool) -> torch.Tensor:
    x = x.tocsr().astype(np.float64)
    user_deg = np.asarray(x.sum(axis=1)).ravel()
    item_deg = np.asarray(x.sum(axis=0)).ravel()
    p_ui = sp.diags(1.0 / np.maximum(user_deg, 1.0)) @ x        # user -> item
    p_iu = (x @ sp.diags(1.0 / np.maximum(item_deg, 1.0))).T    # item -> user
    if alpha != 1.0:
        p_ui, p_iu = p_ui.power(alpha), p_iu.power(alpha)
    p_iu, p_ui = p_iu.tocsr(), p_ui.tocsc()
    # P_iu P_ui a slice of columns at a time, each sparse product densified into W: never a
    # sparse or float64 items x items matrix whole (each entry sums the same terms in the
    # same order as the whole product does)
    w = torch.empty(x.shape[1], x.shape[1])
    for c in range(0, x.shape[1], GRAM_COLUMNS):
        w[:, c:c + GRAM_COLUMNS] = torch.from_numpy((p_iu @ p_ui[:, c:c + GRAM_COLUMNS]).toarray())
    penalty = np.zeros_like(item_deg)
    penalty[item_deg > 0] = item_deg[item_deg > 0] ** -beta
    w *= torch.from_numpy(penalty.astype(np.float32))[None, :]
    w.diagonal().zero_()
    w = keep_top_k(w, topk, dim=1, in_place=True)
    if normalize:
        w /= w.sum(1, keepdim=True).clamp_min(1e-12)
    return w


class RP3beta(ItemItem):
    def weights(self, x: sp.csr_matrix) -> torch.Tensor:
        c = self.cfg
        return rp3beta_weights(x, c.alpha, c.beta, c.topk, c.normalize)


def _knn(n_rows: int, n_cols: int, cfg: ItemKNNConfig) -> ItemKNN:
    return ItemKNN(n_rows, n_cols, cfg)


def _rp3(n_rows: int, n_cols: int, cfg: RP3betaConfig) -> RP3beta:
    return RP3beta(n_rows, n_cols, cfg)


# Search spaces: the ranges of Dacrema et al.'s (TOIS 2021) Bayesian search, whose best ML-1M
# values (ItemKNN cosine topK ~ 100-900, shrink 0-1000; RP3beta topK 5-1000, alpha 0-2,
# beta 0-2) lie inside them.
register("itemknn", _knn,
         ItemKNNConfig(note="cosine, topk 200, shrink 100: validation NDCG@10 (5% carving, "
                            "seed 0) 0.1699 on u1, 0.1462 on ml-1m; topk 50 / 100 / 500 "
                            "(shrink 100) 0.1684 / 0.1662 / 0.1643 on u1, 0.1388 / 0.1402 / "
                            "0.1413 on ml-1m; shrink 0 / 10 (topk 200) 0.1670 / 0.1721 on u1, "
                            "0.1420 / 0.1434 on ml-1m"),
         "item kNN with shrunk cosine similarity (Dacrema et al., RecSys 2019 / TOIS 2021, "
         "ItemKNNCFRecommender)", kind="reference",
         space=Space({"topk": IntRange(5, 1000), "shrink": Uniform(0.0, 1000.0)},
                     "Dacrema et al.'s search ranges for cosine item kNN"))
register("rp3beta", _rp3,
         RP3betaConfig(note="alpha 1, beta 0.6, topk 200: validation NDCG@10 (5% carving, "
                            "seed 0) 0.1767 on u1, 0.1448 on ml-1m; beta 0.2 / 0.4 / 0.8 "
                            "0.1557 / 0.1660 / 0.1067 on u1, 0.1159 / 0.1280 / 0.0841 on "
                            "ml-1m; alpha 0.5 0.1730 / 0.1403; topk 100 0.1712 / 0.1455"),
         "RP3beta (Paudel et al., TiiS 2017), after Dacrema et al.'s RP3betaRecommender",
         kind="reference",
         space=Space({"topk": IntRange(5, 1000), "alpha": Uniform(0.0, 2.0),
                      "beta": Uniform(0.0, 2.0), "normalize": Choice((False, True))},
                     "Dacrema et al.'s search ranges for RP3beta"))
