"""The fair protocol end to end: model selection never reads a test rating, every variant of
a grid sees the same split and validation carving, and the mixed grid's tables and plots."""

import dataclasses

import numpy as np
from aebench.bench.cli import main
from aebench.bench.runs import records
from aebench.bench.runs.runner import RunConfig, SplitCache, run_one


class PoisonedCache(SplitCache):
    """Every split comes back with its test ratings replaced by other values."""

    def split(self, name, split, seed):
        s = super().split(name, split, seed)
        test = s.test.copy()
        test.data = np.where(test.data > 3, 1.0, 5.0).astype(np.float32)
        return dataclasses.replace(s, test=test)


def test_training_and_model_selection_never_read_the_test_ratings():
    """Changing every test rating changes the test figures and nothing before them: the
    validation curve, the chosen epoch and the training losses are identical."""
    for model in ("sae-20-10-20", "mult-vae", "ease"):
        cfg = RunConfig(model=model, dataset="synthetic", epochs=6, eval_every=1)
        clean, poisoned = run_one(cfg, SplitCache()), run_one(cfg, PoisonedCache())
        assert clean.status == poisoned.status == "ok"
        assert clean.validation == poisoned.validation
        assert [h.get("valid") for h in clean.history] == \
            [h.get("valid") for h in poisoned.history]
        assert [h["train_loss"] for h in clean.history] == \
            [h["train_loss"] for h in poisoned.history]
        assert clean.metrics["ndcg@10"] != poisoned.metrics["ndcg@10"]


def test_mixed_grid_tables_and_plots(tmp_path, capsys):
    """Rating, ranking-only and reference variants over two seeds: every variant shares the
    split and carving of its seed; the rating table holds the rating models, the ranking
    table all of them, references marked; ranking-only models appear in the NDCG-vs-RMSE
    plot."""
    out = tmp_path / "run"
    argv = ["run", "-m", "sae-20-10-20", "autorec-i", "mf", "bias", "popularity", "ease",
            "mult-vae", "cdae", "-d", "synthetic", "--epochs", "4", "--seeds", "2",
            "--out", str(out)]
    assert main(argv) == 0
    recs = records.load(out)
    assert len(recs) == 16 and all(r["status"] == "ok" for r in recs)
    for seed in (0, 1):
        same = [r for r in recs if r["seed"] == seed]
        assert len({r["split"]["fingerprint"] for r in same}) == 1
        assert len({r["validation"]["fingerprint"] for r in same}) == 1
    assert recs[0]["split"]["fingerprint"] != recs[-1]["split"]["fingerprint"]
    text = (out / "tables.md").read_text()
    rating = text.split("## Rating prediction")[1].split("## Ranking")[0]
    ranking = text.split("## Ranking")[1].split("## Costs")[0]
    for model in ("sae-20-10-20", "autorec-i", "mf †", "bias †"):
        assert f"| {model} " in rating and f"| {model} " in ranking
    for model in ("popularity †", "ease", "mult-vae", "cdae"):
        assert f"| {model} " not in rating and f"| {model} " in ranking
    assert "| 2       |" in rating  # seeds
    for name in ("final_rmse.png", "final_ndcg.png", "ndcg_vs_rmse.png", "validation_rmse.png",
                 "validation_ndcg.png", "epoch_seconds.png"):
        assert (out / name).stat().st_size > 0, name
    capsys.readouterr()
    assert main(["compare", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "p Wilcoxon (Holm)" in printed and "| best" in printed
