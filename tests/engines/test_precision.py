"""Mixed precision: bf16 autocast of the dense products where a family allows it, float32
master weights, reductions and scores, and float32 where a family keeps it."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from aebench.bench.cli import main
from aebench.bench.engines import precision
from aebench.bench.engines.batched import BatchedEngine, EngineOptions
from aebench.bench.evaluation.evaluate import score_rows
from aebench.bench.runs import records

from aebench import datasets, models

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def split():
    return datasets.make_split(datasets.load("synthetic"), "random-90-10", 0)


def linear_dtypes(model):
    """Record the output dtype of every nn.Linear forward of `model`."""
    seen = []
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            m.register_forward_hook(lambda mod, i, out: seen.append(out.dtype))
    return seen


@pytest.mark.parametrize("name, loss_dtype", [("mult-vae", torch.bfloat16),
                                              ("sae-200-100-200", torch.bfloat16),
                                              ("deeprec", torch.bfloat16)])
def test_bf16_runs_the_dense_products_low_and_keeps_weights_and_losses_float32(
        split, name, loss_dtype):
    torch.manual_seed(0)
    model, cfg = models.create(name, split.n_users, split.n_items)
    x = cfg.view(split.train)
    seen = linear_dtypes(model)
    engine = BatchedEngine(model, x, cfg.batched, CPU, 0, EngineOptions(precision="bf16"),
                           cfg.low_precision)
    loss = engine.epoch()
    assert np.isfinite(loss) and seen and set(seen) == {loss_dtype}
    assert all(p.dtype == torch.float32 for p in model.parameters())
    state = engine.opts[0].state
    assert all(v.dtype == torch.float32 for s in state.values() for v in s.values()
               if torch.is_tensor(v) and v.dim())
    seen.clear()
    with precision.context("bf16", CPU, cfg.low_precision, "score"):
        _, scores = next(score_rows(model, x, CPU))
    assert set(seen) == {torch.bfloat16} and scores.dtype == torch.float32


def test_a_family_that_keeps_float32_keeps_it(split):
    # the L-BFGS kernel autoencoders: the loss (the line search) stays float32
    torch.manual_seed(0)
    model, cfg = models.create("sparse-fc", split.n_items, split.n_users, hidden=(8, 8),
                               **{"batched.iterations": 2})
    assert cfg.low_precision == ("score",)
    x = cfg.view(split.train)
    engine = BatchedEngine(model, x, cfg.batched, CPU, 0, EngineOptions(precision="bf16"),
                           cfg.low_precision)
    calls = []
    loss = model.loss
    model.loss = lambda b: (calls.append(torch.is_autocast_enabled("cpu")), loss(b))[1]
    engine.epoch()
    assert calls and not any(calls)


def test_bf16_training_tracks_float32(split):
    def losses(p):
        torch.manual_seed(0)
        model, cfg = models.create("mult-dae", split.n_users, split.n_items)
        engine = BatchedEngine(model, cfg.view(split.train), cfg.batched, CPU, 0,
                               EngineOptions(precision=p), cfg.low_precision)
        return np.array([engine.epoch() for _ in range(4)])

    fp32, bf16 = losses("fp32"), losses("bf16")
    assert not np.array_equal(fp32, bf16)  # it did run in another precision
    np.testing.assert_allclose(bf16, fp32, rtol=0.02)


def test_records_carry_the_precision_and_tables_keep_them_apart(tmp_path):
    out = tmp_path / "run"
    argv = ["run", "-m", "mult-dae", "ease", "-d", "synthetic", "--epochs", "3", "--out",
            str(out)]
    assert main(argv + ["--precision", "fp32"]) == 0
    assert main(argv + ["--precision", "bf16", "--resume"]) == 0  # other cells: both run
    recs = records.load(out)
    got = {(r["model"], r["run_config"]["precision"]): r["precision"] for r in recs}
    assert got == {("mult-dae", "fp32"): {"loss": "fp32", "score": "fp32"},
                   ("ease", "fp32"): {"loss": "fp32", "score": "fp32"},
                   ("mult-dae", "bf16"): {"loss": "bf16", "score": "bf16"},
                   ("ease", "bf16"): {"loss": "fp32", "score": "bf16"}}  # its fit: float32
    tables = (out / "tables.md").read_text()
    # one table of the default recipes, a row per (variant, precision) that says which
    assert "| mult-dae@bf16 " in tables and "| mult-dae " in tables and "| ease@bf16 " in tables
    assert "bf16)" not in tables


def test_auto_runs_each_variant_in_its_own_precision_where_the_device_has_it(monkeypatch):
    """`--precision auto` (the default): a variant registered with bf16 runs in it where the
    CPU multiplies bf16 natively, and in fp32 where bf16 is emulated or the mode is per-user;
    an asked precision is what runs."""
    from aebench.bench.engines import precision as prec
    from aebench.bench.runs.runner import grid

    registry = models.registry._REGISTRY
    monkeypatch.setitem(registry, "mult-dae",
                        dataclasses.replace(registry["mult-dae"], precision="bf16"))
    for native in (True, False):
        monkeypatch.setattr(prec, "native_bf16", lambda device, n=native: n)
        cells = {c.model: c.precision
                 for c in grid(["mult-dae", "mult-vae", "ease"], ["synthetic"], ["cpu"],
                               precision="auto")}
        assert cells == {"mult-dae": "bf16" if native else "fp32", "mult-vae": "fp32",
                         "ease": "fp32"}
        assert {c.precision for c in grid(["mult-dae"], ["synthetic"], ["cpu"],
                                          precision="fp32")} == {"fp32"}
    monkeypatch.setattr(prec, "native_bf16", lambda device: True)
    assert prec.resolve("auto", "bf16", "cpu", mode="per-user") == "fp32"
    assert prec.resolve("auto", "tf32", "cpu") == "fp32"  # TF32 is CUDA's
    assert prec.resolve("bf16", "fp32", "cpu") == "bf16"


def test_a_low_default_precision_needs_a_loss_that_may_run_low():
    cfg = models.config("sparse-fc")  # L-BFGS: its loss keeps float32
    with pytest.raises(ValueError, match="loss keeps float32"):
        models.register("sparse-fc-bf16", models.get("sparse-fc").build, cfg, "test",
                        precision="bf16")
    with pytest.raises(ValueError, match="precision 'fp16' unknown"):
        models.register("mult-dae-fp16", models.get("mult-dae").build,
                        models.config("mult-dae"), "test", precision="fp16")
    assert "sparse-fc-bf16" not in models.list() and "mult-dae-fp16" not in models.list()


@pytest.mark.parametrize("argv, message", [
    (["-m", "mult-dae", "--precision", "tf32"], "tf32 is a CUDA matmul mode"),
    (["-m", "sae-20-10-20", "--precision", "bf16", "--mode", "per-user"],
     "per-user mode runs the classic float32 kernels"),
])
def test_impossible_precisions_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "-d", "synthetic", *argv])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_a_config_names_only_known_parts():
    with pytest.raises(ValueError, match="low_precision"):
        models.create("mult-dae", 4, 4, low_precision=("loss", "fit"))


def test_speed_times_both_precisions_against_each_peak(tmp_path):
    out = tmp_path / "speed.json"
    assert main(["speed", "-m", "mult-dae", "ease", "-d", "synthetic", "--precisions", "fp32",
                 "bf16", "--repeats", "1", "--peak-size", "256", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert set(data["matmul_peaks_gflops"]) == {"fp32", "bf16"}
    rows = {(r["model"], r["path"], r["precision"]) for r in data["rows"]}
    # the closed-form fit runs once, in float32; the batched path in both
    assert rows == {("mult-dae", "batched", "fp32"), ("mult-dae", "batched", "bf16"),
                    ("ease", "fit", "fp32")}
