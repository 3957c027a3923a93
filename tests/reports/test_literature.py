"""The reproduction table: published figures matched to records of the same cell (model,
dataset, split, refit) and set beside their mean over seeds."""

from aebench.bench.cli import main
from aebench.bench.reports import literature

from tests.conftest import record as make


def record(model, seed, value, split="random-90-10", refit=True, metric="rmse",
           dataset="ml-1m", recipe="default"):
    return make(model=model, dataset=dataset, seed=seed, split={"name": split},
                run_config={"refit": refit}, recipe={"name": recipe},
                metrics={metric: value})


def rows(md):
    return [[c.strip() for c in line.strip("|").split("|")] for line in md.splitlines()[2:]]


def test_a_figure_meets_only_records_of_its_own_cell():
    recs = [record("autorec-i", 0, 0.830), record("autorec-i", 1, 0.834),
            record("autorec-i", 2, 0.700, refit=False),          # not refitted: another cell
            record("autorec-i", 3, 0.700, split="random-75-25"),  # another protocol
            record("autorec-i", 1, 0.840)]                        # seed 1 again: the last wins
    row = next(r for r in rows(literature.table(recs))
               if r[0] == "autorec-i" and r[3] == "rmse")
    # mean of 0.830 and 0.840: 0.835, std 0.0071; 0.835 - 0.831 = +0.0040 <= 0.005
    assert row[7] == "0.8350 ± 0.0071 (n=2)" and row[8] == "default"
    assert row[9] == "+0.0040" and row[10] == "yes"


def test_outside_the_tolerance_and_not_run_yet():
    recs = [record("ease", s, 0.2700, split="filtered-80-10-10", refit=False,
                   metric="ndcg@10") for s in range(3)]
    table = rows(literature.table(recs))
    ease = next(r for r in table if r[0] == "ease" and r[3] == "ndcg@10")
    assert ease[9] == "-0.0165" and ease[10] == "no"  # 0.2700 - 0.2865
    slim = next(r for r in table if r[0] == "slim" and r[3] == "ndcg@10")
    assert slim[7] == "—" and slim[10] == "not run yet"


def test_recbole_on_the_same_split_sits_beside_its_figure():
    split = {"dataset": "ml-1m", "name": "filtered-80-10-10"}
    checks = {"pop, defaults": {
        "0": {"variant": "popularity", "split": split, "recbole_test": {"ndcg@10": 0.11}},
        "1": {"variant": "popularity", "split": split, "recbole_test": {"ndcg@10": 0.12}}},
        "elsewhere": {"0": {"variant": "popularity", "split": {**split, "name": "u1"},
                            "recbole_test": {"ndcg@10": 0.5}}}}
    table = rows(literature.table([], checks))
    pop = next(r for r in table if r[0] == "popularity" and r[3] == "ndcg@10")
    assert pop[-1] == "pop, defaults: 0.1150 (n=2)"  # the u1 check is another cell
    recall = next(r for r in table if r[0] == "popularity" and r[3] == "recall@10")
    assert recall[-1] == "" and pop[10] == "not run yet"


def test_every_check_sits_beside_aebench_on_the_seeds_both_ran():
    """The checks' own table: a check on a protocol no published figure uses still shows,
    and RecBole - aebench is the mean of the per-seed gaps where both ran (0.30 - 0.28 and
    0.26 - 0.27: +0.0050); a check aebench has no record for reads "—"."""
    split = {"dataset": "ml-1m", "name": "diffrec-temporal"}
    checks = {"diffrec, recipe": {
        "0": {"variant": "diffrec", "split": split, "recbole_test": {"ndcg@10": 0.30},
              "recbole_fit_s": 40.0},
        "1": {"variant": "diffrec", "split": split, "recbole_test": {"ndcg@10": 0.26},
              "recbole_fit_s": 60.0},
        "2": {"variant": "diffrec", "split": split, "recbole_test": {"ndcg@10": 0.31},
              "recbole_fit_s": 50.0}},
        "ease": {"0": {"variant": "ease", "split": split, "recbole_test": {"ndcg@10": 0.2},
                       "recbole_fit_s": 1.0}}}
    recs = [record("diffrec", 0, 0.28, split="diffrec-temporal", refit=False, metric="ndcg@10"),
            record("diffrec", 1, 0.27, split="diffrec-temporal", refit=False, metric="ndcg@10"),
            record("diffrec", 1, 0.99, split="diffrec-temporal", refit=False, metric="ndcg@10",
                   recipe="tuned"),  # another recipe: not the check's
            record("diffrec", 3, 0.5, split="random-90-10", refit=False, metric="ndcg@10")]
    table = {r[0]: r for r in rows(literature.checks_table(recs, checks))}
    assert table["diffrec, recipe"][3:] == ["diffrec-temporal", "0.2900 (n=3)", "0.2750 (n=2)",
                                            "+0.0050", "50"]
    assert table["ease"][5:7] == ["—", "—"]


def test_every_figure_names_a_registered_variant_a_protocol_and_its_selection():
    from aebench import datasets, models

    for f in literature.FIGURES:
        assert f.model in models.list() and f.split in datasets.PROTOCOLS
        # on validation, on test, or "not stated" where the publisher does not say
        assert f.selected_on.split()[0] in {"validation", "test", "not"}


def test_report_writes_the_table_and_the_readme_block(tmp_path):
    out = tmp_path / "run"
    assert main(["run", "-m", "popularity", "-d", "synthetic", "--out", str(out)]) == 0
    readme = tmp_path / "README.md"
    readme.write_text(f"x\n{literature.START}\nold\n{literature.END}\ny\n")
    assert main(["report", str(out), "--reproduction", "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "old" not in text and "| sparse-fc" in text and text.endswith("y\n")
    assert (out / "reproduction.md").read_text().count("not run yet") == len(
        literature.FIGURES)
