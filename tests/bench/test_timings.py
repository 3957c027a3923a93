"""What users gate merges on: one batched epoch per variant, the classic loop on a slice, a
full evaluation pass, and loading ml-1m. Inputs are built outside the timed part."""

from __future__ import annotations

import pytest
import torch
from aebench.bench.engines import classic
from aebench.bench.engines.train import make_engine
from aebench.bench.evaluation.evaluate import evaluate
from aebench.bench.speed import slice_split

from aebench import datasets, models

CPU = torch.device("cpu")
CLASSIC_SLICE = 300  # users: the classic loop costs the same per user, so a slice is enough


def _model(name, split):
    torch.manual_seed(0)
    cfg = models.config(name)
    x = cfg.view(split.train)
    return models.get(name).build(x.shape[0], x.shape[1], cfg), cfg, x


def _epochs(name: str) -> bool:
    """Variants trained by mini-batch epochs (an L-BFGS round is timed apart, below)."""
    r = models.config(name).batched
    return r is not None and r.optimizer != "lbfgs"


@pytest.mark.parametrize("name", [n for n in models.list() if _epochs(n)])
def test_batched_epoch(benchmark, ml1m_shaped, name):
    model, cfg, x = _model(name, ml1m_shaped)
    model.setup(x)
    engine = make_engine(model, x, cfg, "batched", CPU, 0)
    benchmark.extra_info["ratings"] = int(ml1m_shaped.train.nnz)
    loss = benchmark.pedantic(engine.epoch, rounds=5, warmup_rounds=1)
    assert loss == loss  # finite, not NaN


def test_lbfgs_iteration(benchmark, ml1m_shaped):
    """One full-batch L-BFGS iteration of the kernel autoencoder (a round of one)."""
    torch.manual_seed(0)
    cfg = models.config("sparse-fc", **{"batched.iterations": 1})
    x = cfg.view(ml1m_shaped.train)
    model = models.get("sparse-fc").build(x.shape[0], x.shape[1], cfg)
    engine = make_engine(model, x, cfg, "batched", CPU, 0)
    loss = benchmark.pedantic(engine.epoch, rounds=3, warmup_rounds=1)
    assert loss == loss


@pytest.mark.parametrize("name", ["sae-20-10-20", "sae-200-100-200"])
def test_classic_loop_slice(benchmark, ml1m_shaped, name):
    model, cfg, _ = _model(name, ml1m_shaped)
    ref = classic.ClassicSAE(ml1m_shaped.n_items, cfg.hidden).load_from(model)
    opt = classic.make_optimizer(ref, cfg.per_user.lr, cfg.per_user.weight_decay)
    dense = torch.tensor(ml1m_shaped.train[:CLASSIC_SLICE].toarray())
    benchmark.extra_info["users"] = CLASSIC_SLICE
    benchmark.pedantic(classic.train_epoch, args=(ref, opt, dense), rounds=3)


@pytest.mark.parametrize("name", ["sae-20-10-20", "sae-200-100-200"])
def test_per_user_slice(benchmark, ml1m_shaped, name):
    model, cfg, _ = _model(name, ml1m_shaped)
    split = slice_split(ml1m_shaped, CLASSIC_SLICE)
    engine = make_engine(model, split.train, cfg, "per-user", CPU, 0)
    benchmark.extra_info["users"] = CLASSIC_SLICE
    benchmark.pedantic(engine.epoch, rounds=3, warmup_rounds=1)


@pytest.mark.parametrize("name", ["sae-20-10-20", "sae-200-100-200", "autorec-i", "mult-vae",
                                  "ease"])
def test_evaluation_pass(benchmark, ml1m_shaped, name):
    """Every protocol at once (`evaluate`): rating errors, training errors, full ranking."""
    model, cfg, x = _model(name, ml1m_shaped)
    model.setup(x)
    if model.trainer == "closed-form":
        model.fit(x)
    out = benchmark.pedantic(lambda: evaluate(model, cfg, ml1m_shaped, CPU)[0], rounds=3,
                             warmup_rounds=1)
    assert "ndcg@10" in out and ("rmse" in out) == cfg.rates


def test_load_ml1m(benchmark, real_data_dir):
    """The loader target: ml-1m's 1,000,209 ratings in under 2 s on the 2-core CI machine."""
    ds = benchmark.pedantic(datasets.load, args=("ml-1m", real_data_dir),
                            kwargs={"download": False}, rounds=3, warmup_rounds=1)
    assert ds.n_ratings == 1_000_209
