"""A grid over a multi-node Ray cluster (`--address`), made of real nodes on this machine:
each cell asks Ray for its estimated peak memory, so a node that offers less never runs it,
and a cell that no node can hold fails at once, saying so, instead of waiting forever."""

import pytest
from aebench.bench.cli import main
from aebench.bench.runs import records

ray = pytest.importorskip("ray", reason="Ray is the optional extra: pip install -e .[ray]")

MB = 2**20
GRID = ["run", "-m", "ease", "popularity", "-d", "synthetic", "--executor", "ray",
        "--threads", "1"]


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    # a head node whose tasks may hold 200 MB (less than any cell's estimate: a fresh
    # process alone holds more) and a node that offers 6 GB
    c = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "memory": 200 * MB, "include_dashboard": False})
    big = c.add_node(num_cpus=1, memory=6 * 1024 * MB)
    c.wait_for_nodes()
    try:
        yield c, big
    finally:
        c.shutdown()


def test_cells_run_on_the_node_that_has_their_memory(cluster, tmp_path):
    c, _ = cluster
    assert main(GRID + ["--address", c.address, "--out", str(tmp_path)]) == 0
    recs = records.read(tmp_path / "runs.jsonl")
    assert sorted(r.model for r in recs) == ["ease", "popularity"]
    assert all(r.ok for r in recs)


def test_a_cell_no_node_can_hold_fails_at_once_naming_its_memory(cluster, tmp_path, capsys):
    c, big = cluster
    c.remove_node(big)
    assert main(GRID + ["--address", c.address, "--out", str(tmp_path)]) == 1
    recs = records.read(tmp_path / "runs.jsonl")
    assert len(recs) == 2 and not any(r.ok for r in recs)
    assert all("no node of the Ray cluster has the memory" in r.error for r in recs)
    assert "the largest node offers 200 MB" in recs[0].error
