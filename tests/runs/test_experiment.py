"""Experiment files (`--config FILE.toml`): keys are the options' long names, the command
line overrides them, model tables carry overrides, dataset tables define users' files, every
error names file, line and key before any work, and `--dry-run` trains nothing."""

import textwrap

import pytest
from aebench.bench.cli import main
from aebench.bench.engines import train
from aebench.bench.runs import records

from aebench import datasets
from tests.datasets.test_user_data import ratings_csv


@pytest.fixture(autouse=True)
def no_leftover_files(monkeypatch):
    monkeypatch.setattr(datasets.dataset, "FILES", {})


def write(tmp_path, text, name="exp.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_a_file_runs_the_grid_its_command_line_would(tmp_path):
    out_file, out_cli = tmp_path / "from-file", tmp_path / "from-cli"
    exp = write(tmp_path, f"""
        models = ["ease", "mf"]
        datasets = ["synthetic"]
        seeds = 2
        epochs = 3
        out = "{out_file}"
    """)
    assert main(["run", "--config", str(exp)]) == 0
    assert main(["run", "-m", "ease", "mf", "-d", "synthetic", "--seeds", "2", "--epochs", "3",
                 "--out", str(out_cli)]) == 0
    got = {(r["model"], r["seed"]): r["metrics"] for r in records.load(out_file)}
    assert got == {(r["model"], r["seed"]): r["metrics"] for r in records.load(out_cli)}


def test_the_command_line_overrides_the_file(tmp_path):
    out = tmp_path / "run"
    exp = write(tmp_path, f"""
        models = ["ease", "mf"]
        datasets = ["synthetic"]
        seeds = 3
        out = "{tmp_path / 'elsewhere'}"
    """)
    assert main(["run", "--config", str(exp), "-m", "ease", "--seeds", "1",
                 "--out", str(out)]) == 0
    assert [(r["model"], r["seed"]) for r in records.load(out)] == [("ease", 0)]
    assert not (tmp_path / "elsewhere").exists()


def test_model_tables_override_the_config_and_are_marked(tmp_path):
    out = tmp_path / "run"
    exp = write(tmp_path, f"""
        models = ["ease", {{name = "mf", dim = 4, "batched.epochs" = 2}}]
        datasets = ["synthetic"]
        out = "{out}"
    """)
    assert main(["run", "--config", str(exp)]) == 0
    recs = {r["model"]: r for r in records.load(out)}
    assert recs["mf"]["recipe"] == {"name": "custom", "study": None,
                                    "overrides": {"batched.epochs": 2, "dim": 4}}
    assert recs["mf"]["config"]["dim"] == 4 and recs["mf"]["epochs"] == 2
    tables = (out / "tables.md").read_text()
    assert "| mf † *" in tables and "* mf: batched.epochs=2, dim=4" in tables


def test_a_dataset_table_defines_a_users_file(tmp_path):
    ratings_csv(tmp_path / "shop.csv", header="customer;product;stars;ts")
    (tmp_path / "shop.csv").write_text((tmp_path / "shop.csv").read_text().replace(",", ";"))
    out = tmp_path / "run"
    exp = write(tmp_path, f"""
        models = ["ease"]
        datasets = ["shop"]
        out = "{out}"

        [dataset.shop]
        path = "shop.csv"
        delimiter = ";"
        user = "customer"
        item = "product"
        rating = "stars"
        timestamp = "ts"
        scale = [1, 5]
    """)
    assert main(["run", "--config", str(exp), "--split", "temporal-80-20"]) == 0
    (rec,) = records.load(out)
    assert rec["status"] == "ok" and rec["dataset"] == "shop"
    assert rec["split"]["name"] == "temporal-80-20"
    assert rec["run_config"]["dataset_file"]["path"] == str(tmp_path / "shop.csv")


@pytest.mark.parametrize("body, message", [
    ("models = ['ease']\nepohcs = 3\n", ":2: epohcs: unknown key; valid: "),
    ("models = ['ease']\n\nepochs = 'ten'\n", ":3: epochs: 'ten' is not an integer"),
    ("epochs = 0\nmodels = ['ease']\n", ":1: epochs: 0 is out of range (give an integer >= 1)"),
    ("models = ['ease']\nexecutor = 'dask'\n",
     ":2: executor: 'dask' is not one of local, processes, ray"),
    ("models = ['ease']\nresume = 'yes'\n", ":2: resume: must be true or false"),
    ("models = ['ease']\nsplit = ['u1', 'u2']\n", ":2: split: takes one value, got a list"),
    ("models = ['ease'\n", "exp.toml: "),  # TOML syntax: tomllib's own line and column
    ("models = [{name = 'mf', dimm = 4}]\n",
     ":1: models: mf: MFConfig has no option 'dimm'"),
    ("models = [{factors = 4}]\n", ":1: models: a model table needs name"),
    ("models = ['ease']\n[dataset.x]\npath = 'a.csv'\ncolums = 1\n",
     ":4: dataset.x.colums: unknown key"),
    ("models = ['ease']\n[dataset.x]\ndelimiter = ';'\n", ":2: dataset.x: give its path"),
    ("models = ['ease']\n[dataset.x]\npath = 'a.csv'\nscale = [5, 1]\n",
     "scale must be [low, high] with low < high"),
    ("models = ['ease']\n[dataset.ml-1m]\npath = 'a.csv'\n",
     ":2: dataset name 'ml-1m' is taken by a built-in dataset"),
])
def test_bad_files_are_named_by_line_and_key_before_any_work(tmp_path, capsys, body, message):
    exp = tmp_path / "exp.toml"
    exp.write_text(body)
    with pytest.raises(SystemExit) as exc:
        main(["run", "--config", str(exp), "-d", "synthetic", "--out", str(tmp_path / "run")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "argument --config" in err and f"{exp}" in err and message in err
    assert not (tmp_path / "run").exists()


def test_dry_run_resolves_everything_and_trains_nothing(tmp_path, capsys, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("a dry run trained a model")

    monkeypatch.setattr(train, "fit", no_training)
    monkeypatch.setattr("aebench.bench.runs.runner.fit", no_training)
    out = tmp_path / "run"
    assert main(["run", "-m", "ease", "mf", "-d", "synthetic", "--seeds", "2", "--dry-run",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "dry run: 4 cells" in text and "nothing trained" in text
    assert text.count("synthetic") >= 4 and not out.exists()
    # what a dry run resolves still fails it: an unknown split, a missing device
    with pytest.raises(SystemExit):
        main(["run", "-m", "ease", "-d", "synthetic", "--split", "u9", "--dry-run"])
    assert "unknown split 'u9'" in capsys.readouterr().err


def test_tune_reads_a_file_too(tmp_path):
    out = tmp_path / "tuning"
    exp = write(tmp_path, f"""
        models = ["ease"]
        datasets = ["synthetic"]
        trials = 3
        out = "{out}"
    """)
    assert main(["tune", "--config", str(exp), "--dry-run"]) == 0
    assert not out.exists()
    assert main(["tune", "--config", str(exp)]) == 0
    assert (out / "recipes.json").is_file()


def test_tune_without_its_required_options_says_which(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["tune", "-m", "ease", "-d", "synthetic"])
    assert exc.value.code == 2 and "--trials" in capsys.readouterr().err


def test_recommend_reads_a_runs_dataset_tables_and_prints_titles(tmp_path, capsys):
    ratings_csv(tmp_path / "shop.csv")
    (tmp_path / "items.csv").write_text("item,title\n" + "".join(
        f'{i},"Product {i}, boxed"\n' for i in range(1, 26)))
    exp = write(tmp_path, """
        models = ["ease"]
        datasets = ["shop"]

        [dataset.shop]
        path = "shop.csv"
        items = "items.csv"
    """)
    assert main(["recommend", "--config", str(exp), "--model", "ease", "--dataset", "shop",
                 "--user", "3", "-k", "5", "--runs", str(tmp_path / "runs")]) == 0
    text = capsys.readouterr().out
    assert "top 5 for user 3 (ease, shop" in text and "boxed" in text


def test_tune_refuses_model_tables_with_overrides(tmp_path, capsys):
    exp = write(tmp_path, """
        models = [{name = "mf", dim = 4}]
        datasets = ["synthetic"]
        trials = 3
    """)
    with pytest.raises(SystemExit) as exc:
        main(["tune", "--config", str(exp)])
    assert exc.value.code == 2 and "tune searches each variant's own space" in \
        capsys.readouterr().err
