"""How one training step runs, by optimizer: a table the default `Recommender.train_step`
reads, so that a new way of stepping is an entry here and a family with its own step
overrides `train_step`; the engines name neither.

Each step takes (model, batch, optimizer, autocast, counts): `autocast()` is the context the
loss may run in (the cell's precision where the family allows it), and `counts` gathers the
work a step reports beyond its loss (L-BFGS iterations and loss evaluations)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def gradient_step(model, batch, optimizer, autocast: Callable, counts: dict,
                  loss_of: Callable | None = None) -> torch.Tensor:
    """Loss (`model.loss`, or `loss_of`), backward, one optimizer step; returns the loss."""
    with autocast():
        loss = (loss_of or model.loss)(batch)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss


def lbfgs_round(model, batch, optimizer: torch.optim.LBFGS, autocast: Callable,
                counts: dict) -> torch.Tensor:
    """One L-BFGS round on the batch: the optimizer's `max_iter` iterations from a fresh
    memory; returns the loss at the round's end. That is the lowest loss the round evaluated:
    each iteration's strong-Wolfe line search keeps the lowest point it tried, below where
    the iteration began, so no forward pass beyond the round's own is needed."""
    optimizer.state.clear()
    seen: list[torch.Tensor] = []

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            loss = model.loss(batch)
        loss.backward()
        seen.append(loss.detach())
        return loss

    optimizer.step(closure)
    state = optimizer.state[optimizer.param_groups[0]["params"][0]]
    for key, n in (("lbfgs_iterations", state.get("n_iter", 0)),
                   ("lbfgs_evaluations", len(seen))):
        counts[key] = counts.get(key, 0) + n
    return torch.stack(seen).nan_to_num(nan=math.inf).min()


STEPS: dict[type, Callable] = {torch.optim.LBFGS: lbfgs_round}  # else gradient_step


def step_for(optimizer: torch.optim.Optimizer) -> Callable:
    return STEPS.get(type(optimizer), gradient_step)
