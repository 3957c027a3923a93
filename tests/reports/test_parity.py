"""Precision parity: differences, paired tests and the per-family default, on records built by
hand and on real runs in both precisions."""

import numpy as np
import pytest
from aebench.bench.cli import main
from aebench.bench.reports import parity

from tests.conftest import record


def fake(tmp_path, model, precision, seed, values, rates=False, dataset="d"):
    """A record whose per-user values are `values` (users 1..n): NDCG@10, or each user's
    RMSE over one test rating (test_sse = rmse^2, test_n = 1) for a rating model."""
    name = f"{model}-{dataset}-{precision}-{seed}.npz"
    users = np.arange(1, len(values) + 1)
    values = np.asarray(values, float)
    if rates:
        np.savez(tmp_path / name, user_id=users, test_sse=values**2, test_n=np.ones(len(users)))
        metrics = {"rmse": float(np.sqrt(np.mean(values**2)))}
    else:
        np.savez(tmp_path / name, ranked_user_id=users, ndcg_at_10=values)
        metrics = {"ndcg@10": float(values.mean())}
    return record(tmp_path, model=model, dataset=dataset, seed=seed,
                  run_config={"precision": precision}, variant={"kind": "autoencoder",
                                                                "rates": rates},
                  metrics=metrics, per_user=name)


SPEED = {"rows": [{"model": m, "path": "batched", "precision": p, "epoch_s": s}
                  for m, p, s in (("a", "fp32", 1.0), ("a", "bf16", 0.5), ("b", "fp32", 1.0),
                                  ("b", "bf16", 0.5), ("r", "fp32", 1.0), ("r", "bf16", 0.5),
                                  ("slow", "fp32", 1.0), ("slow", "bf16", 0.95))]}


def test_parity_by_hand(tmp_path):
    rng = np.random.default_rng(0)
    recs = []
    for s in range(2):
        base = rng.uniform(0.2, 0.6, 300)
        noise = rng.normal(0, 0.01, 300)
        recs += [fake(tmp_path, "a", "fp32", s, base), fake(tmp_path, "a", "bf16", s,
                                                             base + noise + 0.0005),
                 fake(tmp_path, "b", "fp32", s, base), fake(tmp_path, "b", "bf16", s,
                                                            base - 0.05 + noise / 100),
                 fake(tmp_path, "slow", "fp32", s, base), fake(tmp_path, "slow", "bf16", s, base),
                 # a rating model 0.003 better in bf16 on every user: no loss, but beyond 0.002
                 fake(tmp_path, "r", "fp32", s, base + 0.8, rates=True),
                 fake(tmp_path, "r", "bf16", s, base + 0.797 + noise / 100, rates=True)]
    recs.append(fake(tmp_path, "only32", "fp32", 0, np.ones(5)))  # no bf16 twin: no row
    table = parity.analyse(recs, "bf16", SPEED).set_index("model")
    assert table.at["b", "a"] == pytest.approx(np.mean([r.metrics["ndcg@10"] for r in recs
                                                        if r.model == "b"
                                                        and r.cell_precision == "fp32"]))
    assert list(table.index) == ["a", "b", "r", "slow"]
    assert table.at["b", "diff"] == pytest.approx(-0.05, abs=1e-4)
    assert table.at["b", "pairs"] == 600 and table.at["b", "seeds"] == 2
    assert table.at["b", "significant_loss"] and not table.at["b", "parity"]
    assert table.at["r", "metric"] == "rmse" and not table.at["r", "worse"]
    assert not table.at["r", "significant_loss"] and not table.at["r", "parity"]
    assert table.at["a", "parity"] and abs(table.at["a", "diff"]) <= parity.TOLERANCE
    assert table.at["slow", "parity"] and table.at["slow", "wilcoxon_p"] == 1.0
    assert table.at["a", "speedup"] == pytest.approx(2.0)
    # Holm over the four rows: each adjusted p is at least its raw p
    assert (table["wilcoxon_p_holm"] >= table["wilcoxon_p"] - 1e-12).all()
    # bf16 by default only where parity holds and the epoch is clearly faster
    assert parity.decisions(table.reset_index()) == {"a": "bf16", "b": "fp32", "r": "fp32",
                                                     "slow": "fp32"}
    md = parity.markdown(table.reset_index())
    assert "no: significant loss" in md and "no: |difference| > 0.002" in md
    assert "| a " in md and "2.00x" in md and "| -0.0500 " in md


def test_a_dataset_without_parity_keeps_the_family_in_fp32(tmp_path):
    recs = []
    for dataset, shift in (("d", 0.0), ("e", -0.05)):
        for s in range(2):
            values = np.linspace(0.1, 0.9, 50)
            jitter = np.where(np.arange(50) % 2, 1e-4, -1e-4) if shift else 0.0
            recs += [fake(tmp_path, "a", "fp32", s, values, dataset=dataset),
                     fake(tmp_path, "a", "bf16", s, values + shift + jitter,
                          dataset=dataset)]
    table = parity.analyse(recs, "bf16", SPEED)
    assert list(table["parity"]) == [True, False]
    assert parity.decisions(table) == {"a": "fp32"}


def test_report_writes_parity_and_its_control_from_run_folders(tmp_path):
    here, there = tmp_path / "here", tmp_path / "there"
    argv = ["run", "-m", "mult-dae", "-d", "synthetic", "--seeds", "2"]  # default recipe
    assert main(argv + ["--precision", "fp32", "--out", str(here)]) == 0
    assert main(argv + ["--precision", "bf16", "--out", str(here)]) == 0
    assert main(argv + ["--precision", "fp32", "--out", str(there)]) == 0
    assert main(["report", str(here), "--parity", str(there)]) == 0
    md = (here / "parity.md").read_text()
    main_table, control = md.split("## Control")
    row = next(line for line in main_table.splitlines() if line.startswith("| mult-dae"))
    assert "synthetic" in row and "NDCG@10" in row and "| 2 " in row  # both seeds paired
    assert row.rstrip().endswith("| fp32      |")  # no speed file: no speedup, fp32 stays
    # the same code, seeds and thread count twice in fp32: identical, so no difference
    row = next(line for line in control.splitlines() if line.startswith("| mult-dae"))
    assert "+0.0000" in row and "| yes" in row


def test_a_parity_folder_without_records_is_refused_before_any_work(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "runs.jsonl").write_text("")
    with pytest.raises(SystemExit) as exc:
        main(["report", str(run), "--parity", str(tmp_path / "nowhere")])
    assert exc.value.code == 2 and "--parity" in capsys.readouterr().err
    assert not (run / "tables.md").exists()
