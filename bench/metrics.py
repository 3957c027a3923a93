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
