"""Rating-error metrics as small pure functions over arrays. No rounding inside a metric.

Per-user helpers return one value per user so that two variants can be compared with a
paired test; the summary functions reduce them.
"""

from __future__ import annotations

import numpy as np


def clamp(pred: np.ndarray, low: float = 1.0, high: float = 5.0) -> np.ndarray:
    return np.clip(pred, low, high)


def rmse(pred: np.ndarray, true: np.ndarray) -> float:
    """Root mean squared error over all ratings (NaN when there are none)."""
    if len(true) == 0:
        return float("nan")
    return float(np.sqrt(np.mean((np.asarray(pred, np.float64) - true) ** 2)))


def mae(pred: np.ndarray, true: np.ndarray) -> float:
    if len(true) == 0:
        return float("nan")
    return float(np.mean(np.abs(np.asarray(pred, np.float64) - true)))


def per_user_sse(pred: np.ndarray, true: np.ndarray, users: np.ndarray,
                 n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """Sum of squared errors and rating count per user index."""
    err = (np.asarray(pred, np.float64) - true) ** 2
    return (np.bincount(users, weights=err, minlength=n_users),
            np.bincount(users, minlength=n_users))


def legacy_loss(sse_per_user: np.ndarray, n_per_user: np.ndarray) -> float:
    """The classic notebooks' figure: mean over users with ratings of sqrt(SSE_u / n_u).

    Their code computes sqrt(MSELoss(output, target) * n_items / n_rated) per user on the
    unclamped output; MSELoss over the masked row is SSE_u / n_items, so n_items cancels.
    """
    has = n_per_user > 0
    if not has.any():
        return float("nan")
    return float(np.mean(np.sqrt(sse_per_user[has] / n_per_user[has])))


# Ranking metrics over a hit matrix: hits[u, r] is True when the item at rank r (0-based) of
# user u's ranking is relevant; n_relevant[u] counts u's relevant items (all > 0). Definitions
# follow RecBole's (evaluator/metrics.py): binary gains, ideal DCG over min(k, n_relevant).

def precision_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    return hits[:, :k].sum(1) / k


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    return hits[:, :k].sum(1) / n_relevant


def liang_recall_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Liang et al.'s (WWW 2018) normalised recall: hits / min(k, n_relevant), so that a
    perfect top k scores 1 however many items are relevant (Mult-VAE's and RecVAE's
    Recall@20 and @50)."""
    return hits[:, :k].sum(1) / np.minimum(k, n_relevant)


def hit_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    return hits[:, :k].any(1).astype(np.float64)


def mrr_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """Reciprocal rank of the first hit within the top k, else 0."""
    top = hits[:, :k]
    first = top.argmax(1)
    return np.where(top.any(1), 1.0 / (first + 1), 0.0)


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits[:, :k] * discount[: hits[:, :k].shape[1]]).sum(1)
    ideal = np.cumsum(discount)[np.minimum(n_relevant, k) - 1]
    return dcg / ideal


RANKING = {"precision": lambda h, n, k: precision_at_k(h, k),
           "recall": recall_at_k,
           "nrecall": liang_recall_at_k,
           "ndcg": ndcg_at_k,
           "hit": lambda h, n, k: hit_at_k(h, k),
           "mrr": lambda h, n, k: mrr_at_k(h, k)}


def ranking_per_user(hits: np.ndarray, n_relevant: np.ndarray,
                     ks: tuple[int, ...] = (5, 10, 20)) -> dict[str, np.ndarray]:
    """Every ranking metric at every k, one value per user: keys like `ndcg@10`."""
    return {f"{name}@{k}": fn(hits, n_relevant, k) for name, fn in RANKING.items() for k in ks}


def legacy_topk_acc(scores: list[np.ndarray], ratings: list[np.ndarray], k: int,
                    liked: float = 4.0) -> float:
    """The ML-1M notebook's "top-k accuracy" (`compute_top_k_accuracy`; leaky: the scores come
    from the test vector), computed as that notebook computes it.

    The notebook ranks all items by output x test mask, so every unrated item scores 0: a
    user's top k are their test items with a positive score (a negative one ranks below the
    zeros and never enters), padded with unrated items. It counts the top k rated 4 or 5,
    divides by k even when fewer test items are ranked, and averages over every user, a
    user without test ratings counting 0. Test items are ordered by score, ties by position.
    """
    shares = np.zeros(len(scores))
    for u, (s, r) in enumerate(zip(scores, ratings)):
        top = np.argsort(-s, kind="stable")[:k]
        top = top[s[top] > 0]
        shares[u] = np.count_nonzero(r[top] >= liked) / k
    return float(shares.mean()) if len(shares) else float("nan")
