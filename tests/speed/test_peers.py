"""`speed --peers`: the peers' settings follow the variants' configs, the RecBole side's input
files, and the command's behaviour with and without RecBole's environment (the real peer run
needs BENCH_RECBOLE_PYTHON: RecBole pins numpy<2 and never joins the suite's environment)."""

import json
import os
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from aebench.bench.cli import main
from aebench.bench.speed import peers
from aebench.bench.speed.recbole_peer import write_atomic

from aebench import models


def test_peer_settings_follow_the_variant_config():
    cfg = models.config("mult-vae")
    got = peers.PEERS["mult-vae"].settings(cfg, 6040)
    # aebench's 600-200: RecBole's encoder emits mu and logvar in one 2 x 200 layer
    assert got["mlp_hidden_size"] == [600] and got["latent_dimension"] == 400
    assert got["learning_rate"] == cfg.batched.lr and got["train_batch_size"] == 500
    # beta at its cap 0.2 after 50 epochs of ceil(6040 / 500) steps, as aebench anneals:
    # RecBole's beta is min(cap, step / total)
    assert got["total_anneal_steps"] == 50 * 13 / 0.2
    assert min(0.2, 50 * 13 / got["total_anneal_steps"]) == 0.2
    assert 49 * 13 / got["total_anneal_steps"] < 0.2
    small = peers.PEERS["mult-vae"].settings(models.config("mult-vae", hidden=(300, 100)), 6040)
    assert small["mlp_hidden_size"] == [300] and small["latent_dimension"] == 200
    dae = peers.PEERS["mult-dae"].settings(models.config("mult-dae"), 6040)
    assert dae["latent_dimension"] == 200
    ease = peers.PEERS["ease"].settings(models.config("ease", lam=77.0), 6040)
    assert ease == {"reg_weight": 77.0}
    # DiffRec: the authors' decoder widths (200, 600) are RecBole's items -> 600 -> 200 -> 600
    diff = peers.PEERS["diffrec"].settings(models.config("diffrec"), 6040)
    assert diff["dims_dnn"] == [600, 200, 600] and diff["steps"] == 40
    assert (diff["noise_schedule"], diff["mean_type"], diff["train_batch_size"]) == (
        "linear-var", "x0", 400)
    assert peers.PEERS["diffrec"].settings(models.config("diffrec", dims=(1000,)),
                                           6040)["dims_dnn"] == [1000]
    for peer in peers.PEERS.values():
        assert peer.family in models.list() and peer.timed in ("epoch", "fit")
        json.dumps(peer.settings(models.config(peer.family), 6040))  # what the worker receives


def test_atomic_files_hold_every_interaction(tmp_path):
    x = sp.csr_matrix(np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0]], dtype=np.float32))
    np.savez(tmp_path / "t.npz", indptr=x.indptr, indices=x.indices, shape=np.array(x.shape))
    assert write_atomic(tmp_path / "t.npz", tmp_path / "out") == (3, 3, 3)
    train = (tmp_path / "out" / "aebench" / "aebench.train.inter").read_text().splitlines()
    assert train == ["user_id:token\titem_id:token", "0\t0", "0\t2", "2\t1"]
    # valid and test: one interaction of each of the first users that has one
    valid = (tmp_path / "out" / "aebench" / "aebench.valid.inter").read_text().splitlines()
    assert valid[1:] == ["0\t0", "2\t1"]
    # with real valid and test parts, each file holds its own part
    v = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=np.float32))
    np.savez(tmp_path / "v.npz", indptr=v.indptr, indices=v.indices, shape=np.array(v.shape))
    write_atomic(tmp_path / "t.npz", tmp_path / "both", tmp_path / "v.npz", tmp_path / "v.npz")
    for part in ("valid", "test"):
        got = (tmp_path / "both" / "aebench" / f"aebench.{part}.inter").read_text()
        assert got.splitlines()[1:] == ["0\t1", "1\t0"]


@pytest.fixture
def no_recbole(monkeypatch):
    monkeypatch.delenv(peers.ENV, raising=False)
    try:
        import recbole  # noqa: F401
    except ImportError:
        return
    pytest.skip("RecBole is installed in the suite's environment")


def test_peers_without_recbole_say_what_is_missing(no_recbole, capsys):
    assert main(["speed", "--peers", "-m", "mult-dae", "bias", "-d", "synthetic-200x300"]) == 0
    out = capsys.readouterr().out
    assert "no peer: bias" in out
    assert "skipped" in out and "recbole==1.2.1" in out and "--peer-python" in out
    # a Python without RecBole is named
    assert main(["speed", "--peers", "-m", "ease", "-d", "synthetic-200x300",
                 "--peer-python", sys.executable]) == 0
    assert f"--peer-python {sys.executable} cannot import recbole" in capsys.readouterr().out


def test_peer_python_needs_peers(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["speed", "-m", "ease", "--peer-python", sys.executable])
    assert exc.value.code == 2 and "--peer-python needs --peers" in capsys.readouterr().err


@pytest.mark.skipif(not os.environ.get(peers.ENV), reason=f"needs {peers.ENV}: RecBole's own "
                    "environment (bench/speed/peers.py says how to build it)")
def test_peers_time_recbole_back_to_back(tmp_path):
    out = tmp_path / "peers.json"
    assert main(["speed", "--peers", "-m", "mult-vae", "ease", "-d", "synthetic-200x300",
                 "--repeats", "2", "--precisions", "fp32", "bf16", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    # an epoch per precision against one peer run; a closed-form fit is float32 only
    assert [(r["model"], r["precision"]) for r in rows] == [
        ("ease", "fp32"), ("mult-vae", "fp32"), ("mult-vae", "bf16")]
    assert rows[1]["peer_runs"] == rows[2]["peer_runs"]
    for r in rows:
        assert len(r["peer_runs"]) == 2 and r["peer_s"] > 0 and r["aebench_s"] > 0
        assert r["speedup"] == pytest.approx(r["peer_s"] / r["aebench_s"])
    assert rows[1]["peer"].startswith("recbole 1.2.1 MultiVAE")


@pytest.mark.skipif(not os.environ.get(peers.ENV), reason=f"needs {peers.ENV}")
def test_a_relative_peer_python_survives_the_scratch_folder():
    """The worker runs in a scratch folder, so README's `--peer-python .recbole/bin/python`
    must be made absolute first (as a link: a venv's python must not be resolved away)."""
    relative = os.path.relpath(os.environ[peers.ENV])
    python, why = peers.find_python(relative)
    assert why == "" and python == os.path.abspath(relative)
