"""Does the protocol change the verdict: ranks per protocol, Kendall's tau, and flips that
are significant under both protocols, on records built by hand and on real runs."""

import numpy as np
import pytest
from aebench.bench.cli import main
from aebench.bench.reports import verdict

from tests.conftest import record


def fake(tmp_path, model, split, seed, values, refit=False, precision="fp32"):
    """A record whose per-user NDCG@10 values are `values` (users 1..n)."""
    name = f"{model}-{split}-{refit}-{precision}-{seed}.npz"
    users = np.arange(1, len(values) + 1)
    np.savez(tmp_path / name, ranked_user_id=users, ndcg_at_10=np.asarray(values, float))
    return record(tmp_path, model=model, dataset="d", seed=seed, split={"name": split},
                  run_config={"refit": refit, "precision": precision},
                  metrics={"ndcg@10": float(np.mean(values))}, per_user=name)


def test_ranks_tau_and_a_significant_flip_by_hand(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 0.4, 200)
    recs = []
    for s in range(2):
        # under P: a > b > c; under Q: b > a > c, both gaps far beyond the noise
        recs += [fake(tmp_path, "a", "P", s, base + 0.10), fake(tmp_path, "b", "P", s, base),
                 fake(tmp_path, "c", "P", s, base - 0.10),
                 fake(tmp_path, "a", "Q", s, base), fake(tmp_path, "b", "Q", s, base + 0.10),
                 fake(tmp_path, "c", "Q", s, base - 0.10),
                 fake(tmp_path, "a", "Q", s, base, refit=True)]  # a third protocol, a alone
    out = verdict.analyse(recs, "d", "ndcg@10")
    assert list(out["ranks"]["P"].sort_values().index) == ["a", "b", "c"]
    assert out["ranks"].at["b", "Q"] == 1 and np.isnan(out["ranks"].at["b", "Q+refit"])
    tau = {t["protocols"]: t["tau"] for t in out["taus"]}
    assert tau["P vs Q"] == pytest.approx(1 / 3)  # 3 pairs, one discordant: (2 - 1) / 3
    assert [(f["pair"], f["significant_both"]) for f in out["flips"]] == [("a / b", True)]
    md = verdict.markdown(recs)
    assert "Significant flips: 1 of 1 reorderings." in md and "| a / b" in md


def test_two_precisions_of_a_variant_are_two_protocols_not_two_seeds(tmp_path):
    values = np.linspace(0.1, 0.5, 20)
    recs = [fake(tmp_path, "a", "P", 0, values), fake(tmp_path, "a", "P", 0, values + 0.1,
                                                     precision="bf16")]
    by = verdict.cells(recs, "d", "ndcg@10")
    assert {p: [r.cell_precision for r in v["a"]] for p, v in by.items()} == {
        "P": ["fp32"], "P@bf16": ["bf16"]}


def test_a_flip_within_noise_does_not_count(tmp_path):
    rng = np.random.default_rng(1)
    recs = []
    for s in range(2):
        for split, shift in (("P", 0.001), ("Q", -0.001)):
            recs += [fake(tmp_path, "a", split, s, rng.uniform(0, 1, 100) + shift),
                     fake(tmp_path, "b", split, s, rng.uniform(0, 1, 100))]
    out = verdict.analyse(recs, "d", "ndcg@10")
    assert all(not f["significant_both"] for f in out["flips"])


def test_report_compares_the_protocols_of_two_run_folders(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    argv = ["run", "-m", "ease", "popularity", "itemknn", "-d", "synthetic", "--seeds", "2"]
    assert main(argv + ["--out", str(a)]) == 0
    assert main(argv + ["--split", "random-75-25", "--out", str(b)]) == 0
    assert main(["report", str(a), "--protocols", str(b)]) == 0
    md = (a / "protocols.md").read_text()
    assert "random-75-25 vs random-90-10" in md and "| ease" in md
    assert (a / "protocols_ndcg.png").stat().st_size > 0


def test_a_protocols_folder_without_records_is_refused_before_any_work(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "runs.jsonl").write_text("")
    with pytest.raises(SystemExit) as exc:
        main(["report", str(run), "--protocols", str(tmp_path / "nowhere")])
    assert exc.value.code == 2 and "holds no runs.jsonl" in capsys.readouterr().err
    assert not (run / "tables.md").exists()
