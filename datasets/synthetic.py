"""Seeded low-rank synthetic ratings: quick runs, tests and benchmarks of any shape, and named
fixed datasets of a real release's shape (`NAMED`: ML-1M's, ML-20M's and two ML-20M slices),
never changed once published, only added to."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

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


ML20M_SHAPE = (138_493, 26_744)
ML20M_BLOCK = 4096  # users drawn per seeded stream: a slice is a prefix of the whole


def ml20m_shaped_ratings(n_users: int = ML20M_SHAPE[0], seed: int = 2026) -> pd.DataFrame:
    """A fixed seeded matrix of ML-20M's shape and skew, for scale work (ML-20M itself is not
    on this machine). 26,744 items with Zipf-like popularity (exponent 0.9, ranks permuted);
    each user at least 20 ratings (GroupLens' floor) plus a log-normal count (median 53,
    sigma 1.3: mean about 144, ML-20M's 144.4), at most 9,254 (its largest profile), the
    first distinct items of draws by popularity (a quarter more drawn than kept; a heavy user
    of the most popular items may keep somewhat fewer);
    half-star ratings from a rank-10 model plus noise. Users come in seeded blocks of 4,096,
    so the first `n_users` of the whole are the same whatever `n_users` is (the slices of
    the scaling study are prefixes; results/scaling gives the whole's size)."""
    n_items = ML20M_SHAPE[1]
    base = np.random.default_rng([seed, 0])
    v = base.normal(size=(n_items, 10))
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.9
    popularity = popularity[base.permutation(n_items)]
    cdf = np.cumsum(popularity / popularity.sum())
    users, items, ratings = [], [], []
    for b, a in enumerate(range(0, n_users, ML20M_BLOCK)):
        n = min(ML20M_BLOCK, ML20M_SHAPE[0] - a)  # the whole block, whatever is kept of it
        rng = np.random.default_rng([seed, 1, b])
        counts = np.minimum(9254, 20 + rng.lognormal(np.log(53), 1.3, size=n).astype(np.int64))
        user = np.repeat(np.arange(n), counts * 5 // 4 + 8)  # a quarter more than kept
        item = np.minimum(np.searchsorted(cdf, rng.random(len(user))), n_items - 1)
        # the first distinct draws of each user, in draw order, up to its count
        _, first = np.unique(user * n_items + item, return_index=True)
        first.sort()
        user, item = user[first], item[first]
        start = np.searchsorted(user, np.arange(n))
        keep = np.arange(len(user)) - start[user] < counts[user]
        user, item = user[keep], item[keep]
        u = rng.normal(size=(n, 10)) / np.sqrt(10)
        score = 3.5 + np.einsum("ij,ij->i", u[user], v[item]) + 0.4 * rng.normal(
            size=len(user))
        rating = np.clip(np.rint(2 * score) / 2, 0.5, 5.0).astype(np.float32)
        kept = user < n_users - a  # the users this call asks for
        order = np.lexsort((item[kept], user[kept]))
        users.append(user[kept][order] + a)
        items.append(item[kept][order])
        ratings.append(rating[kept][order])
    user, item = np.concatenate(users), np.concatenate(items)
    return pd.DataFrame({"user": user + 1, "item": item + 1, "rating": np.concatenate(ratings),
                         "timestamp": pd.array(np.arange(len(user)), dtype="Int64")})


@dataclass(frozen=True)
class Named:
    """A named synthetic dataset: its shape, its ratings (about), its scale, how it is made."""

    users: int
    items: int
    ratings: int
    scale: tuple[float, float]
    make: Callable[[], pd.DataFrame]


NAMED: dict[str, Named] = {
    "synthetic-ml1m": Named(*ML1M_SHAPE, 1_000_000, (1.0, 5.0), ml1m_shaped_ratings),
    "synthetic-ml20m": Named(*ML20M_SHAPE, 18_460_693, (0.5, 5.0), ml20m_shaped_ratings),
    "synthetic-ml20m-half": Named(ML20M_SHAPE[0] // 2, ML20M_SHAPE[1], 9_230_000, (0.5, 5.0),
                                  lambda: ml20m_shaped_ratings(ML20M_SHAPE[0] // 2)),
    "synthetic-ml20m-eighth": Named(ML20M_SHAPE[0] // 8, ML20M_SHAPE[1], 2_329_150,
                                    (0.5, 5.0), lambda: ml20m_shaped_ratings(ML20M_SHAPE[0] // 8)),
}
