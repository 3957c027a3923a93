"""The published tables are real: README's headline equals what the records in
results/published/ say, and every published cell finished with finite metrics."""

import math

import pytest

from bench import records, report
from tests.conftest import ROOT

PUBLISHED = ROOT / "results" / "published"


@pytest.fixture(scope="module")
def published():
    path = PUBLISHED / "runs.jsonl"
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `python -m bench run --all --out results/published`")
    return records.load(path)


REGENERATE = "regenerate with `python -m bench report results/published --readme README.md`"


def test_readme_headline_matches_published_records(published):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    want = report.headline(report.frame(published))
    assert report.block(text, report.START, report.END) == want.strip(), REGENERATE


def test_readme_reference_table_matches_records(published):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    per_user = records.load(ROOT / "results" / "reference-per-user")
    want = report.reference(per_user, published)
    assert report.block(text, report.REF_START, report.REF_END) == want.strip(), REGENERATE


def test_readme_modes_table_matches_records(published):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    per_user = records.load(ROOT / "results" / "reference-per-user")
    want = report.modes(per_user, published)
    assert len(want.splitlines()) == 2 + 8, "every variant x (u1, ml-1m) in both modes"
    assert report.block(text, report.MODES_START, report.MODES_END) == want.strip(), REGENERATE


def test_every_published_cell_is_ok_and_finite(published):
    assert published, "no published records"
    for r in published:
        assert r["status"] == "ok", r.get("error")
        for key in ("rmse", "mae", "legacy_loss", "ndcg@10"):
            assert math.isfinite(r["metrics"][key]), (r["model"], r["dataset"], key)
        assert r["env"]["git_commit"], "records must name the commit they came from"


def test_published_covers_the_full_grid(published):
    import models

    cells = {(r["model"], r["dataset"]) for r in published if r["device"] == "cpu"}
    assert cells >= {(m, d) for m in models.list() for d in ("ml-100k", "ml-1m")}


def test_published_outputs_exist():
    for name in ("tables.md", "tables.csv", "environment.md", "rmse_by_epoch.png",
                 "final_rmse.png", "epoch_seconds.png", "ndcg_vs_rmse.png"):
        assert (PUBLISHED / name).is_file(), name
