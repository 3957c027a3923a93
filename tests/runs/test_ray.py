"""Grids and studies on a real local Ray cluster (2 CPUs, started once for this module): the
driver alone writes the records, and the grid's metrics equal the local executor's."""

import json

import pytest
from aebench.bench.cli import main
from aebench.bench.runs import records

from tests.models.test_plugins import clean_registry, module_source  # noqa: F401 (an autouse fixture)

ray = pytest.importorskip("ray", reason="Ray is the optional extra: pip install -e .[ray]")


@pytest.fixture(scope="module", autouse=True)
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


GRID = ["run", "-m", "sae-20-10-20", "mf", "ease", "-d", "synthetic", "--seeds", "2",
        "--epochs", "6", "--threads", "1"]


def test_grid_on_ray_matches_the_local_executor(tmp_path):
    assert main(GRID + ["--out", str(tmp_path / "local")]) == 0
    assert main(GRID + ["--executor", "ray", "--out", str(tmp_path / "ray")]) == 0
    local, remote = records.load(tmp_path / "local"), records.load(tmp_path / "ray")
    assert len(remote) == 6 and all(r["status"] == "ok" for r in remote)
    by_cell = {(r["model"], r["seed"]): r for r in local}
    for r in remote:
        assert r["metrics"] == by_cell[(r["model"], r["seed"])]["metrics"]
        assert r["env"]["torch_threads"] == 1
        assert (tmp_path / "ray" / r["per_user"]).is_file()
        assert (tmp_path / "ray" / r["weights"]).is_file()
    assert (tmp_path / "ray" / "tables.md").is_file()


def test_a_failed_cell_on_ray_is_a_failed_record(tmp_path):
    out = tmp_path / "run"
    assert main(["run", "-m", "sae-20-10-20", "ease", "-d", "synthetic", "--lr", "1e30",
                 "--epochs", "2", "--executor", "ray", "--out", str(out)]) == 1
    status = {r["model"]: r["status"] for r in records.load(out)}
    assert status == {"sae-20-10-20": "failed", "ease": "ok"}


def test_study_on_ray(tmp_path):
    out = tmp_path / "tuning"
    assert main(["tune", "-m", "mf", "ease", "-d", "synthetic", "--trials", "4",
                 "--executor", "ray", "--threads", "1", "--out", str(out)]) == 0
    recipes = json.loads((out / "recipes.json").read_text())["recipes"]
    for model in ("mf", "ease"):
        s = recipes[model]["synthetic"]
        assert s["trials"] == 4 and s["complete"] >= 1 and s["default_value"] is not None


def test_plugin_variants_run_in_ray_workers(tmp_path):
    """A worker loads the cell's `--plugin` file itself before it builds the variant."""
    path = tmp_path / "ray_plugin.py"
    path.write_text(module_source("ray-pop"))
    out = tmp_path / "run"
    assert main(["run", "--plugin", str(path), "-m", "ray-pop", "ease", "-d", "synthetic",
                 "--executor", "ray", "--threads", "1", "--out", str(out)]) == 0
    recs = {r["model"]: r for r in records.load(out)}
    assert all(r["status"] == "ok" for r in recs.values())
    assert recs["ray-pop"]["plugin"]["module"] == "aebench_plugin_ray_plugin"


def test_a_worker_that_dies_fails_its_cell_and_the_grid_goes_on(tmp_path):
    """A worker killed under a cell (here the plugin's scoring exits the process, as an
    out-of-memory kill would) is that cell's failed record; the driver and the other cells
    carry on, and `--resume` would run it again."""
    path = tmp_path / "dying_plugin.py"
    path.write_text(module_source("ray-dies", score="import os; os._exit(3)"))
    out = tmp_path / "run"
    assert main(["run", "--plugin", str(path), "-m", "ray-dies", "ease", "-d", "synthetic",
                 "--executor", "ray", "--threads", "1", "--out", str(out)]) == 1
    recs = {r["model"]: r for r in records.load(out)}
    assert recs["ease"]["status"] == "ok"
    assert recs["ray-dies"]["status"] == "failed"
    assert recs["ray-dies"]["error"].startswith("worker lost: ")
