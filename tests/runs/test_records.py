"""The typed record: every layout written so far reads, older records get their defaults in
one place, a record written now reads back equal, and a line that is not a record is refused
naming the file, line and field."""

import dataclasses
import json

import pytest
from aebench.bench.runs import records
from aebench.bench.runs.records import SCHEMA, Record
from aebench.bench.runs.runner import RunConfig, SplitCache, run_one

from tests.conftest import ROOT


def test_every_published_record_reads_and_writes_back_unchanged():
    files = sorted((ROOT / "results").glob("**/runs.jsonl"))
    assert files
    for path in files:
        for r in records.read(path):
            assert r.folder == path.parent
            again = Record.from_json(json.loads(json.dumps(r.to_json())))
            assert again == r and again.to_json() == r.to_json(), (path, r.model)


def test_a_record_written_now_is_its_json_line(tmp_path):
    written = run_one(RunConfig(model="ease", dataset="synthetic"), SplitCache(), tmp_path)
    (line,) = records.load(tmp_path)
    assert line == written.to_json() and line["schema"] == SCHEMA
    (read,) = records.read(tmp_path)
    assert read == written and read.folder == tmp_path
    assert read.split.n_users > 0 and read.timings.cell_s > 0 and read.validation.best_epoch == 1
    assert read.per_user_path() == tmp_path / read.per_user


def test_the_defaults_of_older_records_are_applied_once():
    old = {"model": "popularity", "dataset": "ml-1m", "device": "cpu", "seed": 3, "mode": "batched",
           "status": "ok", "started": "2026-11-01T00:00:00Z",
           "run_config": {"split": "random-90-10"}, "metrics": {"ndcg@10": 0.3}}
    r = Record.from_json(old)
    assert r.schema == 1  # read as written; written again as the current layout
    assert (r.recipe.name, r.recipe.overrides, r.refitted) == ("default", {}, False)
    assert (r.precision.loss, r.precision.score, r.cell_precision) == ("fp32",) * 3
    assert (r.kind, r.rates, r.label, r.split_name) == ("reference", False, "default",
                                                        "random-90-10")
    rating = Record.from_json({**old, "model": "autorec-i", "metrics": {"rmse": 0.9}})
    assert (rating.kind, rating.rates) == ("autoencoder", True)
    low = Record.from_json({**old, "run_config": {"precision": "bf16", "refit": True}})
    assert low.label == "default+refit@bf16"


@pytest.mark.parametrize("change, message", [
    (lambda d: {**d, "metricz": {}}, "unknown field 'metricz'"),
    (lambda d: {**d, "timings": {**d["timings"], "fit_seconds": 1.0}},
     "unknown field timings.'fit_seconds'"),
    (lambda d: {k: v for k, v in d.items() if k != "seed"}, "missing field 'seed'"),
    (lambda d: {**d, "split": {"name": "u1"}}, "missing field split.'dataset'"),
    (lambda d: {**d, "schema": SCHEMA + 1}, "written by a newer aebench"),
])
def test_a_line_that_is_not_a_record_names_its_file_line_and_field(tmp_path, change, message):
    good = run_one(RunConfig(model="popularity", dataset="synthetic"), SplitCache()).to_json()
    path = tmp_path / "runs.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(change(good)) + "\n")
    with pytest.raises(ValueError, match=f"{path}:2: .*{message}".replace("(", r"\(")):
        records.read(path)


def test_a_record_is_frozen():
    r = run_one(RunConfig(model="popularity", dataset="synthetic"), SplitCache())
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.status = "failed"
