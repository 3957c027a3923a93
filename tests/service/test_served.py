"""A run folder is served only when every weights file is there and agrees with its record;
otherwise `serve` refuses to start, naming the file."""

from __future__ import annotations

import json

import pytest
import torch
from aebench.bench.cli import main
from aebench.bench.runs.runner import SplitCache
from aebench.bench.service.served import ServeError, load_run


@pytest.fixture
def tiny_run(tmp_path, fixture_dir, trained):
    out = tmp_path / "run"
    trained(out, fixture_dir, "ml-1m", ["ease", "mf"])
    return out, fixture_dir


def weights(run, model: str):
    (path,) = (run / "weights").glob(f"{model}__*.pt")
    return path


def serve(run, data_dir, *extra) -> str:
    with pytest.raises(SystemExit) as exc:
        main(["serve", str(run), "--data-dir", str(data_dir), "--port", "0", *extra])
    return str(exc.value.code)


def test_a_run_loads_every_model_on_one_split(tiny_run):
    run, data = tiny_run
    cat = load_run(run, SplitCache(str(data)))
    assert list(cat.models) == ["ease", "mf"] and cat.split.dataset == "ml-1m"
    assert cat.models["ease"].folds_in and not cat.models["mf"].folds_in
    assert list(load_run(run, SplitCache(str(data)), names=["mf"]).models) == ["mf"]


def test_missing_weights_refuse_to_start_naming_the_file(tiny_run):
    run, data = tiny_run
    path = weights(run, "mf")
    path.unlink()
    assert serve(run, data) == f"aebench: {path}: missing; mf's record names it (its weights " \
                               "are not in the folder: rerun the cell)"


def test_weights_of_another_split_refuse_to_start_naming_the_file(tiny_run):
    run, data = tiny_run
    path = weights(run, "ease")
    ckpt = torch.load(path, weights_only=False)
    ckpt["split"]["fingerprint"] = "0" * 64
    torch.save(ckpt, path)
    message = serve(run, data)
    assert str(path) in message and "fingerprint" in message


def test_weights_of_another_model_refuse_to_start_naming_the_file(tiny_run):
    run, data = tiny_run
    ease, mf = weights(run, "ease"), weights(run, "mf")
    ease.write_bytes(mf.read_bytes())
    message = serve(run, data)
    assert message.startswith(f"aebench: {ease}") and "'mf'" in message


def test_a_torn_weights_file_refuses_to_start_naming_it(tiny_run):
    run, data = tiny_run
    path = weights(run, "ease")
    path.write_bytes(path.read_bytes()[:100])
    assert serve(run, data).startswith(f"aebench: {path}: ")


def test_a_folder_that_is_not_a_run_and_unknown_names_are_refused(tiny_run, tmp_path):
    run, data = tiny_run
    assert "runs.jsonl: not found" in serve(tmp_path / "nowhere", data)
    message = serve(run, data, "--models", "ease", "vae")
    assert "no trained 'vae' on ml-1m; it has ease, mf" in message
    assert "no cell on dataset 'ml-100k'" in serve(run, data, "--dataset", "ml-100k")
    assert "share no split and seed 3" in serve(run, data, "--seed", "3")


def test_a_run_over_two_datasets_asks_which(tiny_run, trained):
    run, data = tiny_run
    trained(run, data, "ml-100k", ["ease"])
    assert "cells on ml-100k, ml-1m; choose one with --dataset" in serve(run, data)
    cat = load_run(run, SplitCache(str(data)), dataset="ml-100k")
    assert list(cat.models) == ["ease"] and cat.split.dataset == "ml-100k"


def test_only_finished_cells_with_weights_are_candidates(tiny_run):
    run, data = tiny_run
    lines = (run / "runs.jsonl").read_text().splitlines()
    failed = json.loads(lines[0]) | {"status": "failed", "error": "boom", "model": "vae"}
    failed.pop("weights", None)
    (run / "runs.jsonl").write_text("\n".join([*lines, json.dumps(failed)]) + "\n")
    assert list(load_run(run, SplitCache(str(data))).models) == ["ease", "mf"]
    with pytest.raises(ServeError, match="no trained 'vae'"):
        load_run(run, SplitCache(str(data)), names=["vae"])
