"""`bench tune`: the search space as Optuna suggestions, the default recipe as the first trial,
pruning against a snapshot of the study, SQLite storage that resumes, no test rating read,
and `run --recipes` with the tuned recipes."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import optuna
import pytest
from aebench.bench.cli import main
from aebench.bench.runs import records, runner, tune
from aebench.bench.runs.executors import LocalExecutor
from aebench.bench.runs.runner import RunConfig
from aebench.models.base import Choice, IntRange, LogUniform, Space, Uniform

from aebench import models
from tests.conftest import ROOT
from tests.runs.test_protocol import PoisonedCache

RUNNING = optuna.trial.TrialState.RUNNING


def test_suggest_draws_every_kind_of_parameter_and_maps_choices_back():
    space = Space({"a": LogUniform(1e-3, 1.0), "b": Uniform(0.0, 0.5), "c": IntRange(2, 8, 2),
                   "hidden": Choice(((600, 200), (300, 100)))})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(10):
        got = tune.suggest(study.ask(), space)
        assert 1e-3 <= got["a"] <= 1.0 and 0.0 <= got["b"] <= 0.5 and got["c"] in (2, 4, 6, 8)
        assert got["hidden"] in ((600, 200), (300, 100))


def test_default_recipes_lie_in_their_spaces():
    for name in models.list():
        if models.get(name).space.params:
            params = tune.default_params(name)
            assert params is not None, name
            # the default, read back through the space, is the default config
            labels = {k: {tune.choice_label(v): v for v in p.values}
                      for k, p in models.get(name).space.params.items() if isinstance(p, Choice)}
            overrides = {k: labels[k][v] if k in labels else v for k, v in params.items()}
            assert models.config(name, **overrides) == models.config(name), name


def test_a_trial_is_pruned_against_the_snapshot_of_better_trials():
    """The local copy of the median pruner sees finished trials whose every validation read
    is far better: the new trial stops at its first read past the warm-up."""
    cell = RunConfig(model="sae-20-10-20", dataset="synthetic", epochs=12, eval_every=2)
    good = [optuna.trial.create_trial(value=0.01, params={}, distributions={},
                                      intermediate_values={e: 0.01 for e in range(2, 13, 2)})
            for _ in range(3)]
    out = tune.trial_task(cell, good, "minimize", {"startup": 2, "warmup": 0})
    assert out["state"] == "pruned" and len(out["steps"]) == 1
    alone = tune.trial_task(cell, [], "minimize", {"startup": 2, "warmup": 0})
    assert alone["state"] == "complete" and len(alone["steps"]) == 6


def _study(tmp_path, model, trials, resume=False, cache=None, monkeypatch=None):
    if cache is not None:
        monkeypatch.setitem(runner._CACHES, None, cache)
    cell = RunConfig(model=model, dataset="synthetic", epochs=6)
    tmp_path.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    return tune.tune_variant(cell, trials, storage, LocalExecutor(), seed=0, resume=resume,
                             log=lambda *a: None), storage


def test_study_starts_from_the_default_and_never_reads_test_ratings(tmp_path, monkeypatch):
    clean, storage = _study(tmp_path / "a", "mf", 4, cache=runner.SplitCache(),
                            monkeypatch=monkeypatch)
    poisoned, _ = _study(tmp_path / "b", "mf", 4, cache=PoisonedCache(),
                         monkeypatch=monkeypatch)
    assert clean["trials"] == 4 and clean["complete"] + clean["pruned"] + clean["failed"] == 4
    study = optuna.load_study(study_name=clean["study"], storage=storage)
    first = study.trials[0]
    assert first.user_attrs["default"] and clean["default_value"] == first.value
    assert first.params == tune.default_params("mf")
    values = [t.value for t in study.trials]
    other = optuna.load_study(study_name=poisoned["study"],
                              storage=f"sqlite:///{tmp_path / 'b' / 'studies.db'}")
    assert values == [t.value for t in other.trials]


def test_a_study_resumes_from_its_storage(tmp_path, monkeypatch):
    first, storage = _study(tmp_path / "s", "bias", 3)
    before = optuna.load_study(study_name=first["study"], storage=storage).trials
    second, _ = _study(tmp_path / "s", "bias", 5, resume=True)
    after = optuna.load_study(study_name=first["study"], storage=storage).trials
    assert second["trials"] == 5 and [t.params for t in after[:3]] == [t.params for t in before]
    with pytest.raises(FileExistsError, match="--resume"):
        _study(tmp_path / "s", "bias", 6)


def test_tune_then_run_with_the_tuned_recipes(tmp_path, capsys):
    out = tmp_path / "tuning"
    assert main(["tune", "-m", "bias", "ease", "popularity", "-d", "synthetic", "--trials", "3",
                 "--out", str(out)]) == 0
    assert "nothing to tune: popularity" in capsys.readouterr().out
    recipes = json.loads((out / "recipes.json").read_text())
    assert set(recipes["recipes"]) == {"bias", "ease"}
    assert (out / "tuning.md").is_file() and (out / "studies.db").is_file()
    assert list(out.glob("history-ease__synthetic*.csv"))
    # a second tune into the same storage must be told to resume
    with pytest.raises(SystemExit) as exc:
        main(["tune", "-m", "bias", "-d", "synthetic", "--trials", "3", "--out", str(out)])
    assert exc.value.code == 2 and "--resume" in capsys.readouterr().err
    run = tmp_path / "run"
    assert main(["run", "-m", "bias", "ease", "popularity", "-d", "synthetic", "--recipes",
                 str(out / "recipes.json"), "--out", str(run)]) == 0
    recs = {r["model"]: r for r in records.load(run)}
    assert recs["ease"]["recipe"]["name"] == "tuned"
    assert recs["ease"]["recipe"]["study"] == "ease@synthetic/random-90-10"
    lam = recipes["recipes"]["ease"]["synthetic"]["overrides"]["lam"]
    assert recs["ease"]["config"]["lam"] == lam
    assert recs["popularity"]["recipe"]["name"] == "default"
    tables = (run / "tables.md").read_text()
    assert "tuned recipes" in tables and "default recipes" not in tables
    # popularity, with nothing to tune, stands as the reference of the tuned ranking table
    from aebench.bench.reports import report
    ranking = report.groups(records.read(run))[("synthetic", "random-90-10", "cpu", "batched",
                                                  "tuned")]
    assert set(ranking) == {"bias", "ease", "popularity"}


@pytest.mark.parametrize("content, message", [
    ("not json", "not a recipes file"),
    ('{"format": "other", "recipes": {}}', "not an aebench recipes file"),
    ('{"format": "aebench-recipes/1", "recipes": {"nope": {}}}', "'nope' is not registered"),
    ('{"format": "aebench-recipes/1", "recipes": {"ease": {"synthetic": {"overrides": '
     '{"lamb": 1}}}}}', "no option 'lamb'"),
])
def test_bad_recipes_files_are_named(tmp_path, content, message, capsys):
    path = tmp_path / "recipes.json"
    path.write_text(content)
    with pytest.raises(SystemExit) as exc:
        main(["run", "-m", "ease", "-d", "synthetic", "--recipes", str(path)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "argument --recipes" in err and str(path) in err
    assert message in err


def test_studies_of_several_calls_add_up_in_the_outputs(tmp_path):
    """Tuning ml-100k, then ml-1m, into one folder: recipes.json and studies.json hold both
    (each call writes them from every study in the storage)."""
    out = tmp_path / "tuning"
    for dataset in ("synthetic", "synthetic-40x30"):
        assert main(["tune", "-m", "ease", "-d", dataset, "--trials", "2", "--out",
                     str(out)]) == 0
    recipes = json.loads((out / "recipes.json").read_text())["recipes"]
    assert set(recipes["ease"]) == {"synthetic", "synthetic-40x30"}
    studies = json.loads((out / "studies.json").read_text())
    assert [(s["model"], s["dataset"]) for s in studies] == [("ease", "synthetic"),
                                                             ("ease", "synthetic-40x30")]
    assert len(list(out.glob("history-ease__*.csv"))) == 2


def test_local_executor_runs_queued_tasks_oldest_first_when_waited_on():
    ran = []
    ex = LocalExecutor()
    a = ex.submit(lambda x: ran.append(x) or x * 10, (1,))
    b = ex.submit(lambda x: ran.append(x) or x * 10, (2,))
    assert ran == []  # queued, not run
    (task, result), rest = ex.wait_one([a, b])
    assert (task, result, rest, ran) == (a, 10, [b], [1])
    (task, result), rest = ex.wait_one(rest)
    assert (task, result, rest, ran) == (b, 20, [], [1, 2])


def test_a_killed_study_asks_its_interrupted_trial_again_and_counts_it_once(tmp_path,
                                                                           real_data_dir):
    """`tune` killed while a trial runs (iALS on ml-100k: seconds a trial): on `--resume`
    that trial is marked interrupted, its parameters are asked again, and the budget counts
    the trials that ended, not it."""
    out = tmp_path / "tuning"
    argv = ["tune", "-m", "ials", "-d", "ml-100k", "--trials", "3", "--threads", "1",
            "--data-dir", str(real_data_dir), "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "bench", *argv], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    storage = f"sqlite:///{out / 'studies.db'}"
    deadline, cut = time.monotonic() + 120, None
    while time.monotonic() < deadline and proc.poll() is None and cut is None:
        time.sleep(0.05)
        try:
            study = optuna.load_study(study_name="ials@ml-100k/u1", storage=storage)
            trials = study.get_trials(deepcopy=False)
        except Exception:  # the study is not created yet
            continue
        done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        # caught training, not between two suggestions: a trial's parameters are stored one
        # by one as they are asked, so a running trial holds all of them only once it trains
        if done and trials[-1].state == RUNNING and len(trials[-1].params) == len(done[0].params):
            cut = trials[-1]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert cut is not None, "the study was not caught with a trial running"

    assert main(argv + ["--resume"]) == 0
    study = optuna.load_study(study_name="ials@ml-100k/u1", storage=storage)
    lost = study.trials[cut.number]
    assert lost.state == optuna.trial.TrialState.FAIL and "interrupted" in lost.user_attrs
    again = [t for t in study.trials if t.user_attrs.get("retry_of") == cut.number]
    assert len(again) == 1 and again[0].params == cut.params
    summary = tune.summary(study, storage)
    assert summary["trials"] == 3 and summary["interrupted"] == 1
    assert len(study.trials) == 4 and len(tune.finished(study)) == 3


def test_a_trial_whose_driver_lives_is_not_taken_for_interrupted(tmp_path):
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    study = optuna.create_study(study_name="s", storage=storage)
    alive = study.ask()
    alive.set_user_attr("driver", f"{socket.gethostname()}:{os.getppid()}")
    elsewhere = study.ask()
    elsewhere.set_user_attr("driver", "another-host:1")
    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait()
    gone = study.ask()
    gone.set_user_attr("driver", f"{socket.gethostname()}:{dead.pid}")
    assert tune.requeue_interrupted(study) == [gone.number]
    states = [t.state for t in study.trials]
    assert states[:3] == [RUNNING, RUNNING, optuna.trial.TrialState.FAIL]
    assert tune.requeue_interrupted(study) == []  # asked again once only
