"""The literature's protocols: RecBole's filtered 80/10/10 (k-core filtering, per-user
ratio split with its rounding, a validation part of its own, every held-out rating
relevant), on cases worked by hand."""

import numpy as np
import pandas as pd
import pytest
import torch
from aebench.bench.cli import main
from aebench.bench.evaluation.evaluate import ranking_hits
from aebench.bench.runs import records
from aebench.datasets.splits import k_core, per_user_shares, split_per_user

from aebench import datasets, models


def frame(pairs, rating=4.0):
    return pd.DataFrame({"user": [u for u, _ in pairs], "item": [i for _, i in pairs],
                         "rating": rating, "timestamp": 0})


def test_k_core_fixed_point_by_hand():
    pairs = [(1, 1), (1, 2), (2, 2), (2, 3), (3, 1), (3, 4), (4, 1), (4, 4)]
    kept = k_core(frame(pairs), 2)
    # item 3 (one rating) goes; user 2 is left with item 2 only and goes; item 2 then has
    # user 1 only and goes; user 1 is left with item 1 only and goes
    assert sorted(zip(kept["user"], kept["item"])) == [(3, 1), (3, 4), (4, 1), (4, 4)]


@pytest.mark.parametrize("n, want", [(10, [8, 1, 1]), (15, [13, 1, 1]), (20, [16, 2, 2]),
                                     (29, [25, 2, 2]), (3, [1, 1, 1]), (2, [1, 0, 1]),
                                     (1, [1, 0, 0])])
def test_per_user_shares_round_as_recbole_does(n, want):
    # RecBole's _calcu_split_ids: int(0.1 n) for validation and test, the rest to train; a
    # part whose share is under one rating gets one while train keeps more than one
    assert per_user_shares([n], (0.8, 0.1, 0.1)).tolist() == [want]


def test_split_per_user_is_seeded_disjoint_and_sized():
    rng = np.random.default_rng(0)
    pairs = [(u, i) for u in range(1, 7) for i in rng.choice(50, 10 + 3 * u, replace=False)]
    df = frame(pairs)
    a = split_per_user(df, (0.8, 0.1, 0.1), seed=1)
    b = split_per_user(df, (0.8, 0.1, 0.1), seed=1)
    c = split_per_user(df, (0.8, 0.1, 0.1), seed=2)
    counts = df["user"].value_counts().sort_index()
    for part, share in zip(a, per_user_shares(counts.to_numpy(), (0.8, 0.1, 0.1)).T):
        sizes = part["user"].value_counts().reindex(counts.index, fill_value=0)
        assert sizes.tolist() == share.tolist()
    keys = [set(zip(p["user"], p["item"])) for p in a]
    assert sum(map(len, keys)) == len(set().union(*keys)) == len(df)
    assert all(x.equals(y) for x, y in zip(a, b))
    assert not all(set(zip(x["user"], x["item"])) == set(zip(y["user"], y["item"]))
                   for x, y in zip(a, c))


@pytest.fixture(scope="module")
def dense_csv(tmp_path_factory):
    """Synthetic ratings dense enough for a 10-core (users rate 30% of 150 items)."""
    from aebench.datasets.synthetic import synthetic_ratings

    path = tmp_path_factory.mktemp("dense") / "dense.csv"
    synthetic_ratings(300, 150, density=0.3, seed=0)[["user", "item", "rating"]].to_csv(
        path, index=False)
    return path


def dense_split(path, protocol):
    ds = datasets.load(str(path))
    return ds, datasets.make_split(ds, protocol, seed=0)


@pytest.fixture(scope="module")
def filtered(dense_csv):
    return dense_split(dense_csv, "filtered-80-10-10")


def test_filtered_split_keeps_ratings_from_3_in_a_10_core(filtered):
    ds, s = filtered
    parts = [s.train, s.valid, s.test]
    every = sum(p.nnz for p in parts)
    assert s.describe()["n_valid"] == s.valid.nnz > 0 and s.all_relevant
    assert every < len(ds.ratings) and min(p.data.min() for p in parts) >= 3
    whole = s.train + s.valid + s.test
    assert whole.nnz == every  # the three parts are disjoint
    assert (np.diff(whole.indptr)[np.diff(whole.indptr) > 0] >= 10).all()
    assert ((whole != 0).sum(0).A1 >= 10).all()
    # the protocol's validation part is the fitting view, whatever the carving fraction
    view = datasets.carve_validation(s.without_test(), 0.05, 3)
    assert view.test.nnz == s.valid.nnz and view.train.nnz == s.train.nnz
    assert view.all_relevant and view.test.multiply(s.test).nnz == 0


def test_at_test_time_the_validation_items_are_no_candidates():
    # one user, 4 items: trains on item 0, validation item 1, test item 2; a model that
    # scores item 1 highest would rank it first unless the validation part is masked
    import scipy.sparse as sp
    import torch
    from aebench.models.base import Recommender

    class Fixed(Recommender):
        def score(self, batch):
            return torch.tensor([[0.0, 3.0, 2.0, 1.0]]).expand(len(batch.rows), 4)

    def m(col):
        return sp.csr_matrix(([5.0], ([0], [col])), shape=(1, 4), dtype=np.float32)

    from aebench.models import config
    cfg = config("ease")
    _, hits, _ = ranking_hits(Fixed(), cfg, m(0), m(2), torch.device("cpu"), 1)
    assert not hits[0, 0]  # item 1 ranked above the test item
    _, hits, _ = ranking_hits(Fixed(), cfg, m(0), m(2), torch.device("cpu"), 1,
                              exclude=m(1))
    assert hits[0, 0]


def test_a_run_under_the_filtered_protocol_reads_its_validation_part(tmp_path, dense_csv):
    out = tmp_path / "run"
    assert main(["run", "-m", "ease", "mf", "-d", str(dense_csv), "--split",
                 "filtered-80-10-10", "--epochs", "6", "--out", str(out)]) == 0
    for r in records.load(out):
        assert r["status"] == "ok", r.get("error")
        assert r["split"]["name"] == "filtered-80-10-10" and r["split"]["n_valid"] > 0
        v = r["validation"]
        assert v["fraction"] is None and v["n_valid"] == r["split"]["n_valid"]
        # every held-out rating is relevant: all test users with a rating are ranked
        assert r["metrics"]["n_users_no_relevant"] == 0


def test_the_filtered_protocol_refuses_implicit_data(tmp_path):
    path = tmp_path / "clicks.csv"
    path.write_text("user,item\n" + "".join(f"{u},{i}\n" for u in range(1, 4)
                                             for i in range(1, 4)))
    spec = datasets.FileSpec(name="clicks", path=str(path), scale="implicit")
    datasets.register_file(spec)
    with pytest.raises(datasets.DatasetError, match="'filtered-80-10-10' keeps ratings >= 3"):
        datasets.make_split(datasets.load("clicks"), "filtered-80-10-10")


# ---- strong generalisation: held-out users (Liang et al., WWW 2018) ----------------------

@pytest.fixture(scope="module")
def heldout(dense_csv):
    return dense_split(dense_csv, "heldout-users")


def test_heldout_users_partition_the_users_and_fold_in_80_20(heldout):
    ds, s = heldout
    liked = ds.ratings[ds.ratings["rating"] >= 4]
    counts = liked["user"].value_counts()
    eligible = set(counts.index[counts >= 5])
    assert s.scale is None and set(np.unique(s.train.data)) == {1.0}  # interactions
    assert set(s.user_ids) <= eligible
    fit = set(s.user_ids[s.fit_rows])
    valid_users = set(s.user_ids[np.diff(s.valid.indptr) > 0])
    test_users = set(s.user_ids[np.diff(s.test.indptr) > 0])
    n_held = round(0.1 * len(eligible))
    assert not fit & valid_users and not fit & test_users and not valid_users & test_users
    assert len(fit) == len(eligible) - 2 * n_held
    assert len(valid_users) <= n_held and len(test_users) <= n_held
    # the held-out users' items are items some training user has
    seen = set(np.flatnonzero((s.train[s.fit_rows] != 0).sum(0).A1))
    assert set(s.test.indices) <= seen and set(s.valid.indices) <= seen
    # each held-out user: int(0.2 n) of its n interactions scored, the rest fold-in
    for u in np.flatnonzero(np.diff(s.test.indptr) > 0):
        n_in, n_out = s.train[u].nnz, s.test[u].nnz
        assert n_out == int(0.2 * (n_in + n_out)) and s.train[u].multiply(s.test[u]).nnz == 0
    again = datasets.make_split(ds, "heldout-users", seed=0)
    assert again.fingerprint == s.fingerprint
    assert datasets.make_split(ds, "heldout-users", seed=1).fingerprint != s.fingerprint


def test_no_model_trains_on_a_held_out_user(heldout):
    # EASE's closed form on the fitting view equals EASE fitted on the training users' rows
    # alone; the held-out users' fold-in rows only enter as input when scoring
    import scipy.sparse as sp
    from aebench.bench.runs.runner import RunConfig, train_cell

    ds, s = heldout
    view = datasets.carve_validation(s.without_test(), 0.05, 0)
    trained = train_cell(RunConfig(model="ease", dataset=ds.name, split="heldout-users"),
                         view)
    assert trained.x.nnz == s.train[s.fit_rows].nnz
    only = models.create("ease", s.n_users, s.n_items)[0]
    only.fit(sp.csr_matrix(s.train.multiply(s.fit_rows[:, None])))
    for k, v in only.state_dict().items():
        torch.testing.assert_close(trained.model.state_dict()[k], v)


def test_a_heldout_users_run_skips_what_cannot_score_an_unseen_user(tmp_path, dense_csv,
                                                                    capsys):
    out = tmp_path / "run"
    assert main(["run", "-m", "ease", "mult-dae", "cdae", "mf", "-d", str(dense_csv),
                 "--split", "heldout-users", "--epochs", "4", "--ks", "10", "20", "50",
                 "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "skipped: cdae is not inductive (its config does not declare `inductive`" in said
    assert "skipped: mf learns from ratings; heldout-users keeps interactions only" in said
    recs = records.load(out)
    split = datasets.make_split(datasets.load(str(dense_csv)), "heldout-users", 0)
    n_test_users = int((np.diff(split.test.indptr) > 0).sum())
    assert {r["model"] for r in recs} == {"ease", "mult-dae"}
    for r in recs:
        assert r["status"] == "ok", r.get("error")
        assert r["split"]["n_fit_users"] < r["split"]["n_users"]
        # scored: exactly the test users (every held-out interaction is relevant)
        assert r["metrics"]["n_users_ranked"] == n_test_users
        assert 0 <= r["metrics"]["nrecall@50"] <= 1 and "ndcg@50" in r["metrics"]


def test_an_item_based_model_cannot_declare_itself_inductive():
    with pytest.raises(ValueError, match="inductive needs rows 'user'"):
        models.create("autorec-i", 4, 4, inductive=True)


def test_a_protocol_whose_parts_share_a_pair_is_refused(monkeypatch):
    # (1, 1) in both validation and test, (2, 2) in train and test: two shared pairs; a
    # pair repeated inside one part is not one of them
    from aebench.datasets import splits

    def overlapping(ds, seed):
        return (frame([(1, 2), (2, 2), (2, 2)]), frame([(1, 1), (3, 3)]),
                frame([(1, 1), (2, 2)]))

    monkeypatch.setitem(splits.PROTOCOLS, "overlapping", overlapping)
    with pytest.raises(datasets.DatasetError, match="2 \\(user, item\\) pairs are in two of"):
        datasets.make_split(datasets.load("synthetic"), "overlapping")


# ---- the infinite-width autoencoder's protocol (noveens/infinite_ae_cf, preprocess.py)

@pytest.mark.parametrize("n, want", [(3, [1, 0, 2]), (10, [7, 1, 2]), (20, [15, 2, 3]),
                                     (4, [2, 0, 2]), (5, [3, 0, 2])])
def test_inf_ae_rule_by_hand(n, want):
    # int(0.8 n) first positions, one of them (the first drawn) forced to test; then
    # int(0.9 n) - int(0.8 n) validation; the rest test. n = 3: int(2.4) = 2, int(2.7) = 2:
    # train 1, validation 0, test 2; n = 5: int(4) = int(4.5) = 4: train 3, test 2
    from aebench.datasets.splits import inf_ae_parts

    ratings = frame([(1, i) for i in range(n)])
    parts = inf_ae_parts(ratings, np.random.default_rng(0))
    assert [len(p) for p in parts] == want
    assert sorted(pd.concat(parts)["item"]) == list(range(n))


def test_inf_ae_protocol_drops_short_users_and_reads_validation_as_test_input():
    from aebench.bench.evaluation.evaluate import test_inputs

    pairs = [(1, i) for i in range(10)] + [(2, i) for i in range(2)] + [(3, i) for i in range(3)]
    ds = datasets.Dataset("hand", frame(pairs, rating=2.0), pd.DataFrame())
    split = datasets.make_split(ds, "inf-ae-80-10-10", seed=4)
    assert list(split.user_ids) == [1, 3]  # user 2 has 2 ratings: dropped
    assert split.all_relevant and split.scale is None  # every rating an interaction
    assert (split.test.getnnz(axis=1) >= 1).all()  # a test item forced for every user
    again = datasets.make_split(ds, "inf-ae-80-10-10", seed=4)
    assert again.fingerprint == split.fingerprint
    assert datasets.make_split(ds, "inf-ae-80-10-10", seed=5).fingerprint != split.fingerprint
    inputs, exclude = test_inputs(split)
    assert exclude is None and (inputs != (split.train + split.valid)).nnz == 0
    # the fitting view validates on the protocol's part, reading train alone
    view = datasets.carve_validation(split.without_test(), 0.05, 0)
    assert (view.test != split.valid).nnz == 0 and test_inputs(view)[0] is view.train


def test_diffrec_temporal_orders_interactions_by_time_and_refuses_missing_timestamps():
    # 12 users x 12 items, every pair rated 4 (a 10-core), user 1's item 1 rated 2
    pairs = [(u, i) for u in range(1, 13) for i in range(1, 13)]
    ratings = frame(pairs)
    ratings["timestamp"] = np.arange(len(ratings))[::-1]  # the last pair is the earliest
    ratings.loc[ratings.index[0], "rating"] = 2.0  # not an interaction
    ds = datasets.Dataset("hand", ratings, pd.DataFrame())
    split = datasets.make_split(ds, "diffrec-temporal")
    n = len(ratings) - 1
    assert (split.train.nnz, split.valid.nnz, split.test.nnz) == (
        round(0.7 * n), round(0.8 * n) - round(0.7 * n), n - round(0.8 * n))
    # the earliest interactions train: user 12's (the latest rows, the smallest timestamps)
    assert split.train[split.user_index(12)].nnz == 12 and split.test[split.user_index(1)].nnz
    ratings.loc[ratings.index[3], "timestamp"] = np.nan
    with pytest.raises(datasets.DatasetError, match="1 of hand's 143 ratings >= 4 have no"):
        datasets.make_split(datasets.Dataset("hand", ratings, pd.DataFrame()),
                            "diffrec-temporal")


@pytest.mark.realdata
def test_diffrec_temporal_on_ml1m_is_the_papers_data(ml1m):
    """This ml-1m mirror lacks 137,349 timestamps, all of ratings of 3: DiffRec's protocol,
    which keeps ratings >= 4, is whole; its 10-core is the paper's ML-1M clean set."""
    split = datasets.make_split(ml1m, "diffrec-temporal")
    total = split.train.nnz + split.valid.nnz + split.test.nnz
    assert (split.n_users, split.n_items, total) == (5949, 2810, 571531)
    assert split.train.nnz == round(0.7 * total)


def test_heldout_users_keeps_ratings_above_3_5_on_either_scale(monkeypatch):
    """Liang et al. keep ML-20M's ratings > 3.5 (half stars); on whole stars that is >= 4:
    3.5 and 3 are dropped, 4 and 4.5 kept. At most HELDOUT_MAX users are held out per part
    (10,000: Liang's ML-20M figure)."""
    from aebench.datasets import splits

    rows = [(u, i, r, 0) for u in range(1, 41) for i, r in enumerate(
        (3.5, 4.0, 4.5, 5.0, 3.0, 4.0, 4.5, 5.0, 4.0, 0.5), start=1)]
    ratings = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    half = datasets.Dataset("half", ratings, pd.DataFrame(), scale=(0.5, 5.0))
    split = datasets.make_split(half, "heldout-users", seed=0)
    kept = split.train + split.test + split.valid
    assert set(split.item_ids) == {2, 3, 4, 6, 7, 8, 9}  # 3.5, 3.0 and 0.5 dropped
    assert kept.nnz == 40 * 7
    assert (~split.fit_rows).sum() == 2 * 4  # 10% of 40 users, twice
    monkeypatch.setattr(splits, "HELDOUT_MAX", 3)
    capped = datasets.make_split(half, "heldout-users", seed=0)
    assert (~capped.fit_rows).sum() == 2 * 3
