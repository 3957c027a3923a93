"""Seeds, confidence and significance: small functions over arrays, and the paired comparison
of every variant with the best variant of a table.

- Over seeds: mean, sample standard deviation and a two-sided 95% Student-t interval of the
  mean (none with one seed).
- Paired tests: each user is a unit. Per-user values of two variants are paired by (seed,
  user) and pooled over seeds (every variant sees the same split and validation carving per
  seed); the Wilcoxon signed-rank test and the paired t-test (scipy.stats) give the p-values,
  Holm's step-down method (statsmodels) corrects them across the variants of one table.
- Per-user values: a ranking metric as stored (`ndcg@10` of each ranked user), and for the
  rating metrics each user's RMSE over their test ratings, sqrt(SSE_u / n_u): every user
  weighs the same, as in the ranking metrics (the headline RMSE pools ratings instead).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

ALPHA = 0.05


def mean_ci(values, level: float = 0.95) -> dict[str, float]:
    """Mean, standard deviation (ddof 1) and the Student-t interval of the mean."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    n = len(v)
    if n == 0:
        return {"n": 0, "mean": math.nan, "std": math.nan, "ci_low": math.nan,
                "ci_high": math.nan}
    mean = float(v.mean())
    if n == 1:
        return {"n": 1, "mean": mean, "std": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    std = float(v.std(ddof=1))
    half = float(sps.t.ppf(0.5 + level / 2, n - 1)) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half}


def paired(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Paired tests of a against b (same units, same order): the mean difference a - b, the
    Wilcoxon signed-rank p-value and the paired t-test p-value (two-sided). Identical
    samples give p = 1, not an error."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = a - b
    out = {"n": int(len(d)), "mean_diff": float(d.mean()) if len(d) else math.nan}
    if len(d) < 2 or not np.any(d != 0):
        return {**out, "wilcoxon_p": 1.0 if len(d) else math.nan,
                "ttest_p": 1.0 if len(d) else math.nan}
    out["wilcoxon_p"] = float(sps.wilcoxon(a, b, zero_method="wilcox").pvalue)
    t = sps.ttest_rel(a, b)
    out["ttest_p"] = float(t.pvalue) if math.isfinite(t.pvalue) else 1.0
    return out


def holm(pvalues) -> np.ndarray:
    """Holm-adjusted p-values (NaN stays NaN)."""
    p = np.asarray(pvalues, float)
    out = np.full_like(p, math.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out


def has_per_user(run_dir: Path, record) -> bool:
    """Whether a record's per-user values are on disk (a folder copied as runs.jsonl alone
    has none: its tables keep the seed summaries and leave the paired tests out)."""
    return record.per_user_path(run_dir) is not None


def per_user(run_dir: Path, record, metric: str) -> pd.Series:
    """One record's per-user values of `metric`, indexed by original user id."""
    data = np.load(Path(record.folder or run_dir) / record.per_user)
    if metric == "rmse":
        n = data["test_n"]
        has = n > 0
        return pd.Series(np.sqrt(data["test_sse"][has] / n[has]), index=data["user_id"][has])
    return pd.Series(data[metric.replace("@", "_at_")], index=data["ranked_user_id"])


def pooled_pairs(run_dir: Path, recs_a: list, recs_b: list, metric: str
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Per-user values of two variants (`records.Record`s) paired by (seed, user), pooled
    over their common seeds. Each record's values are read from the folder it came from
    (`records.Record.per_user_path`)."""
    by_seed_b = {r.seed: r for r in recs_b}
    xs, ys = [], []
    for ra in recs_a:
        rb = by_seed_b.get(ra.seed)
        if rb is None or not (has_per_user(run_dir, ra) and has_per_user(run_dir, rb)):
            continue
        a = per_user(run_dir, ra, metric)
        b = per_user(run_dir, rb, metric)
        common = a.index.intersection(b.index)
        xs.append(a.loc[common].to_numpy())
        ys.append(b.loc[common].to_numpy())
    if not xs:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(xs), np.concatenate(ys)


def compare(run_dir: Path, cells: dict[str, list], metric: str, higher_is_better: bool,
            alpha: float = ALPHA) -> pd.DataFrame:
    """Every variant of one table against the table's best (by mean over seeds): per
    variant, the seed summary of `metric` and the paired tests on per-user values against
    the best, Holm-corrected across the table. `cells` maps a variant to its records (one per
    seed)."""
    rows = []
    for model, recs in cells.items():
        s = mean_ci([r.metrics.get(metric) for r in recs])
        rows.append({"model": model, **s})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    order = table["mean"].rank(ascending=not higher_is_better, method="first")
    best = table.loc[order.idxmin(), "model"]
    tests = []
    for model in table["model"]:
        if model == best:
            tests.append({"n_pairs": math.nan, "mean_diff": 0.0, "wilcoxon_p": math.nan,
                          "ttest_p": math.nan})
            continue
        a, b = pooled_pairs(run_dir, cells[model], cells[best], metric)
        t = paired(a, b) if len(a) else {"n": 0, "mean_diff": math.nan,
                                         "wilcoxon_p": math.nan, "ttest_p": math.nan}
        tests.append({"n_pairs": t["n"], "mean_diff": t["mean_diff"],
                      "wilcoxon_p": t["wilcoxon_p"], "ttest_p": t["ttest_p"]})
    table = pd.concat([table, pd.DataFrame(tests)], axis=1)
    table["wilcoxon_p_holm"] = holm(table["wilcoxon_p"])
    table["ttest_p_holm"] = holm(table["ttest_p"])
    table["best"] = table["model"] == best
    table["significant"] = table["wilcoxon_p_holm"] < alpha
    return table.sort_values("mean", ascending=not higher_is_better, kind="stable",
                             ignore_index=True)
