"""The cold-start protocols: no rating of a held-out item, or of a held-out user beyond the
budget, reaches any training or fold-in matrix; the ranking candidates are the cold items."""

import numpy as np
import pandas as pd
import pytest
from aebench.bench.evaluation.evaluate import cold_candidates
from aebench.datasets.features import Column, FeatureTable

from aebench import datasets


def hand(n_users=60, n_items=80, seed=0) -> datasets.Dataset:
    """Every user rates a random 30% of the items, ratings 1-5, items with a genre each."""
    rng = np.random.default_rng(seed)
    rows = [(u, i, float(rng.integers(1, 6)), 0) for u in range(1, n_users + 1)
            for i in range(1, n_items + 1) if rng.random() < 0.3 + 0.4 * (i % 7 == 0)]
    ratings = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    ids = np.arange(1, n_items + 1)
    table = FeatureTable("item", ids, (Column("genre", "multi-hot",
                                              tuple((f"g{i % 4}",) for i in ids)),), "hand")
    users = FeatureTable("user", np.arange(1, n_users + 1),
                         (Column("gender", "categorical",
                                 tuple("FM"[u % 2] for u in range(n_users))),), "hand")
    items = pd.DataFrame({"item": ids, "title": [f"t{i}" for i in ids], "genres": ""})
    return datasets.Dataset("hand", ratings, items, item_features=table, user_features=users)


def item_ids_of(split, m):
    return set(split.item_ids[np.unique(m.indices)])


def test_cold_items_hold_out_whole_items_stratified_by_popularity():
    ds = hand()
    split = datasets.make_split(ds, "cold-items", seed=3)
    train, valid, test = (item_ids_of(split, m) for m in (split.train, split.valid, split.test))
    assert not train & valid and not train & test and not valid & test
    # 80 items, strata of 20: one to validation and one to test from each
    assert len(valid) == len(test) == 4
    counts = ds.ratings["item"].value_counts()
    assert split.test.nnz == counts[list(test)].sum()
    assert split.valid.nnz == counts[list(valid)].sum()
    for held in (valid, test):  # one per band of popularity: rare and popular films both
        assert counts[list(held)].min() <= counts.quantile(0.25)
        assert counts[list(held)].max() >= counts.quantile(0.75)
    # seeded: the same seed the same items, another seed others
    again = datasets.make_split(ds, "cold-items", seed=3)
    assert again.fingerprint == split.fingerprint
    other_seed = datasets.make_split(ds, "cold-items", seed=4)
    assert item_ids_of(other_seed, other_seed.test) != test
    # the features are part of the fingerprint
    other = datasets.Dataset("hand", ds.ratings, ds.items, item_features=FeatureTable(
        "item", ds.item_features.ids, (Column("genre", "multi-hot", tuple(
            ("x",) for _ in ds.item_features.ids)),), "hand"))
    assert datasets.make_split(other, "cold-items", seed=3).fingerprint != split.fingerprint
    assert split.cold_items and split.item_side.shape == (split.n_items, 4)


def test_cold_items_strata_follow_popularity(ml100k):
    split = datasets.make_split(ml100k, "cold-items", seed=0)
    counts = np.sort(ml100k.ratings["item"].value_counts().to_numpy())
    for m in (split.test, split.valid):
        held = item_ids_of(split, m)
        # ml-100k's 1,682 rated items: 84 strata of 20 (and 2 left), one from each: the k-th
        # least rated held-out film lies in the k-th stratum's range of counts
        assert len(held) == 84
        mine = np.sort(ml100k.ratings["item"].value_counts()[list(held)].to_numpy())
        k = np.arange(84)
        assert ((counts[20 * k] <= mine) & (mine <= counts[20 * k + 19])).all()
    cand = cold_candidates(split, split.train, split.test)
    assert cand.sum() == 84 and not (np.bincount(split.train.indices,
                                                 minlength=split.n_items)[cand]).any()


def test_cold_items_refuses_a_dataset_without_item_features():
    ds = hand()
    bare = datasets.Dataset("bare", ds.ratings, ds.items)
    with pytest.raises(datasets.DatasetError, match="bare has no item features"):
        datasets.make_split(bare, "cold-items", seed=0)


def test_cold_users_budgets_read_only_their_first_ratings():
    ds = hand(n_users=200)
    splits = {b: datasets.make_split(ds, f"cold-users-{b}", seed=1) for b in (0, 1, 5, 10)}
    base = splits[0]
    fit = base.fit_rows
    held = ~fit
    assert held.sum() == 2 * round(0.1 * 200)
    for b, split in splits.items():
        assert (split.fit_rows == fit).all()
        # the scored ratings are the same for every budget
        assert (split.test != base.test).nnz == 0 and (split.valid != base.valid).nnz == 0
        per_user = np.diff(split.train.indptr)
        assert (per_user[held] == b).all()  # exactly the budget read of each held-out user
        # no scored rating is in the matrix the model reads
        assert split.train.multiply(split.test).nnz == 0
        assert split.train.multiply(split.valid).nnz == 0
    for small, big in ((0, 1), (1, 5), (5, 10)):  # a budget's ratings are the next one's first
        a, b = splits[small].train, splits[big].train
        rest = (a - a.multiply(b != 0)).tocsr()
        rest.eliminate_zeros()
        assert rest.nnz == 0 and b.nnz > a.nnz
    assert base.user_side is not None and base.describe()["user_features"] == 2


def test_cold_users_on_real_data(ml1m):
    split = datasets.make_split(ml1m, "cold-users-5", seed=0)
    held = ~split.fit_rows
    assert held.sum() == 2 * round(0.1 * 6040)
    assert (np.diff(split.train.indptr)[held] == 5).all()
