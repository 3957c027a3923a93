"""The code paths CUDA takes by default, selected on the CPU (`EngineOptions`, `--engine-paths
cuda`) and checked against the CPU defaults: the batched engine's full-width output, torch's
multi-tensor optimizer, the per-user engine's torch-op RMSprop, device synchronisation and
the memory fields of a record."""

import pytest
import torch
from aebench.bench.cli import main
from aebench.bench.engines.batched import EngineOptions, make_optimizer
from aebench.bench.engines.device import MemoryProbe, synchronize
from aebench.bench.engines.train import fit
from aebench.bench.runs import records

from aebench import datasets, models

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def split():
    return datasets.make_split(datasets.load("synthetic"), "random-90-10")


def test_presets_resolve_as_on_each_device():
    auto, cuda = EngineOptions(), EngineOptions.preset("cuda")
    gpu = torch.device("cuda")
    assert (auto.dense_output(CPU), auto.optimizer_impl(CPU), auto.use_numba(CPU)) == \
        (False, "fused", True)
    assert (auto.dense_output(gpu), auto.optimizer_impl(gpu), auto.use_numba(gpu)) == \
        (True, "foreach", False)
    assert (cuda.dense_output(CPU), cuda.optimizer_impl(CPU), cuda.use_numba(CPU)) == \
        (True, "foreach", False)
    with pytest.raises(ValueError, match="engine paths 'tpu' unknown"):
        EngineOptions.preset("tpu")


def _train(name, split, mode, options, epochs=3):
    torch.manual_seed(0)
    cfg = models.config(name)
    x = cfg.view(split.train)
    model = models.get(name).make(x.shape[0], x.shape[1], cfg)
    result = fit(model, x, cfg, mode, CPU, 0, epochs, options=options)
    return [h["train_loss"] for h in result.history], model


@pytest.mark.parametrize("name", ["sae-200-100-200", "sae-denoising", "autorec-i", "mf"])
def test_batched_cuda_paths_agree_with_the_cpu_defaults(name, split):
    """Dense outputs gathered afterwards and the foreach optimizer against the sampled
    outputs and the fused optimizer: the same trajectory up to float rounding."""
    want, a = _train(name, split, "batched", EngineOptions())
    got, b = _train(name, split, "batched", EngineOptions.preset("cuda"))
    assert got == pytest.approx(want, rel=2e-4)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-3, atol=1e-4)


def test_dense_and_sampled_outputs_give_the_same_gradients(split):
    from aebench.bench.evaluation.evaluate import score_rows  # noqa: F401 (the same Batch the engines build)

    from tests.models.test_families import batch_of

    torch.manual_seed(0)
    model, cfg = models.create("sae-20-10-20", split.n_users, split.n_items)
    b = batch_of(split.train[:30])
    grads = []
    for dense in (False, True):
        model.zero_grad()
        model.loss(type(b)(b.rows, b.pattern, b.values, dense_output=dense)).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for g1, g2 in zip(*grads):
        torch.testing.assert_close(g1, g2, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("impl", ["fused", "foreach", "single"])
def test_optimizer_implementations_agree(impl):
    torch.manual_seed(0)
    ref = [torch.randn(50, 4, requires_grad=True), torch.randn(4, requires_grad=True)]
    for kind in ("adam", "rmsprop", "sgd", "rprop"):
        recipe = models.Recipe(optimizer=kind, lr=0.01,
                               weight_decay=0.0 if kind == "rprop" else 0.1)
        params = [p.detach().clone().requires_grad_() for p in ref]
        base = [p.detach().clone().requires_grad_() for p in ref]
        opt = make_optimizer(params, recipe, CPU, EngineOptions(optimizer=impl))
        plain = make_optimizer(base, recipe, CPU, EngineOptions(optimizer="single"))
        for _ in range(4):
            g = [torch.randn_like(p) for p in ref]
            for ps in (params, base):
                for p, gi in zip(ps, g):
                    p.grad = gi.clone()
            opt.step()
            plain.step()
        for p, q in zip(params, base):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_per_user_torch_op_rmsprop_agrees_with_the_numba_kernel(split):
    """The same arithmetic in another order, so float rounding differs; RMSprop divides by the
    root of a running mean that is near zero for rarely rated items, which magnifies it epoch
    by epoch for those items' first-layer weights (relative difference 6e-5 after one epoch,
    4e-3 after two), while the losses and the predictions agree."""
    from aebench.bench.evaluation.evaluate import predict_at

    cfg = models.config("sae-20-10-20")
    want, a = _train("sae-20-10-20", split, "per-user", EngineOptions(), epochs=2)
    got, b = _train("sae-20-10-20", split, "per-user", EngineOptions(kernels="torch"), epochs=2)
    assert got == pytest.approx(want, rel=1e-5)
    pa, pb = (predict_at(m, cfg, split.train, split.test, CPU) for m in (a, b))
    assert abs(pa - pb).max() < 1e-4
    _, a1 = _train("sae-20-10-20", split, "per-user", EngineOptions(), epochs=1)
    _, b1 = _train("sae-20-10-20", split, "per-user", EngineOptions(kernels="torch"), epochs=1)
    for p, q in zip(a1.parameters(), b1.parameters()):
        assert float((p - q).detach().norm() / p.detach().norm()) < 1e-3


def test_synchronize_and_memory_probe_on_the_cpu():
    """A reset forgets an earlier peak; a later allocation raises the new one."""
    synchronize(CPU)
    probe = MemoryProbe(CPU)
    spike = torch.ones(300 * 2**20 // 4)  # 300 MiB, touched, then given back to the system
    del spike
    high = probe.peak_mb()
    probe.reset()
    if probe.kind == "cpu-rss-process":
        pytest.skip("this kernel does not let a process reset its resident high-water mark")
    low = probe.peak_mb()
    assert low < high - 250
    block = torch.ones(300 * 2**20 // 4)
    fields = probe.fields()
    assert fields["peak_mem_kind"] == "cpu-rss" and fields["peak_mem_mb"] > low + 250
    del block


def test_run_with_cuda_paths_on_the_cpu_matches_the_default_run(tmp_path):
    for paths in ("auto", "cuda"):
        assert main(["run", "-m", "sae-20-10-20", "-d", "synthetic", "--epochs", "4",
                     "--engine-paths", paths, "--out", str(tmp_path / paths)]) == 0
    auto, cuda = (records.load(tmp_path / p)[0] for p in ("auto", "cuda"))
    assert cuda["run_config"]["engine_paths"] == "cuda"
    assert cuda["metrics"]["rmse"] == pytest.approx(auto["metrics"]["rmse"], rel=1e-4)
    assert cuda["timings"]["peak_mem_mb"] > 0
    assert cuda["timings"]["peak_mem_kind"].startswith("cpu-rss")
