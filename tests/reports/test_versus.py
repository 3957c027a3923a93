"""Every variant against named references: paired per user, Holm over the table, and the
"above every reference" line, on records built by hand."""

import numpy as np
from aebench.bench.reports import versus

from tests.conftest import record


def fake(tmp_path, model, seed, values):
    name = f"{model}-{seed}.npz"
    users = np.arange(1, len(values) + 1)
    np.savez(tmp_path / name, ranked_user_id=users, ndcg_at_10=np.asarray(values, float))
    return record(tmp_path, model=model, seed=seed, split={"name": "s"},
                  metrics={"ndcg@10": float(np.mean(values))}, per_user=name,
                  variant={"kind": "reference" if model.startswith("ref") else "autoencoder",
                           "rates": False})


def test_a_variant_above_both_references_and_one_level_with_them(tmp_path):
    rng = np.random.default_rng(0)
    recs = []
    for seed in range(2):
        base = rng.uniform(0.2, 0.4, 300)
        recs += [fake(tmp_path, "ref-a", seed, base), fake(tmp_path, "ref-b", seed, base - 0.01),
                 fake(tmp_path, "strong", seed, base + 0.05 + rng.normal(0, 0.01, 300)),
                 fake(tmp_path, "same", seed, base + rng.normal(0, 0.01, 300))]
    md = versus.markdown(tmp_path, recs, ["ref-a", "ref-b", "absent"])
    lines = {tuple(c.strip() for c in line.strip("|").split("|")[:2]): line
             for line in md.splitlines() if line.startswith("| ")}
    assert lines[("strong", "ref-a")].rstrip(" |").endswith("above")
    assert lines[("strong", "ref-b")].rstrip(" |").endswith("above")
    assert lines[("same", "ref-a")].rstrip(" |").endswith("level")
    assert lines[("same", "ref-b")].rstrip(" |").endswith("above")  # 0.01 over 600 pairs
    assert lines[("ref-b", "ref-a")].rstrip(" |").endswith("below")
    assert "Above every reference present: strong." in md
    rows = versus.rows(tmp_path, {m: [r for r in recs if r.model == m]
                                  for m in ("ref-a", "strong")}, ["ref-a"], "ndcg@10", True)
    (row,) = rows
    assert row["pairs"] == 600 and abs(row["mean_diff"] - 0.05) < 0.005
