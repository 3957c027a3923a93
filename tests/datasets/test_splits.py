import numpy as np
import pytest
from aebench.datasets.synthetic import synthetic_ratings

from aebench import datasets


@pytest.fixture(scope="module")
def synth():
    return datasets.load("synthetic")


def test_official_split_from_files(fixture_dir):
    ds = datasets.load("ml-100k", fixture_dir, download=False)
    s = datasets.make_split(ds, "u1")
    assert (s.train.nnz, s.test.nnz) == (5, 4)
    assert s.seed is None
    assert list(s.user_ids) == [1, 2, 3, 4] and list(s.item_ids) == [1, 2, 3, 4]
    # u1.base holds lines 1,3,5,7,9 of u.data: (1,1,5) (1,3,4) (2,3,2) (3,4,5) (4,4,4)
    assert s.train[0, 0] == 5 and s.train[1, 2] == 2 and s.train[3, 3] == 4
    assert s.test[0, 1] == 3


def test_random_split_is_seeded_disjoint_and_sized(synth):
    a = datasets.make_split(synth, "random-90-10", seed=1)
    b = datasets.make_split(synth, "random-90-10", seed=1)
    c = datasets.make_split(synth, "random-90-10", seed=2)
    n = synth.n_ratings
    assert a.test.nnz == round(n * 0.1) and a.train.nnz + a.test.nnz == n
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert a.train.multiply(a.test).nnz == 0
    assert datasets.make_split(synth, "random-75-25").test.nnz == round(n * 0.25)


def test_fingerprint_ignores_row_order_but_not_content():
    df = synthetic_ratings(20, 10, seed=3)
    tr, te = df.iloc[:50], df.iloc[50:]
    fp = datasets.fingerprint(tr, te)
    assert datasets.fingerprint(tr.sample(frac=1, random_state=0), te) == fp
    changed = tr.copy()
    changed.iloc[0, changed.columns.get_loc("rating")] = 6 - changed["rating"].iloc[0]
    assert datasets.fingerprint(changed, te) != fp
    assert datasets.fingerprint(te, tr) != fp


def test_temporal_split_refuses_missing_timestamps(fixture_dir):
    ds = datasets.load("ml-1m", fixture_dir, download=False)
    with pytest.raises(datasets.DatasetError, match="temporal-80-20.*2 ratings without one"):
        datasets.make_split(ds, "temporal-80-20")
    assert datasets.make_split(ds, "random-90-10").train.nnz == 5


def test_temporal_split_orders_by_time(fixture_dir):
    ds = datasets.load("ml-100k", fixture_dir, download=False)
    s = datasets.make_split(ds, "temporal-80-20")
    # the two latest ratings (user 4) are the test set
    assert s.test.nnz == 2 and set(s.user_ids[s.test.tocoo().row]) == {4}


def test_official_split_on_ml1m_is_an_error(fixture_dir):
    ds = datasets.load("ml-1m", fixture_dir, download=False)
    with pytest.raises(datasets.DatasetError, match="ml-100k's official files"):
        datasets.make_split(ds, "u1")


def test_unknown_split_lists_choices(synth):
    with pytest.raises(datasets.DatasetError, match="unknown split 'u9'.*random-90-10"):
        datasets.make_split(synth, "u9")


def test_index_maps_round_trip(synth):
    s = datasets.make_split(synth, "random-90-10")
    assert s.item_index(int(s.item_ids[5])) == 5
    assert s.user_index(int(s.user_ids[7])) == 7
    with pytest.raises(KeyError):
        s.item_index(10**9)


def test_synthetic_shapes_and_ranges():
    df = synthetic_ratings(50, 40, density=0.1, seed=0)
    assert df["rating"].between(1, 5).all()
    assert df.groupby("user").size().min() >= 2
    assert not df.duplicated(["user", "item"]).any()
    assert np.array_equal(df.values, synthetic_ratings(50, 40, density=0.1, seed=0).values)
    assert datasets.load("synthetic-30x20").ratings["item"].max() <= 20


def test_validation_carving_is_seeded_disjoint_and_sized(synth):
    s = datasets.make_split(synth, "random-90-10", seed=1)
    a = datasets.carve_validation(s.without_test(), 0.05, seed=3)
    b = datasets.carve_validation(s.without_test(), 0.05, seed=3)
    c = datasets.carve_validation(s.without_test(), 0.05, seed=4)
    assert a.test.nnz == round(s.train.nnz * 0.05)
    assert a.train.nnz + a.test.nnz == s.train.nnz
    assert a.train.multiply(a.test).nnz == 0
    # the carving is the training ratings split in two, nothing else
    assert ((a.train + a.test) != s.train).nnz == 0
    assert a.fingerprint == b.fingerprint != c.fingerprint != s.fingerprint
    assert (a.train != b.train).nnz == 0 and (a.train != c.train).nnz > 0
    assert a.name == "random-90-10/valid" and a.seed == 3


def test_fitting_view_holds_no_test_rating(synth):
    """What training and model selection get holds no test rating: the view of a split with
    its test ratings gone is the same as the view of the split itself."""
    s = datasets.make_split(synth, "random-90-10", seed=2)
    view = datasets.carve_validation(s.without_test(), 0.1, seed=0)
    assert s.without_test().test.nnz == 0
    assert view.train.multiply(s.test).nnz == 0 and view.test.multiply(s.test).nnz == 0
    assert view.fingerprint == datasets.carve_validation(s, 0.1, seed=0).fingerprint


def test_official_split_carving_leaves_the_test_file_untouched(fixture_dir):
    ds = datasets.load("ml-100k", fixture_dir, download=False)
    s = datasets.make_split(ds, "u1")
    view = datasets.carve_validation(s.without_test(), 0.2, seed=0)
    assert view.train.nnz + view.test.nnz == s.train.nnz == 5 and view.test.nnz == 1
    assert s.test.nnz == 4  # u1.test itself is not carved
