"""Loaders and splits on the real MovieLens files (BENCH_DATA_DIR); skipped without them."""

import numpy as np
import pytest

from aebench import datasets

pytestmark = pytest.mark.realdata


def test_ml100k_counts(ml100k):
    r = ml100k.ratings
    assert len(r) == 100_000
    assert r["user"].nunique() == 943 and r["item"].nunique() == 1682
    assert np.bincount(r["rating"].astype(int))[1:].tolist() == [6110, 11370, 27145, 34174, 21201]
    assert ml100k.items.set_index("item").loc[1].title == "Toy Story (1995)"


def test_ml100k_u1(ml100k):
    s = datasets.make_split(ml100k, "u1")
    assert (s.train.nnz, s.test.nnz) == (80_000, 20_000)
    assert (s.n_users, s.n_items) == (943, 1682)


def test_ml1m_counts_and_missing_timestamps(ml1m):
    r = ml1m.ratings
    assert len(r) == 1_000_209
    assert r["user"].nunique() == 6040 and r["item"].nunique() == 3706
    assert int(r["timestamp"].isna().sum()) == 137_349
    assert np.bincount(r["rating"].astype(int))[1:].tolist() == [56174, 107557, 261197,
                                                                 348971, 226310]


def test_ml1m_item_ids_map_to_titles(ml1m):
    """Original MovieLens ids, not row positions: the ML-1M notebook was off by one here."""
    items = ml1m.items.set_index("item")
    assert items.loc[1].title == "Toy Story (1995)"
    assert items.loc[2858].title == "American Beauty (1999)"
    assert items.loc[3952].title == "Contender, The (2000)"
    s = datasets.make_split(ml1m, "random-90-10")
    assert s.item_ids[s.item_index(2858)] == 2858


def test_ml1m_random_split(ml1m):
    s = datasets.make_split(ml1m, "random-90-10", seed=0)
    assert s.train.nnz + s.test.nnz == 1_000_209
    assert s.test.nnz == 100_021
    assert datasets.make_split(ml1m, "random-90-10", seed=0).fingerprint == s.fingerprint


def test_ml1m_refuses_temporal_split(ml1m):
    with pytest.raises(datasets.DatasetError, match="137,349 ratings without one"):
        datasets.make_split(ml1m, "temporal-80-20")


def test_ml1m_filtered_80_10_10_keeps_recboles_834449_interactions(ml1m):
    # RecBole's ML-1M general benchmark states 834,449 interactions after its filtering
    s = datasets.make_split(ml1m, "filtered-80-10-10", seed=0)
    assert s.train.nnz + s.valid.nnz + s.test.nnz == 834_449
    assert (s.n_users, s.n_items) == (6033, 3123)
