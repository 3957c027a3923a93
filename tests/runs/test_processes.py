"""Grids on worker processes of this machine (`--executor processes`): the driver alone
writes the records, the metrics equal the local executor's, cells start longest first and
never beside cells whose estimated peaks they would not fit with, and a worker that dies
fails its cell alone."""

import os
from pathlib import Path

from aebench.bench.cli import main
from aebench.bench.runs import executors, grid, records
from aebench.bench.runs.plan import Cost, Plan
from aebench.bench.runs.runner import RunConfig

from tests.models.test_plugins import clean_registry, module_source  # noqa: F401 (an autouse fixture)

GRID = ["run", "-m", "sae-20-10-20", "mf", "ease", "-d", "synthetic", "--seeds", "2",
        "--epochs", "6", "--threads", "1"]


def test_grid_on_processes_matches_the_local_executor(tmp_path):
    assert main(GRID + ["--out", str(tmp_path / "local")]) == 0
    assert main(GRID + ["--executor", "processes", "--workers", "2",
                        "--out", str(tmp_path / "procs")]) == 0
    local, procs = records.load(tmp_path / "local"), records.load(tmp_path / "procs")
    assert len(procs) == 6 and all(r["status"] == "ok" for r in procs)
    by_cell = {(r["model"], r["seed"]): r for r in local}
    for r in procs:
        assert r["metrics"] == by_cell[(r["model"], r["seed"])]["metrics"]
        assert r["env"]["torch_threads"] == 1
        assert r["env"]["workers"] == 2 and r["env"]["executor"] == "processes"
        assert (tmp_path / "procs" / r["per_user"]).is_file()
        assert (tmp_path / "procs" / r["weights"]).is_file()
    assert "workers" not in local[0]["env"]
    assert (tmp_path / "procs" / "tables.md").is_file()


def _square(x):
    return x * x


def _fail(x):
    raise ValueError(f"bad {x}")


def _die(code):
    os._exit(code)


def test_workers_run_tasks_and_pass_back_errors():
    ex = executors.ProcessExecutor(workers=2, threads=1)
    try:
        assert ex.parallel == 2
        tasks = [ex.submit(_square, (i,)) for i in range(5)]  # more tasks than workers
        got, pending = {}, list(tasks)
        while pending:
            (task, result), pending = ex.wait_one(pending)
            got[tasks.index(task)] = result
        assert got == {i: i * i for i in range(5)}
        failing = ex.submit(_fail, (7,))
        try:
            ex.wait_one([failing])
            raise AssertionError("the task's error was not raised")
        except ValueError as exc:
            assert str(exc) == "bad 7"
    finally:
        ex.close()


def test_a_dead_worker_fails_its_task_alone_and_is_replaced():
    ex = executors.ProcessExecutor(workers=2, threads=1)
    try:
        dying, fine = ex.submit(_die, (3,)), ex.submit(_square, (4,))
        results = {}
        pending = [dying, fine]
        while pending:
            (task, result), pending = ex.wait_one(pending)
            results[task is dying] = result
        assert isinstance(results[True], executors.TaskLost)
        assert "exit code 3" in str(results[True])
        assert results[False] == 16
        again = ex.submit(_square, (5,))  # two workers still serve
        assert ex.wait_one([again])[0][1] == 25 and len(ex.workers) == 2
    finally:
        ex.close()
    assert not ex.workers


def test_a_worker_that_dies_fails_its_cell_and_the_grid_goes_on(tmp_path):
    path = tmp_path / "dying_plugin.py"
    path.write_text(module_source("proc-dies", score="import os; os._exit(3)"))
    out = tmp_path / "run"
    assert main(["run", "--plugin", str(path), "-m", "proc-dies", "ease", "-d", "synthetic",
                 "--executor", "processes", "--workers", "2", "--out", str(out)]) == 1
    recs = {r["model"]: r for r in records.load(out)}
    assert recs["ease"]["status"] == "ok"
    assert recs["proc-dies"]["status"] == "failed"
    assert recs["proc-dies"]["error"].startswith("worker lost: ")


class _Recording:
    """An executor that runs nothing: it records what was started beside what."""

    name = "fake"

    def __init__(self, parallel):
        self.parallel, self.started, self.running = parallel, [], []

    def submit(self, fn, args, gpus=0, memory_mb=None):
        cell = args[0]
        self.started.append((cell.model, tuple(sorted(c.model for c in self.running))))
        self.running.append(cell)
        return cell

    def wait_one(self, pending):
        cell = pending[0]
        self.running.remove(cell)
        return (cell, (_record(cell), {})), pending[1:]

    def close(self):
        pass


def _record(cell):
    return records.Record(model=cell.model, dataset=cell.dataset, mode="batched",
                          device="cpu", seed=0, status="failed", started="", error="x")


def _plan(tmp_path, costs):
    cells = tuple(RunConfig(model=m, dataset="synthetic") for m in costs)
    return Plan(cells, (), 0, Path(tmp_path), tuple(Cost(*c) for c in costs.values()))


def test_cells_start_longest_first_and_within_memory(tmp_path):
    p = _plan(tmp_path, {"short": (1.0, 100.0), "unknown": (None, 100.0),
                         "long": (50.0, 900.0), "mid": (10.0, 900.0)})
    assert [p.cells[i].model for i in grid.order(p, 2)] == ["unknown", "long", "mid", "short"]
    assert grid.order(p, 1) == [0, 1, 2, 3]  # one worker: as planned
    ex = _Recording(parallel=2)
    grid.run_plan(p, ex, memory_mb=1000.0)
    # "long" (900 MB) and "mid" (900 MB) never run together in 1,000 MB; "short" fills in
    assert ("mid", ("long",)) not in ex.started and ("long", ("mid",)) not in ex.started
    assert [m for m, _ in ex.started] == ["unknown", "long", "short", "mid"]
    assert ex.started[1] == ("long", ("unknown",))  # 100 + 900 fits


def test_a_cell_larger_than_memory_still_runs_alone(tmp_path):
    """The plan was refused before any work unless --ignore-memory said to try: then the
    cell runs, alone."""
    p = _plan(tmp_path, {"huge": (5.0, 5000.0), "small": (1.0, 10.0)})
    ex = _Recording(parallel=2)
    grid.run_plan(p, ex, memory_mb=1000.0)
    assert ex.started == [("huge", ()), ("small", ())]


def test_a_cells_weights_are_freed_before_the_next_cell_runs(tmp_path):
    """The local executor runs a cell inside `wait_one`: the grid must not hold the cell
    before's weights meanwhile (at 26,744 items they are 2.9 GB, which the next cell's
    measured peak would count)."""
    import weakref

    import torch

    class Weighing(_Recording):
        def __init__(self):
            super().__init__(parallel=1)
            self.before, self.alive = None, []

        def wait_one(self, pending):
            self.alive.append(self.before is not None and self.before() is not None)
            (cell, (record, _)), rest = super().wait_one(pending)
            weight = torch.zeros(1000)
            self.before = weakref.ref(weight)
            return (cell, (record, {"state_dict": {"weight": weight}})), rest

    ex = Weighing()
    grid.run_plan(_plan(tmp_path, {"a": (1.0, 10.0), "b": (1.0, 10.0), "c": (1.0, 10.0)}), ex)
    assert ex.alive == [False, False, False]


def test_workers_option_goes_with_processes(capsys):
    try:
        main(["run", "-m", "ease", "-d", "synthetic", "--executor", "local", "--workers", "2",
              "--dry-run"])
        raise AssertionError("--workers with --executor local was accepted")
    except SystemExit as exc:
        assert exc.code == 2
    assert "argument --workers: it sizes --executor processes (this is local)" \
        in capsys.readouterr().err


def test_the_default_executor_is_processes_where_they_pay(monkeypatch):
    """--workers alone asks for processes; `run --all` of CPU cells takes one worker per core
    on a machine of two or more; a single core, CUDA cells or a chosen grid stay local."""
    from aebench.bench.cli.checks import default_executor

    monkeypatch.setattr(executors, "cores", lambda: 2)
    assert default_executor(3) == "processes"
    assert default_executor(None, ["cpu"], whole_grid=True) == "processes"
    assert default_executor(None, ["cpu"]) == "local"
    assert default_executor(None, ["cpu", "cuda"], whole_grid=True) == "local"
    monkeypatch.setattr(executors, "cores", lambda: 1)
    assert default_executor(None, ["cpu"], whole_grid=True) == "local"


def test_the_dry_run_of_run_all_shares_the_cells_over_a_worker_per_core(monkeypatch, capsys,
                                                                        real_data_dir):
    monkeypatch.setattr(executors, "cores", lambda: 2)
    data = ["-d", "ml-100k", "--data-dir", str(real_data_dir)]
    assert main(["run", "--all", *data, "--dry-run"]) == 0
    out = capsys.readouterr().out
    serial = float(out.split("dry run: ")[1].split("about ")[1].split(" min")[0])
    assert "2 at a time, longest first: about " in out
    wall = out.split("2 at a time, longest first: about ")[1].split(" of wall time")[0]
    minutes = float(wall.split()[0]) if wall.endswith("min") else float(wall.split()[0]) / 60
    assert serial / 2 <= minutes + 0.05 < serial  # shared out, never under half the sum
    assert main(["run", "--all", *data, "--threads", "2", "--dry-run"]) == 0
    assert "at a time" not in capsys.readouterr().out  # one worker of two threads: serial


def test_the_eta_shares_cells_over_workers_and_keeps_pace():
    """Published seconds 60, 30, 30 and 20 on two workers: 70 s; after the 60 s cell took
    120 s (half the pace), the 80 s left read 160 s; a cell the published run lacks counts at
    the median and sets no pace; one long cell bounds the grid from below."""
    from aebench.bench.cli.display import Eta

    cells = [RunConfig(model=m, dataset="synthetic") for m in "abcde"]
    costs = [Cost(60.0, 1), Cost(30.0, 1), Cost(30.0, 1), Cost(20.0, 1), Cost(None, 1)]
    eta = Eta(cells[:4], costs[:4], parallel=2)
    assert eta.total_s() == 70.0

    def done(cell, seconds):
        rec = records.Record.from_json({
            "model": cell.model, "dataset": "synthetic", "device": "cpu", "seed": 0,
            "timings": {"epoch_s_median": 1.0, "fit_s": 1.0, "eval_s": 0.0,
                        "cell_s": seconds}})
        eta.finished(cell, rec)

    done(cells[0], 120.0)
    assert eta.left_s() == 2 * 40.0
    unknown = Eta(cells, costs, parallel=2)
    assert unknown.total_s() == (60 + 30 + 30 + 20 + 30) / 2
    done_unknown = unknown.finished
    rec = records.Record.from_json({"model": "e", "dataset": "synthetic", "device": "cpu",
                                    "seed": 0, "timings": {"epoch_s_median": 1.0,
                                                           "fit_s": 1.0, "eval_s": 0.0,
                                                           "cell_s": 999.0}})
    done_unknown(cells[4], rec)
    assert unknown.left_s() == 70.0  # the guessed cell set no pace
    assert Eta(cells[:2], [Cost(100.0, 1), Cost(10.0, 1)], parallel=2).total_s() == 100.0
