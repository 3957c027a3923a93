"""The named synthetic datasets: fixed, seeded, of a release's shape; a slice of the ML-20M
shape is a prefix of the whole."""

import numpy as np
from aebench.datasets.synthetic import ML20M_SHAPE, NAMED, ml20m_shaped_ratings

from aebench import datasets


def test_an_ml20m_slice_is_a_prefix_of_a_larger_one_and_keeps_its_floor():
    small, larger = ml20m_shaped_ratings(100), ml20m_shaped_ratings(4200)
    assert small["user"].max() == 100 and larger["user"].max() == 4200
    head = larger[larger["user"] <= 100].reset_index(drop=True)
    assert (head[["user", "item", "rating"]].to_numpy()
            == small[["user", "item", "rating"]].to_numpy()).all()
    per_user = larger.groupby("user").size()
    assert per_user.min() >= 20 and 80 < per_user.mean() < 200
    assert not larger.duplicated(["user", "item"]).any()
    assert set(np.unique(larger["rating"])) <= {x / 2 for x in range(1, 11)}
    assert larger["item"].max() <= ML20M_SHAPE[1]


def test_named_datasets_are_listed_and_estimated_before_loading():
    for name, named in NAMED.items():
        assert name in datasets.names()
        datasets.check_name(name)
        assert datasets.estimated_bytes(name) > named.ratings * 100
    ds = datasets.load("synthetic-ml1m")
    assert ds.scale == (1.0, 5.0) and ds.n_ratings == 1_006_694  # fixed: never changed
