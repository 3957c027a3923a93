"""The traps on a newcomer's path, each closed: a result never lies about its recipe, work is
never lost to a check that could have come first, and messages say what to change."""

import dataclasses
import os
import signal
import subprocess
import sys
import time

import pytest
from aebench.bench.cli import main, parser
from aebench.bench.runs import records, runner
from aebench.bench.runs.runner import RunConfig

from tests.conftest import ROOT

FAST = ["-d", "synthetic", "--precision", "fp32"]


def no_training(*args, **kwargs):
    raise AssertionError("a model trained although a check should have stopped the run")


# ---- identity: every option that changes what a cell trains is in its key and its label

def test_a_command_line_override_makes_the_recipe_custom_and_changes_the_key():
    plain = RunConfig(model="mult-dae", dataset="synthetic")
    two = dataclasses.replace(plain, epochs=2)
    assert plain.recipe_name == "default" and two.recipe_name == "custom"
    assert two.all_overrides() == {"batched.epochs": 2}
    assert len({plain.key(), two.key(), dataclasses.replace(two, lr=0.01).key(),
                dataclasses.replace(plain, patience=9).key()}) == 4
    # a closed-form fit has no epochs: --epochs changes nothing it trains
    ease = RunConfig(model="ease", dataset="synthetic", epochs=2)
    assert ease.recipe_name == "default" and ease.all_overrides() == {}
    assert ease.key() == RunConfig(model="ease", dataset="synthetic").key()


def test_resume_never_takes_a_record_made_under_other_overrides(tmp_path, capsys):
    out = tmp_path / "x"
    base = ["run", "-m", "mult-dae", *FAST, "--out", str(out)]
    assert main(base + ["--epochs", "2", "--lr", "0.01"]) == 0
    assert main(base + ["--resume", "--epochs", "2"]) == 0
    assert "0 of 1 cells already ok" in capsys.readouterr().out
    assert main(base + ["--resume", "--epochs", "2"]) == 0
    assert "1 of 1 cells already ok" in capsys.readouterr().out
    recs = records.read(out)
    assert [r.recipe.name for r in recs] == ["custom", "custom"]
    assert [r.recipe.overrides for r in recs] == [
        {"batched.epochs": 2, "batched.lr": 0.01}, {"batched.epochs": 2}]
    assert [runner.record_key(r) for r in recs] == [
        RunConfig(model="mult-dae", dataset="synthetic", epochs=e, lr=lr).key()
        for e, lr in ((2, 0.01), (2, None))]
    tables = (out / "tables.md").read_text()
    # two sets of overrides: two rows, never one mean over both
    assert "| mult-dae *  " in tables and "| mult-dae *2 " in tables
    assert "* mult-dae: batched.epochs=2, batched.lr=0.01" in tables
    assert "*2 mult-dae: batched.epochs=2" in tables


# ---- checks before any training

def test_an_output_folder_that_cannot_be_written_fails_before_training(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runner, "train_cell", no_training)
    (tmp_path / "file").write_text("")
    for out in ("/proc/aebench-cannot-write/run", str(tmp_path / "file" / "run")):
        for extra in ([], ["--dry-run"]):
            with pytest.raises(SystemExit) as exc:
                main(["run", "-m", "ease", *FAST, "--out", out, *extra])
            assert exc.value.code == 2
            err = capsys.readouterr().err
            assert "argument --out" in err and ("not writable" in err or "is a file" in err)


def test_an_output_folder_without_room_for_the_plan_fails_before_training(
        tmp_path, monkeypatch, capsys):
    import shutil

    monkeypatch.setattr(runner, "train_cell", no_training)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage",
                        lambda p: usage._replace(free=1000))  # 1 kB free
    with pytest.raises(SystemExit) as exc:
        main(["run", "-m", "ease", *FAST, "--out", str(tmp_path / "run")])
    assert exc.value.code == 2
    assert "MB free" in capsys.readouterr().err


def test_a_corrupt_records_file_fails_before_anything_is_appended(
        tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert main(["run", "-m", "ease", "popularity", *FAST, "--out", str(out)]) == 0
    lines = (out / "runs.jsonl").read_text().splitlines(keepends=True)
    (out / "runs.jsonl").write_text(lines[0] + "{cut short\n" + lines[1])
    before = (out / "runs.jsonl").read_text()
    monkeypatch.setattr(runner, "train_cell", no_training)
    with pytest.raises(SystemExit) as exc:
        main(["run", "-m", "mf", *FAST, "--out", str(out)])
    assert exc.value.code == 2
    assert "runs.jsonl:2: not a JSON record" in capsys.readouterr().err
    assert (out / "runs.jsonl").read_text() == before


@pytest.mark.parametrize("name, says", [
    ("synthetic-99999999x99999999", "GiB by estimate"),
    ("synthetic-0x5", "at least 2 users and 2 items"),
    ("synthetic-1x1", "at least 2 users and 2 items")])
def test_synthetic_shapes_that_cannot_be_made_are_refused_at_once(
        name, says, monkeypatch, capsys):
    monkeypatch.setattr(runner, "train_cell", no_training)
    started = time.perf_counter()
    with pytest.raises(SystemExit) as exc:
        main(["run", "-m", "ease", "mf", "-d", name, "--dry-run"])
    assert exc.value.code == 2 and time.perf_counter() - started < 30
    err = capsys.readouterr().err
    assert says in err and err.count(name) == 1  # once, not once per model


def test_a_file_too_small_to_split_fails_once_in_the_dry_run(tmp_path, capsys):
    path = tmp_path / "two.csv"
    path.write_text("user,item,rating\n1,2,5\n")
    with pytest.raises(SystemExit) as exc:
        main(["run", "-m", "ease", "mf", "popularity", "-d", str(path), "--dry-run"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("aebench: error:") == 1 and "validation" in err


def test_a_missing_executor_extra_fails_the_dry_run(monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(SystemExit) as exc:
        main(["run", "-m", "ease", *FAST, "--executor", "ray", "--dry-run"])
    assert exc.value.code == 2
    assert "ray is not installed" in capsys.readouterr().err


def test_a_malformed_data_line_is_an_input_error_naming_the_path_once(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("user,item,rating\n1,1,5\n1,2\n")
    with pytest.raises(SystemExit) as exc:
        main(["run", "-m", "ease", "-d", str(path), "--dry-run"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"{path}:3: missing column 'rating'" in err and err.count(str(path)) == 1


def test_sigint_keeps_finished_cells_and_prints_the_resume_command(tmp_path):
    out = tmp_path / "run"
    argv = ["run", "-m", "ease", "mult-vae", "-d", "synthetic-3000x600", "--precision",
            "fp32", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # the child gets SIGINT's default disposition: a test run started in the background by a
    # non-interactive shell inherits SIGINT ignored, and Python then keeps ignoring it
    proc = subprocess.Popen([sys.executable, "-m", "bench", *argv], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    runs = out / "runs.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if runs.is_file() and runs.read_text().endswith("\n"):
            break
        time.sleep(0.02)
    time.sleep(0.5)  # into mult-vae's training
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    # 130 as a shell reports it: the exit status, or (seen once in a full test run after the
    # message was printed) death by the SIGINT itself, which a shell also shows as 130
    assert proc.returncode in (130, -signal.SIGINT), stdout + stderr
    assert "Traceback" not in stderr
    assert f"--out {out} --resume" in stderr and "1 of 2 cells finished" in stderr
    (kept,) = records.load(out)
    assert kept["model"] == "ease" and kept["status"] == "ok"
    assert not list((out / "weights").glob("*.part"))


def test_an_interrupt_that_surfaces_wrapped_stops_the_grid(tmp_path, monkeypatch, capsys):
    """A Ctrl-C raised inside a lazy import's class body reaches the cell as "RuntimeError:
    Error calling __set_name__", caused by the KeyboardInterrupt: the grid stops and says how
    to resume, rather than recording a failed cell and going on."""
    from aebench.bench.runs import runner

    def interrupted(*args, **kwargs):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise RuntimeError("Error calling __set_name__") from exc

    monkeypatch.setattr(runner, "train_cell", interrupted)
    out = tmp_path / "run"
    assert main(["run", "-m", "ease", *FAST, "--out", str(out)]) == 130
    err = capsys.readouterr().err  # (the resume line quotes this process's argv: pytest's)
    assert "interrupted: 0 of 1 cells finished" in err and "--resume" in err
    assert not (out / "runs.jsonl").is_file() or not records.load(out)


# ---- reports from records alone

def test_report_and_compare_work_from_runs_jsonl_alone(tmp_path, capsys):
    import shutil

    out = tmp_path / "run"
    assert main(["run", "-m", "ease", "popularity", *FAST, "--seeds", "2",
                 "--out", str(out)]) == 0
    shutil.rmtree(out / "per_user")
    shutil.rmtree(out / "weights")
    assert main(["report", str(out)]) == 0
    tables = (out / "tables.md").read_text()
    assert "No paired test where a record's per-user values are missing" in tables
    assert main(["compare", str(out)]) == 0
    assert "No paired test" in capsys.readouterr().out


# ---- messages

@pytest.mark.parametrize("argv, hint", [
    (["run", "-m", "easee"], "did you mean 'ease' or"),
    (["run", "-m", "ease", "--epohcs", "3"], "did you mean '--epochs'?"),
    (["run", "-m", "ease", "--mode", "batch"], "did you mean 'batched'?"),
    (["run", "-m", "ease", "-d", "ml-1mm"], "did you mean 'ml-1m'"),
    (["run", "-m", "ease", "--split", "random-90-11"], "did you mean 'random-90-10'"),
    (["recommend", "--model", "easee", "--dataset", "ml-1m", "--user", "1"],
     "argument --model: 'easee' matches no registered model; did you mean 'ease' or")])
def test_unknown_names_get_a_suggestion(argv, hint, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert hint in capsys.readouterr().err


def test_every_option_of_every_command_has_help():
    import argparse

    top, subs = parser()
    assert "Exit status" in top.format_help()
    for name, sub in subs.items():
        for action in sub._actions:
            if not isinstance(action, argparse._HelpAction):
                assert action.help, f"{name} {action.option_strings or action.dest}"


def test_a_log_gets_plain_lines_and_quiet_only_the_summary(tmp_path, capfd):
    argv = ["run", "-m", "ease", "popularity", *FAST]
    assert main(argv + ["--out", str(tmp_path / "a")]) == 0
    out, err = capfd.readouterr()
    assert "[1/2] ease synthetic cpu batched s0: " in out and "\r" not in out + err
    assert "| ease " in out and "full tables in" in out  # the end-of-run table
    assert main(argv + ["--out", str(tmp_path / "b"), "--quiet"]) == 0
    out, err = capfd.readouterr()
    assert "[1/2]" not in out and "| ease " in out and "wrote " not in out and err == ""


def test_records_of_older_runs_keep_their_keys():
    """A published record resumes as its cell (its run_config predates nothing here)."""
    rec = records.read(ROOT / "results" / "published")[0]
    cfg = RunConfig.from_run_config(rec.run_config)
    assert runner.record_key(rec) == dataclasses.replace(cfg, split=rec.split_name).key()
    assert runner.record_key(rec)[6] == "default"
