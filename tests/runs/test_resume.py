"""`run --resume`: a grid killed mid-run, resumed, ends with the same records and tables as an
uninterrupted one; finished cells are not run again."""

import os
import signal
import subprocess
import sys
import time

import pytest
from aebench.bench.cli import main
from aebench.bench.runs import records

from tests.conftest import ROOT

ARGV = ["run", "-m", "sae-20-10-20", "mf", "ease", "-d", "synthetic", "--seeds", "2",
        "--epochs", "12"]
CELLS = 6


def comparisons(out):
    """tables.md up to the timing-dependent parts (costs, environment)."""
    return (out / "tables.md").read_text().split("## Costs")[0]


def test_killed_grid_resumes_to_the_same_tables(tmp_path):
    whole = tmp_path / "whole"
    assert main(ARGV + ["--out", str(whole)]) == 0

    cut = tmp_path / "cut"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "bench", *ARGV, "--out", str(cut)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    runs = cut / "runs.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if runs.is_file() and runs.read_text().count("\n") >= 2:
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    kept = records.load(cut)
    assert 2 <= len(kept) < CELLS, "the grid was not interrupted mid-run"

    assert main(ARGV + ["--out", str(cut), "--resume"]) == 0
    final = records.load(cut)
    ok = [r for r in final if r["status"] == "ok"]
    assert len(ok) == CELLS
    assert len({(r["model"], r["seed"]) for r in ok}) == CELLS  # nothing ran twice
    assert [r["started"] for r in ok[:len(kept)]] == [r["started"] for r in kept]
    want = {(r["model"], r["seed"]): r["metrics"] for r in records.load(whole)}
    assert {(r["model"], r["seed"]): r["metrics"] for r in ok} == want
    assert comparisons(cut) == comparisons(whole)


def test_resume_of_a_finished_grid_runs_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["run", "-m", "ease", "popularity", "-d", "synthetic", "--out", str(out)]
    assert main(argv) == 0
    assert main(argv + ["--resume"]) == 0
    assert "2 of 2 cells already ok" in capsys.readouterr().out
    assert len(records.load(out)) == 2


def test_a_torn_last_line_is_skipped_and_closed(tmp_path):
    path = tmp_path / "runs.jsonl"
    records.append(path, {"a": 1})
    with open(path, "a") as fh:
        fh.write('{"b": 2, "c"')  # a writer killed mid-line
    assert records.load(path) == [{"a": 1}]
    records.append(path, {"d": 4})
    assert records.load(path) == [{"a": 1}, {"d": 4}]
    with open(path, "a") as fh:
        fh.write("not json\n")
    with pytest.raises(ValueError, match=r"runs.jsonl:3: not a JSON record"):
        records.load(path)


def _append_when_ready(path, record, ready):
    ready.set()
    records.append(path, record)


def test_a_writer_waits_for_a_record_in_flight(tmp_path):
    """Two grids appending to one runs.jsonl (the two halves of a study): a writer that finds
    another's record half written waits for it instead of taking it for a line cut by a
    killed run and dropping it."""
    import fcntl
    import multiprocessing

    path = tmp_path / "runs.jsonl"
    records.append(path, {"a": 1})
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    with open(path, "ab") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)  # the other writer, mid-record
        fh.write(b'{"b": 2')
        fh.flush()
        writer = ctx.Process(target=_append_when_ready, args=(path, {"c": 3}, ready))
        writer.start()
        assert ready.wait(60)
        writer.join(1.0)
        assert writer.is_alive(), "the writer did not wait for the record in flight"
        fh.write(b"}\n")
    writer.join(60)
    assert writer.exitcode == 0
    assert records.load(path) == [{"a": 1}, {"b": 2}, {"c": 3}]
