"""CUDA paths; skipped cleanly where no CUDA device is available."""

import pytest
import torch

import datasets
import models
from bench.evaluate import evaluate
from bench.train import fit

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]


@pytest.mark.parametrize("mode", ["batched", "per-user"])
def test_cuda_training_matches_cpu_closely(mode):
    split = datasets.make_split(datasets.load("synthetic"), "random-90-10")
    out = {}
    for dev in ("cpu", "cuda"):
        torch.manual_seed(0)
        cfg = models.config("sae-20-10-20")
        model = models.get("sae-20-10-20").build(split.n_users, split.n_items, cfg).to(dev)
        hist = fit(model, split.train, cfg, mode, torch.device(dev), 0, 2).history
        out[dev] = (hist[-1]["train_loss"], evaluate(model, cfg, split, torch.device(dev))[0])
    assert out["cuda"][0] == pytest.approx(out["cpu"][0], rel=1e-2)
    assert out["cuda"][1]["rmse"] == pytest.approx(out["cpu"][1]["rmse"], rel=1e-2)
