"""CUDA paths of every family against the CPU; skipped cleanly where no CUDA device is
available (the same code paths run on the CPU through `--engine-paths cuda`, see
tests/test_engine_paths.py)."""

import pytest
import torch
from aebench.bench.engines.device import MemoryProbe
from aebench.bench.engines.train import fit
from aebench.bench.evaluation.evaluate import evaluate

from aebench import datasets, models

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]

CELLS = [(name, mode) for name in models.list() for mode in ("batched", "per-user")
         if mode == "batched" or models.config(name).per_user is not None]


@pytest.mark.parametrize("name, mode", CELLS)
def test_cuda_training_matches_cpu_closely(name, mode):
    split = datasets.make_split(datasets.load("synthetic"), "random-90-10")
    out = {}
    for dev in ("cpu", "cuda"):
        torch.manual_seed(0)
        cfg = models.config(name)
        x = cfg.view(split.train)
        model = models.get(name).make(x.shape[0], x.shape[1], cfg).to(dev)
        hist = fit(model, x, cfg, mode, torch.device(dev), 0, 2).history
        out[dev] = (hist[-1]["train_loss"], evaluate(model, cfg, split, torch.device(dev))[0])
    metric = "rmse" if models.config(name).rates else "ndcg@10"
    if out["cpu"][0] is not None and "cdae" not in name and "mult-vae" not in name:
        assert out["cuda"][0] == pytest.approx(out["cpu"][0], rel=1e-2)  # random draws differ
    assert out["cuda"][1][metric] == pytest.approx(out["cpu"][1][metric], rel=5e-2, abs=1e-2)


def test_memory_probe_reads_the_allocator_peak():
    probe = MemoryProbe(torch.device("cuda"))
    probe.reset()
    block = torch.ones(64 * 2**20 // 4, device="cuda")
    fields = probe.fields()
    assert fields["peak_mem_kind"] == "cuda-allocated" and fields["peak_mem_mb"] >= 64
    del block
