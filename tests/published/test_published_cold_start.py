"""The cold-start study (results/cold-start): every grid is the plan of its experiment file,
every record is ok, committed and true to its protocol, and the page is its records."""

import numpy as np
import pytest
from aebench.bench.reports import cold_start
from aebench.bench.runs import records

from aebench import models
from tests.published.test_published import RESULTS, committed, dry_run_cells

ROOT = RESULTS / "cold-start"
DEFAULT = ["items", *(f"users-{b}" for b in cold_start.BUDGETS)]
FOLDERS = DEFAULT + [f + cold_start.TUNED for f in DEFAULT]
REGENERATE = "regenerate with `python -m aebench.bench.reports.cold_start`"
# What is not published yet, named rather than skipped (the grids resume where they stopped):
# per folder, the (dataset, seed) pairs some of whose cells have not run.
COLD_OUTSTANDING: dict[str, set[tuple[str, int]]] = {}  # every grid ran all 5 seeds


def _recs(folder):
    path = ROOT / folder / "runs.jsonl"
    if not path.is_file():
        pytest.fail(f"{path} is missing: run results/cold-start/{folder}/experiment.toml")
    return records.read(path)


@pytest.mark.parametrize("folder", FOLDERS)
def test_each_cold_start_grid_is_the_plan_of_its_experiment_file(folder, real_data_dir,
                                                                 capsys):
    planned = dry_run_cells(ROOT / folder / "experiment.toml", real_data_dir, capsys)
    done = {(r.model, r.dataset, r.seed) for r in _recs(folder) if r.ok}
    assert done <= planned
    assert {(d, s) for _, d, s in planned - done} == COLD_OUTSTANDING.get(folder, set()), \
        "update COLD_OUTSTANDING"
    assert {s for _, _, s in planned} == set(range(5))


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_cold_start_record_is_ok_committed_and_true_to_its_protocol(folder):
    recs = _recs(folder)
    for r in recs:
        assert r.ok, r.error
        assert committed(r)
        assert r.validation.fraction is None  # the protocol's own validation part
        cfg = models.config(r.model)
        if folder.startswith("items"):
            assert r.split_name == "cold-items" and "item" in cfg.features
            # every test rating is of a film no training rating has, and the ranked films
            # are those test films: about 5% of the films
            assert r.metrics["n_test_cold_item"] == r.split.n_test
            assert 0.04 * r.split.n_items <= r.metrics["n_candidates"] <= 0.06 * r.split.n_items
        else:
            assert r.split_name == f"cold-{folder.removesuffix(cold_start.TUNED)}"
            assert cfg.inductive
            assert r.split.n_fit_users < 0.85 * r.split.n_users
        assert np.isfinite(r.metrics["ndcg@10"])
        assert ("rmse" in r.metrics) == r.rates
        if folder.endswith(cold_start.TUNED) and r.model != "popularity":
            # the recipe its study chose on the protocol's validation part (cold users: the
            # validation users given 5 ratings)
            assert r.recipe.name == "tuned"
            assert r.recipe.study == f"{r.model}@{r.dataset}/" + (
                "cold-items" if folder.startswith("items") else "cold-users-5")
        else:
            assert r.recipe.name == "default"
    for d, s in {(r.dataset, r.seed) for r in recs}:  # one split per seed and dataset
        assert len({r.split.fingerprint for r in recs if (r.dataset, r.seed) == (d, s)}) == 1


def test_every_budget_scores_the_same_ratings():
    by = {}
    for b in cold_start.BUDGETS:
        for r in _recs(f"users-{b}") + _recs(f"users-{b}{cold_start.TUNED}"):
            by.setdefault((r.dataset, r.seed), {})[b] = (r.split.n_test, r.split.n_train,
                                                         r.split.fingerprint)
    for key, budgets in by.items():
        assert len({n_test for n_test, _, _ in budgets.values()}) == 1, key
        assert len({fp for _, _, fp in budgets.values()}) == len(budgets), key
        trains = [budgets[b][1] for b in sorted(budgets)]
        assert trains == sorted(trains) and len(set(trains)) == len(trains), key


def test_the_cold_start_page_is_its_records():
    page = (ROOT / "README.md").read_text(encoding="utf-8")
    assert page == cold_start.markdown(ROOT, RESULTS / "published"), REGENERATE
    assert (ROOT / "cold_users.png").is_file() and (ROOT / "cold_users_tuned.png").is_file()
    assert "not run yet" not in page
