"""budget.md's arithmetic on hand-built records: parts, medians over seeds, refits, totals."""

from aebench.bench.reports import budget

from tests.conftest import record


def rec(model, seed, fit, valid, evals, cell, reads=3, refit=None, dataset="ml-100k"):
    timings = {"fit_s": fit, "eval_s": evals, "epoch_s_median": fit}
    if cell is not None:
        timings.update(valid_s=valid, valid_reads=reads, setup_s=0.5, cell_s=cell)
    return record(model=model, dataset=dataset, seed=seed, split={"name": "u1"},
                  timings=timings, run_config={"refit": refit is not None},
                  env={"torch_threads": 1}, refit=refit or None)


def test_parts_add_up_to_the_cell_and_old_records_are_lower_bounds():
    new = budget.cell_parts(rec("a", 0, fit=10.0, valid=2.0, evals=1.0, cell=14.5))
    assert (new["other_s"], new["cell_s"], new["exact"]) == (1.5, 14.5, True)
    old = budget.cell_parts(rec("a", 0, fit=10.0, valid=None, evals=1.0, cell=None))
    assert (old["other_s"], old["valid_s"], old["cell_s"], old["exact"]) == (None, None, 11.0,
                                                                             False)


def test_a_refit_counts_the_selection_it_trained_but_not_one_it_reused():
    trained_here = {"epochs": 4, "fit_s": 10.0, "selection_fit_s": 6.0, "selected_in": None,
                    "n_train": 100}
    reused = {**trained_here, "selected_in": "results/published (2026-11-30)"}
    assert budget.cell_parts(rec("a", 0, 10.0, 1.0, 1.0, 20.0, refit=trained_here))["fit_s"] \
        == 16.0
    assert budget.cell_parts(rec("a", 0, 10.0, 0.0, 1.0, 12.0, refit=reused))["fit_s"] == 10.0


def test_one_seed_of_each_cell_is_the_median_over_seeds_and_totals_sum_every_cell():
    recs = [rec("a", 0, 10.0, 1.0, 1.0, 13.0), rec("a", 1, 30.0, 1.0, 1.0, 33.0),
            rec("a", 2, 20.0, 1.0, 1.0, 23.0), rec("b", 0, 1.0, 0.0, 1.0, None),
            record(model="c", status="failed", split=None)]
    rows = budget.breakdown(recs)
    assert [(r["model"], r["seed"]) for r in rows] == [("a", 1), ("a", 2), ("a", 0), ("b", 0)]
    (a, b) = budget.per_variant(rows)
    assert (a["model"], a["seeds"], a["cell_s"], a["fit_s"], a["exact"]) == ("a", 3, 23.0,
                                                                             20.0, True)
    assert (b["cell_s"], b["exact"]) == (2.0, False)
    grids = [{"startup_s": 2.0, "cells_s": 60.0, "report_s": 3.0}, {"startup_s": 1.0}]
    total = budget.totals(rows, grids)
    assert (total["cells_s"], total["fit_s"], total["valid_s"], total["other_s"]) == (
        71.0, 61.0, 3.0, 3.0)
    assert (total["startup_s"], total["report_s"], total["wall_s"]) == (3.0, 3.0, 66.0)
    md = budget.markdown(recs, grids)
    assert "One seed of each of these 2 cells: 0.4 min (at least" in md
    assert "≥ 2.0" in md and "over 2 `run` invocations" in md
