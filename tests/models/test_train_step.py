"""A new way of training is one family file and its registration: the batched engine calls
each family's `train_step`, so a family that steps in its own way (here signSGD, which moves
every weight by exactly its learning rate against the sign of its gradient) trains through
the engine and the runner with no change to any file under bench/."""

from dataclasses import dataclass, field

import pytest
import torch
import torch.nn.functional as F
from aebench.bench.runs.runner import RunConfig, SplitCache, execute
from aebench.models import registry
from aebench.models.base import Batch, ModelConfig, Recipe, Recommender
from torch import nn

from aebench import models

LR = 1e-3


@dataclass(frozen=True)
class SignConfig(ModelConfig):
    feedback: str = "implicit"
    batched: Recipe | None = field(default_factory=lambda: Recipe(
        optimizer="sgd", lr=LR, weight_decay=0.0, epochs=3, batch_size=64))


class SignAE(Recommender):
    """A one-layer user autoencoder trained by signSGD (its own step, not the optimizer's)."""

    def __init__(self, n_items: int):
        super().__init__()
        self.encoder = nn.EmbeddingBag(n_items, 8, mode="sum")
        self.decoder = nn.Linear(8, n_items)

    def forward(self, batch: Batch) -> torch.Tensor:
        p = batch.pattern
        return self.decoder(torch.tanh(self.encoder(p.cols, p.crow[:-1],
                                                    per_sample_weights=batch.values)))

    def loss(self, batch: Batch) -> torch.Tensor:
        log_p = F.log_softmax(self(batch), dim=1)
        return -(log_p[batch.entry_rows(), batch.pattern.cols] * batch.values).sum() / batch.size

    def score(self, batch: Batch) -> torch.Tensor:
        return self(batch)

    def train_step(self, batch, optimizer, autocast, counts) -> torch.Tensor:
        with autocast():
            loss = self.loss(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            for p in self.parameters():
                if p.grad is not None:
                    p -= optimizer.param_groups[0]["lr"] * p.grad.sign()
        counts["sign_steps"] = counts.get("sign_steps", 0) + 1
        return loss


@pytest.fixture
def sign_ae(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    models.register("sign-ae", lambda rows, cols, cfg: SignAE(cols), SignConfig(),
                    "a test family that steps by signSGD")
    return "sign-ae"


def test_a_family_with_its_own_step_trains_through_engine_and_runner(sign_ae):
    cfg = RunConfig(model=sign_ae, dataset="synthetic", valid_fraction=0.0)
    torch.manual_seed(0)
    before = {k: v.clone() for k, v in SignAE(200).state_dict().items()}
    record, artifacts = execute(cfg, SplitCache())
    assert record.ok, record.traceback
    # the engine called the family's step: each epoch's row counts its steps
    batches = -(-record.split.n_users // 64)
    assert [h["sign_steps"] for h in record.history] == [batches] * 3
    # and that step moved weights by whole multiples of the learning rate, as signSGD does
    moved = artifacts["state_dict"]["decoder.bias"] - before["decoder.bias"]
    steps = (moved / LR).round()
    assert torch.allclose(moved, steps * LR, atol=1e-6) and steps.abs().max() >= 1
    assert record.metrics["ndcg@10"] > 0
