"""`run --refit`: the epochs are selected on the validation carving, then the variant is
trained again, same seed, on all the training ratings for exactly that many epochs, and only
that model meets the test set."""

import numpy as np
import pytest
import torch
from aebench.bench.cli import main
from aebench.bench.runs import records
from aebench.bench.runs.runner import RunConfig, SplitCache, execute, train_cell

from aebench import models


def test_refit_trains_on_all_training_ratings_for_the_selected_epochs(tmp_path):
    out = tmp_path / "run"
    argv = ["run", "-m", "mf", "ease", "-d", "synthetic", "--epochs", "30", "--eval-every",
            "3", "--out", str(out)]
    assert main(argv + ["--refit"]) == 0
    assert main(argv + ["--resume"]) == 0  # the same cells unrefitted are other cells
    recs = {(r["model"], bool(r.get("refit"))): r for r in records.load(out)}
    assert len(recs) == 4 and all(r["status"] == "ok" for r in recs.values())
    mf = recs["mf", True]
    n_train = mf["split"]["n_train"]
    assert mf["refit"]["n_train"] == n_train > mf["validation"]["n_valid"]
    # the selection fit read validation; the refit ran its best epoch count, reading none
    assert mf["refit"]["epochs"] == mf["validation"]["best_epoch"]
    assert len(mf["history"]) == mf["refit"]["epochs"]
    assert not any("valid" in h for h in mf["history"])
    assert recs["ease", True]["refit"]["epochs"] == 1
    assert recs["mf", True]["metrics"] != recs["mf", False]["metrics"]
    tables = (out / "tables.md").read_text()
    assert "default recipes, refitted on all training ratings" in tables
    # --epochs makes mf's recipe custom, which its weights' names say too
    assert {p.name for p in (out / "weights").iterdir()} >= {
        f"mf__synthetic__random-90-10__batched__cpu__s0{tag}.pt"
        for tag in ("__custom", "__custom__refit")}


def test_a_closed_form_refit_is_the_fit_on_the_whole_training_matrix():
    cache = SplitCache()
    cfg = RunConfig(model="ease", dataset="synthetic", refit=True)
    record, artifacts = execute(cfg, cache)
    assert record.ok, record.error
    split = cache.split("synthetic", cfg.split_name, 0)
    direct = train_cell(RunConfig(model="ease", dataset="synthetic", valid_fraction=0.0),
                        split.without_test())
    want = {k: v.cpu() for k, v in direct.model.state_dict().items()}
    assert want.keys() == artifacts["state_dict"].keys()
    for k, v in want.items():
        torch.testing.assert_close(artifacts["state_dict"][k], v)


def test_a_staged_refit_runs_every_stage_for_the_selected_rounds():
    # GLocal-K's pre-training and fine-tuning: the refit replays the stages up to the round
    # validation chose (which lies in the last stage: early stopping waits for it)
    cache = SplitCache()
    over = (("hidden", (8, 8)), ("pretrain_rounds", 2), ("pretrain_iterations", 2),
            ("finetune_rounds", 3), ("finetune_iterations", 2), ("batched.epochs", 5))
    cfg = RunConfig(model="glocal-k", dataset="synthetic", refit=True, overrides=over,
                    recipe="custom", eval_every=1)
    seen = []
    model_cls = type(models.create("glocal-k", 4, 4, hidden=(8, 8))[0])
    start = model_cls.start_stage
    model_cls.start_stage = lambda self, name: (seen.append(name), start(self, name))
    try:
        record, _ = execute(cfg, cache)
    finally:
        model_cls.start_stage = start
    assert record.ok, record.error
    best = record.validation.best_epoch
    assert record.refit.epochs == best and len(record.history) == best
    refit_stages = seen[2:]  # the selection fit announced both stages first
    assert refit_stages == (["pretrain", "finetune"] if best > 2 else ["pretrain"])
    assert np.isfinite(record.metrics["rmse"])
    # the record totals the refit's L-BFGS work: at most 2 iterations a round
    t = record.timings
    assert t.lbfgs_iterations == sum(h["lbfgs_iterations"] for h in record.history)
    assert best <= t.lbfgs_iterations <= 2 * best <= 2 * t.lbfgs_evaluations


@pytest.mark.parametrize("extra, message", [
    (["-m", "mf", "--valid-fraction", "0"], "argument --refit: it selects the epochs on the"),
    (["--mode", "per-user", "-m", "sae-20-10-20"], "per-user mode carves no validation"),
])
def test_refit_without_a_validation_carving_is_refused(extra, message, capsys):
    argv = ["run", "-d", "synthetic", "--refit", *extra]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_a_refit_can_take_its_selection_from_an_earlier_run(tmp_path):
    # the selection of an earlier unrefitted run of the same cells is the one a new
    # selection fit would make: the refit from it equals the refit that selects again
    argv = ["run", "-m", "mf", "ease", "-d", "synthetic", "--epochs", "30", "--eval-every",
            "3"]
    plain, again, reused = tmp_path / "plain", tmp_path / "again", tmp_path / "reused"
    assert main(argv + ["--out", str(plain)]) == 0
    assert main(argv + ["--refit", "--out", str(again)]) == 0
    assert main(argv + ["--refit", "--refit-from", str(plain), "--out", str(reused)]) == 0
    earlier = {r["model"]: r for r in records.load(plain)}
    selecting = {r["model"]: r for r in records.load(again)}
    for r in records.load(reused):
        m = r["model"]
        assert r["refit"]["selected_in"].startswith(str(plain))
        assert r["validation"] == earlier[m]["validation"] == selecting[m]["validation"]
        assert r["refit"]["epochs"] == selecting[m]["refit"]["epochs"]
        assert r["metrics"] == selecting[m]["metrics"]
    # another config (here: fewer epochs) is another selection: fitted again, not reused
    assert main(["run", "-m", "mf", "-d", "synthetic", "--epochs", "12", "--refit",
                 "--refit-from", str(plain), "--out", str(tmp_path / "other")]) == 0
    assert records.load(tmp_path / "other")[0]["refit"]["selected_in"] is None


def test_refit_from_needs_refit_and_a_run_folder(tmp_path, capsys):
    for extra, message in ((["--refit-from", str(tmp_path)], "add --refit"),
                           (["--refit", "--refit-from", str(tmp_path)], "holds no runs.jsonl")):
        with pytest.raises(SystemExit):
            main(["run", "-m", "mf", "-d", "synthetic", *extra])
        assert message in capsys.readouterr().err


def test_a_record_older_than_a_config_field_matches_at_that_fields_default():
    """Records written before `low_precision` existed lack it: they are the same selection
    where the variant keeps the field's default, and not where it differs; a reworded note
    changes no selection."""
    import dataclasses

    from aebench.bench.runs import records as recs
    from aebench.bench.runs.runner import same_config

    from aebench import models

    cfg = models.config("glocal-k", "ml-100k")
    old = recs._clean(dataclasses.asdict(cfg))
    assert same_config(old, cfg)
    del old["low_precision"]
    assert same_config(old, cfg)
    assert not same_config(old, dataclasses.replace(cfg, low_precision=()))
    assert not same_config({**old, "lambda_2": 21.0}, cfg)
    assert not same_config(None, cfg)
    # the note is prose: a record whose note was reworded since is the same selection
    assert same_config({**old, "note": "an earlier wording"}, cfg)
    assert same_config({k: v for k, v in old.items() if k != "note"}, cfg)
