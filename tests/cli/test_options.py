"""Bad options get a clear error before any work (exit status 2, the option and its valid
values named), through the CLI; a dataset that cannot be had stops a grid once."""

import dataclasses

import pytest
import torch
from aebench.bench.cli import main
from aebench.bench.runs import records

from aebench import datasets


def refused(argv, capsys) -> str:
    """Run the CLI, expect argparse's exit status 2, return what it printed."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2, exc.value.code
    return capsys.readouterr().err


RUN = ["run", "-m", "sae-20-10-20", "-d", "ml-100k"]


@pytest.mark.parametrize("extra, option, valid", [
    (["--epochs", "-3"], "argument --epochs", "integer >= 1"),
    (["--epochs", "two"], "argument --epochs", "integer >= 1"),
    (["--batch-size", "0"], "argument --batch-size", "integer >= 1"),
    (["--seeds", "0"], "argument --seeds", "integer >= 1"),
    (["--seed", "-1"], "argument --seed", "integer >= 0"),
    (["--lr", "nan"], "argument --lr", "finite number in (0, inf)"),
    (["--lr", "0"], "argument --lr", "finite number in (0, inf)"),
    (["--lr", "inf"], "argument --lr", "finite number in (0, inf)"),
    (["--weight-decay", "-0.1"], "argument --weight-decay", "finite number in [0, inf)"),
    (["--valid-fraction", "1"], "argument --valid-fraction", "finite number in [0, 1)"),
    (["--relevance", "6"], "argument --relevance", "finite number in [1, 5]"),
    (["--patience", "0"], "argument --patience", "integer >= 1"),
    (["--ks", "10", "0"], "argument --ks", "integer >= 1"),
    (["--split", "u9"], "argument --split", "unknown split 'u9'; choose from u1, u2"),
    (["--devices", "tpu"], "argument --devices", "choose from cpu, cuda"),
    (["--mode", "sgd"], "argument --mode", "choose from batched, per-user"),
    (["--resume"], "argument --resume", "--out DIR"),
])
def test_run_options_are_checked_before_any_work(extra, option, valid, capsys, tmp_path):
    # --data-dir points nowhere: a check that loaded data first would fail differently
    err = refused(RUN + extra + ["--data-dir", str(tmp_path / "nowhere")], capsys)
    assert option in err and valid.replace("'", "") in err.replace("'", ""), err


def test_split_must_suit_every_dataset_named(capsys):
    err = refused(["run", "-m", "sae-20-10-20", "-d", "ml-100k", "ml-1m", "--split", "u1"],
                  capsys)
    assert "argument --split" in err and "ml-1m has none" in err and "random-90-10" in err


def test_every_model_pattern_must_match(capsys):
    err = refused(["run", "-m", "sae-20-10-20", "-m", "nope*", "-d", "synthetic"], capsys)
    assert "argument -m/--models: 'nope*' matches no registered model" in err
    assert "sae-20-10-20" in err  # the registered names are listed


def test_unknown_dataset_is_named(capsys):
    err = refused(["run", "-m", "sae-20-10-20", "-d", "ml-5m"], capsys)
    assert "argument -d/--datasets: unknown dataset 'ml-5m'" in err
    assert "ml-100k" in err and "ml-25m" in err


def test_per_user_mode_names_the_variants_that_have_it(capsys):
    err = refused(["run", "-m", "ease", "sae-20-10-20", "-d", "synthetic", "--mode",
                   "per-user"], capsys)
    assert "argument --mode: ease have no per-user recipe" in err and "sae-dropout" in err


def test_models_option_is_required_without_all(capsys):
    assert "give -m/--models" in refused(["run", "-d", "synthetic"], capsys)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("argv", [["run", "-m", "ease", "-d", "synthetic", "--devices", "cuda"],
                                  ["speed", "-m", "ease", "-d", "synthetic", "--device", "cuda"]])
def test_cuda_without_a_gpu_is_named(argv, capsys):
    err = refused(argv, capsys)
    assert "cuda: no CUDA device is available" in err and "available: cpu" in err


@pytest.mark.parametrize("argv, option", [
    (["speed", "--repeats", "0"], "argument --repeats"),
    (["speed", "-m", "nope"], "argument -m/--models"),
    (["speed", "-d", "ml-1m", "--split", "u2"], "argument --split"),
    (["perf-check", "--slice-users", "0"], "argument --slice-users"),
    (["perf-check", "--repeats", "-1"], "argument --repeats"),
    (["recommend", "--model", "nope", "--dataset", "ml-1m", "--user", "1"],
     "argument --model"),
    (["recommend", "--model", "ease", "--dataset", "ml-1m", "--user", "1", "-k", "0"],
     "argument -k"),
    (["recommend", "--model", "ease", "--dataset", "ml-2m", "--user", "1"],
     "argument --dataset"),
    (["report", "/nonexistent-run-folder"], "argument dir"),
])
def test_other_commands_check_their_options(argv, option, capsys):
    assert option in refused(argv, capsys)


def test_repeated_model_and_dataset_options_accumulate(tmp_path):
    out = tmp_path / "run"
    assert main(["run", "-m", "ease", "-m", "popularity", "-d", "synthetic", "-d",
                 "synthetic-40x30", "--out", str(out)]) == 0
    cells = {(r["model"], r["dataset"]) for r in records.load(out)}
    assert cells == {(m, d) for m in ("ease", "popularity")
                     for d in ("synthetic", "synthetic-40x30")}


def test_missing_dataset_fails_once_per_grid_and_says_where_to_put_it(
        tmp_path, http_server, monkeypatch, capsys):
    """No data dir, an empty cache and a download that fails (a real HTTP server on
    127.0.0.1 that has no such file): one request, one message, no run started."""
    root, base = http_server
    hits = []

    monkeypatch.delenv("BENCH_DATA_DIR", raising=False)
    spec = dataclasses.replace(datasets.SPECS["ml-1m"], url=f"{base}/ml-1m.zip")
    monkeypatch.setitem(datasets.SPECS, "ml-1m", spec)
    real = datasets.fetch.download_archive

    def counting(url, *a, **kw):
        hits.append(url)
        return real(url, *a, **kw)

    monkeypatch.setattr(datasets.fetch, "download_archive", counting)
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exc:
        main(["run", "-m", "sae-20-10-20", "sae-dropout", "ease", "-d", "ml-1m", "--seeds", "2",
              "--out", str(out)])
    assert exc.value.code == 2  # an input error, like a bad option
    message = capsys.readouterr().err
    assert hits == [f"{base}/ml-1m.zip"]
    assert "HTTP Error 404" in message
    for hint in ("--data-dir", "BENCH_DATA_DIR", "BENCH_CACHE_DIR", spec.md5, "ml-1m.zip"):
        assert hint in message, hint
    assert not (out / "runs.jsonl").exists()
