"""Metrics on cases worked by hand."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
from aebench.bench.evaluation import metrics
from aebench.bench.evaluation.evaluate import rating_errors


def test_rmse_mae_by_hand():
    pred = np.array([3.0, 4.0, 1.0])
    true = np.array([4.0, 4.0, 3.0])
    # errors -1, 0, -2: squared 1, 0, 4 -> mean 5/3
    assert metrics.rmse(pred, true) == pytest.approx(math.sqrt(5 / 3))
    assert metrics.mae(pred, true) == pytest.approx(1.0)
    assert math.isnan(metrics.rmse(np.array([]), np.array([])))


def test_clamp():
    assert list(metrics.clamp(np.array([0.2, 3.0, 6.5]))) == [1.0, 3.0, 5.0]


def test_legacy_loss_is_mean_of_per_user_rmse():
    # user 0: errors 1, 1 -> sqrt(2/2)=1 ; user 1: error 3 -> 3 ; user 2: no ratings (skipped)
    pred = np.array([4.0, 2.0, 5.0])
    true = np.array([3.0, 3.0, 2.0])
    users = np.array([0, 0, 1])
    sse, n = metrics.per_user_sse(pred, true, users, 3)
    assert list(sse) == [2.0, 9.0, 0.0] and list(n) == [2, 1, 0]
    assert metrics.legacy_loss(sse, n) == pytest.approx(2.0)
    # whereas global RMSE weights ratings, not users: sqrt(11/3)
    assert metrics.rmse(pred, true) == pytest.approx(math.sqrt(11 / 3))


def test_legacy_loss_equals_classic_formula():
    """sqrt(MSELoss(masked row) * n_items / n_rated) per user, averaged over users."""
    rng = np.random.default_rng(0)
    n_items, classic, preds, trues, users = 7, [], [], [], []
    for u in range(4):
        target = np.where(rng.random(n_items) < 0.5, rng.integers(1, 6, n_items), 0).astype(float)
        target[0] = 3.0
        out = rng.normal(3, 1, n_items)
        mask = target > 0
        mse = np.mean((out * mask - target) ** 2)  # the classic masks unobserved outputs to 0
        classic.append(math.sqrt(mse * n_items / mask.sum()))
        preds.append(out[mask])
        trues.append(target[mask])
        users.append(np.full(mask.sum(), u))
    sse, n = metrics.per_user_sse(np.concatenate(preds), np.concatenate(trues),
                                  np.concatenate(users), 4)
    assert metrics.legacy_loss(sse, n) == pytest.approx(np.mean(classic))


def test_rating_errors_clamps_headline_only():
    target = sp.csr_matrix(np.array([[5.0, 0.0], [0.0, 1.0]], dtype=np.float32))
    pred = np.array([6.0, 0.0], dtype=np.float32)  # both outside [1, 5] by 1
    out = rating_errors(pred, target)
    assert out["rmse"] == pytest.approx(0.0)
    assert out["mae"] == pytest.approx(0.0)
    assert out["rmse_raw"] == pytest.approx(1.0)
    assert out["legacy_loss"] == pytest.approx(1.0)


# ---- ranking, worked by hand -------------------------------------------------------------
# user 0: ranking hits at ranks 2 and 4 (1-based), 3 relevant items in all
# user 1: first item is a hit, 1 relevant item
HITS = np.array([[0, 1, 0, 1, 0], [1, 0, 0, 0, 0]], dtype=bool)
NREL = np.array([3, 1])


def test_precision_recall_hit_by_hand():
    assert list(metrics.precision_at_k(HITS, 5)) == [2 / 5, 1 / 5]
    assert list(metrics.precision_at_k(HITS, 2)) == [1 / 2, 1 / 2]
    assert list(metrics.recall_at_k(HITS, NREL, 5)) == [2 / 3, 1.0]
    assert list(metrics.recall_at_k(HITS, NREL, 1)) == [0.0, 1.0]
    assert list(metrics.hit_at_k(HITS, 1)) == [0.0, 1.0]
    assert list(metrics.hit_at_k(HITS, 2)) == [1.0, 1.0]


def test_liang_normalised_recall_by_hand():
    # hits / min(k, relevant): user 0 at k=2 finds 1 of min(2, 3) = 2, where recall reads 1/3
    assert list(metrics.liang_recall_at_k(HITS, NREL, 2)) == [1 / 2, 1.0]
    assert list(metrics.liang_recall_at_k(HITS, NREL, 5)) == [2 / 3, 1.0]
    assert list(metrics.recall_at_k(HITS, NREL, 2)) == [1 / 3, 1.0]


def test_mrr_by_hand():
    assert list(metrics.mrr_at_k(HITS, 5)) == [1 / 2, 1.0]
    assert list(metrics.mrr_at_k(HITS, 1)) == [0.0, 1.0]


def test_ndcg_by_hand():
    # user 0 at k=5: DCG = 1/log2(3) + 1/log2(5); ideal = 1/log2(2) + 1/log2(3) + 1/log2(4)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3) + 1 / 2
    got = metrics.ndcg_at_k(HITS, NREL, 5)
    assert got[0] == pytest.approx(dcg / idcg)
    assert got[1] == pytest.approx(1.0)
    # at k=2 the ideal covers min(2, 3) = 2 items
    assert metrics.ndcg_at_k(HITS, NREL, 2)[0] == pytest.approx((1 / math.log2(3)) /
                                                                 (1 + 1 / math.log2(3)))


def test_ranking_per_user_names():
    out = metrics.ranking_per_user(HITS, NREL, ks=(1, 5))
    names = ("precision", "recall", "nrecall", "ndcg", "hit", "mrr")
    assert set(out) == {f"{m}@{k}" for m in names for k in (1, 5)}


def test_legacy_topk_acc_by_hand():
    """The ML-1M notebook's arithmetic: hits / k, negative scores rank below unrated items
    (score 0), users without test ratings count 0."""
    # user 0: ranked (0.9: r5), (0.5: r2), (0.1: r4) -> k=2: 1 hit / 2; k=1: 1 / 1
    # user 1: one test item rated 4 -> k=2: 1 hit / 2 (divided by k, not by 1); k=1: 1
    # user 2: no test ratings -> 0
    # user 3: (0.4: r3), (-0.2: r5) -> the 5 scores below the unrated zeros: 0 at any k
    scores = [np.array([0.9, 0.1, 0.5]), np.array([0.3]), np.array([]), np.array([-0.2, 0.4])]
    ratings = [np.array([5.0, 4.0, 2.0]), np.array([4.0]), np.array([]), np.array([5.0, 3.0])]
    assert metrics.legacy_topk_acc(scores, ratings, 2) == pytest.approx((0.5 + 0.5) / 4)
    assert metrics.legacy_topk_acc(scores, ratings, 1) == pytest.approx((1 + 1) / 4)
