"""Seeded low-rank synthetic ratings: quick runs, tests and benchmarks of any shape."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

DEFAULT_SHAPE = (300, 200)
_NAME = re.compile(r"^synthetic(?:-(\d+)x(\d+))?$")


def parse_name(name: str) -> tuple[int, int] | None:
    """`synthetic` or `synthetic-<users>x<items>` -> shape; None for other names."""
    m = _NAME.match(name)
    if m is None:
        return None
    return (int(m[1]), int(m[2])) if m[1] else DEFAULT_SHAPE


def synthetic_ratings(n_users: int = 300, n_items: int = 200, density: float = 0.05,
                      rank: int = 5, noise: float = 0.3, seed: int = 0) -> pd.DataFrame:
    """Ratings 1..5 from a rank-`rank` model plus noise, at `density` of the matrix.

    Every user gets at least 2 ratings so that any split leaves most users in both parts.
    Ids start at 1, like MovieLens. Item popularity is skewed (Zipf-like) as in real data.
    """
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(n_users, rank)) / np.sqrt(rank)
    v = rng.normal(size=(n_items, rank))
    per_user = np.maximum(2, rng.binomial(n_items, density, size=n_users))
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.6
    popularity = popularity[rng.permutation(n_items)]
    popularity /= popularity.sum()
    users, items = [], []
    for user, k in enumerate(per_user):
        chosen = rng.choice(n_items, size=min(k, n_items), replace=False, p=popularity)
        users.append(np.full(len(chosen), user))
        items.append(chosen)
    user = np.concatenate(users)
    item = np.concatenate(items)
    score = 3.5 + (u[user] * v[item]).sum(1) + noise * rng.normal(size=len(user))
    rating = np.clip(np.rint(score), 1, 5).astype(np.float32)
    return pd.DataFrame({
        "user": user + 1, "item": item + 1, "rating": rating,
        "timestamp": pd.array(np.arange(len(user)), dtype="Int64"),
    })


ML1M_SHAPE = (6040, 3706)
ML1M_DENSITY = 0.045


def ml1m_shaped_ratings(seed: int = 2024) -> pd.DataFrame:
    """A fixed seeded matrix of ML-1M's shape and density (about 1M ratings), for timing:
    built the same way on every machine and commit, never changed, only added to."""
    return synthetic_ratings(*ML1M_SHAPE, density=ML1M_DENSITY, rank=10, seed=seed)
