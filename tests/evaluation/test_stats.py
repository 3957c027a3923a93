"""Seeds, confidence intervals and paired tests: cases worked by hand, and the two cases the
comparison must get right (identical models are not flagged, a planted difference is)."""

import math

import numpy as np
import pytest
from aebench.bench.evaluation import stats
from scipy import stats as sps

from tests.conftest import record


def test_mean_ci_by_hand():
    # values 1, 2, 3: mean 2, std 1, t(0.975, 2) = 4.302653 -> half width 4.302653 / sqrt(3)
    s = stats.mean_ci([1.0, 2.0, 3.0])
    assert (s["n"], s["mean"], s["std"]) == (3, 2.0, 1.0)
    assert s["ci_high"] - 2.0 == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert s["ci_low"] == pytest.approx(4.0 - s["ci_high"])
    one = stats.mean_ci([0.5])
    assert one["mean"] == 0.5 and math.isnan(one["std"]) and math.isnan(one["ci_low"])
    assert stats.mean_ci([None, float("nan")])["n"] == 0


def test_holm_by_hand():
    # sorted p 0.01, 0.02, 0.04 with m = 3: 0.03, max(0.03, 0.04), max(0.04, 0.04)
    got = stats.holm([0.04, 0.01, 0.02, float("nan")])
    np.testing.assert_allclose(got[:3], [0.04, 0.03, 0.04])
    assert math.isnan(got[3])


def test_paired_tests_match_scipy_and_handle_identical_samples():
    rng = np.random.default_rng(0)
    a = rng.normal(size=50)
    b = a + rng.normal(0.3, 1.0, size=50)
    t = stats.paired(a, b)
    assert t["mean_diff"] == pytest.approx(float((a - b).mean()))
    assert t["wilcoxon_p"] == pytest.approx(sps.wilcoxon(a, b).pvalue)
    assert t["ttest_p"] == pytest.approx(sps.ttest_rel(a, b).pvalue)
    same = stats.paired(a, a)
    assert same["wilcoxon_p"] == 1.0 and same["ttest_p"] == 1.0 and same["mean_diff"] == 0.0


def _cells(tmp_path, values: dict[str, list[np.ndarray]]):
    """Records and per-user files of variants over seeds (ndcg@10 per user)."""
    cells = {}
    for model, per_seed in values.items():
        recs = []
        for seed, v in enumerate(per_seed):
            path = tmp_path / f"{model}-{seed}.npz"
            users = np.arange(len(v)) + 1
            np.savez(path, user_id=users, ranked_user_id=users, ndcg_at_10=v)
            recs.append(record(tmp_path, model=model, seed=seed, per_user=path.name,
                               metrics={"ndcg@10": float(v.mean())}))
        cells[model] = recs
    return cells


def test_identical_models_are_not_flagged_and_a_planted_difference_is(tmp_path):
    rng = np.random.default_rng(1)
    base = [rng.uniform(0, 1, 300) for _ in range(3)]
    planted = [v - 0.05 + rng.normal(0, 0.01, 300) for v in base]  # 0.05 worse, per user
    cells = _cells(tmp_path, {"a": base, "a-copy": [v.copy() for v in base],
                              "worse": planted})
    table = stats.compare(tmp_path, cells, "ndcg@10", higher_is_better=True)
    rows = table.set_index("model")
    best = rows.index[rows["best"]][0]
    assert best in ("a", "a-copy")
    twin = "a-copy" if best == "a" else "a"
    assert not rows.loc[twin, "significant"] and rows.loc[twin, "wilcoxon_p"] == 1.0
    assert rows.loc["worse", "significant"] and rows.loc["worse", "wilcoxon_p_holm"] < 1e-10
    assert rows.loc["worse", "mean_diff"] == pytest.approx(-0.05, abs=0.003)
    assert rows.loc["worse", "n_pairs"] == 900  # 300 users x 3 seeds, pooled
    assert list(table["model"])[-1] == "worse"  # sorted by the metric


def test_pairs_are_matched_by_seed_and_user(tmp_path):
    """Users missing from one side are left out; seeds pair with the same seed."""
    cells = _cells(tmp_path, {"x": [np.array([0.1, 0.2, 0.3]), np.array([0.5, 0.5, 0.5])],
                              "y": [np.array([0.2, 0.2, 0.2]), np.array([0.1, 0.4, 0.9])]})
    np.savez(tmp_path / "y-0.npz", user_id=np.array([2, 3, 9]),
             ranked_user_id=np.array([2, 3, 9]), ndcg_at_10=np.array([0.2, 0.2, 0.2]))
    a, b = stats.pooled_pairs(tmp_path, cells["x"], cells["y"], "ndcg@10")
    np.testing.assert_allclose(a, [0.2, 0.3, 0.5, 0.5, 0.5])
    np.testing.assert_allclose(b, [0.2, 0.2, 0.1, 0.4, 0.9])


def test_rating_tables_pair_per_user_rmse(tmp_path):
    np.savez(tmp_path / "r.npz", user_id=np.array([4, 5, 6]), test_sse=np.array([4.0, 0.0, 9.0]),
             test_n=np.array([1, 0, 4]))
    got = stats.per_user(tmp_path, record(per_user="r.npz"), "rmse")
    assert list(got.index) == [4, 6] and list(got) == [2.0, 1.5]
