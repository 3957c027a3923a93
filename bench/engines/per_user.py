"""The faithful `per-user` engine: the classic recipe, step for step, at a fraction of its cost.

Semantics kept from the classic loop (`bench/engines/classic.py`): users visited in index order, one
RMSprop step per user with at least one training rating, loss = squared error on the user's
observed ratings / n_items (or / n_rated under `Recipe.loss="rated"`, the ML-1M notebook's
masked MSE), and by default gradients never zeroed, so each step applies the
running sum of every gradient since the start (`Recipe.zero_grad=True` gives textbook SGD
semantics instead). Because RMSprop divides by a running RMS of that growing sum, the
accumulated term soon dominates the weight decay of 0.5; zeroing gradients with the classic
weight decay shrinks the weights hard and gives a much worse model.

What changes is the cost: forward and backward touch only the user's observed items (row
gathers of the item-major first layer and of the output layer) with gradients written by hand
into one flat buffer, and the RMSprop update is one fused pass over that buffer
(`bench/engines/optim.py`). No autograd graph is built. `Recipe.optimizer="sgd"` takes plain
gradient
steps over the same buffer instead.

The engine trains any model that exposes a dense layer stack (`Recommender.stack()`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from aebench.bench.engines.optim import rmsprop_, sgd_
from aebench.models.base import LOSSES, Recipe, Recommender, Stack
from aebench.models.layers import ACTIVATIONS

# derivative of each activation written in terms of its output h
_DERIVATIVE = {
    "sigmoid": lambda h: h * (1 - h),
    "tanh": lambda h: 1 - h * h,
    "relu": lambda h: (h > 0).to(h.dtype),
    "identity": lambda h: torch.ones_like(h),
}


def _views(flat: torch.Tensor, params: list[torch.Tensor]) -> list[torch.Tensor]:
    """Slices of `flat` shaped like `params`, in order."""
    out, offset = [], 0
    for p in params:
        out.append(flat[offset:offset + p.numel()].view_as(p))
        offset += p.numel()
    return out


def _flatten(stack: Stack) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Move every parameter into one flat buffer; parameters become views of it."""
    params = [p for layer in stack.layers for p in (layer.weight, layer.bias)]
    flat = torch.cat([p.detach().reshape(-1) for p in params])
    views = _views(flat, params)
    for p, v in zip(params, views):
        p.data = v
    return flat, views


STEPS = ("rmsprop", "sgd")  # the per-user engine's optimizers


class PerUserEngine:
    def __init__(self, model: Recommender, train: sp.csr_matrix, recipe: Recipe,
                 device: torch.device, generator: torch.Generator, use_numba: bool = True):
        stack = model.stack()
        if stack is None:
            raise ValueError(f"{type(model).__name__} has no dense layer stack: per-user mode "
                             "trains stacked autoencoders only")
        if recipe.optimizer not in STEPS:
            raise ValueError(f"per-user mode implements the classic optimizers "
                             f"{', '.join(STEPS)} only; got optimizer {recipe.optimizer!r}")
        if recipe.loss not in LOSSES:
            raise ValueError(f"loss {recipe.loss!r} unknown; choose from {', '.join(LOSSES)}")
        if stack.activation not in _DERIVATIVE:
            raise ValueError(f"per-user mode supports activations {', '.join(_DERIVATIVE)}")
        self.model, self.recipe, self.gen, self.use_numba = model, recipe, generator, use_numba
        self.deriv = _DERIVATIVE[stack.activation]
        self.act = ACTIVATIONS[stack.activation]
        self.dropout, self.corruption = stack.dropout, stack.corruption
        self.flat, views = _flatten(stack)
        self.weights, self.biases = views[0::2], views[1::2]
        self.grad = torch.zeros_like(self.flat)
        gviews = _views(self.grad, views)
        self.gw, self.gb = gviews[0::2], gviews[1::2]
        self.square_avg = torch.zeros_like(self.flat)
        self.indptr = train.indptr.astype(np.int64)
        self.items = torch.as_tensor(train.indices.astype(np.int64), device=device)
        self.values = torch.as_tensor(train.data, device=device)
        self.users = np.flatnonzero(np.diff(self.indptr) > 0)
        self.n_items = train.shape[1]

    in_last_stage = True  # per-user training has no stages

    def epoch(self) -> float:
        """One pass over users; returns the classic printed loss, mean of sqrt(SE / n_rated)."""
        w, b, gw, gb = self.weights, self.biases, self.gw, self.gb
        rec, act, deriv = self.recipe, self.act, self.deriv
        dropout, corruption = self.dropout, self.corruption
        last = len(w) - 1
        keep = 1.0 - dropout
        per_item = rec.loss == "items"
        losses = []
        for u in self.users:
            lo, hi = self.indptr[u], self.indptr[u + 1]
            idx, r = self.items[lo:hi], self.values[lo:hi]
            x = r
            if corruption > 0:
                x = r * (torch.rand(r.shape, generator=self.gen, device=r.device)
                         >= corruption)
            w_in = w[0].index_select(0, idx)
            hs = [act(torch.addmv(b[0], w_in.t(), x))]
            masks = []
            for k in range(1, last):
                h = hs[-1]
                if dropout > 0:
                    m = (torch.rand(h.shape, generator=self.gen, device=h.device) < keep)
                    m = m.to(h.dtype) / keep
                    masks.append(m)
                    h = h * m
                hs.append(act(torch.addmv(b[k], w[k], h)))
            w_out = w[last].index_select(0, idx)
            err = torch.addmv(b[last].index_select(0, idx), w_out, hs[-1]) - r
            losses.append(err.dot(err) / (hi - lo))
            if rec.zero_grad:
                self.grad.zero_()
            d = err * (2.0 / (self.n_items if per_item else hi - lo))
            gw[last].index_add_(0, idx, torch.outer(d, hs[-1]))
            gb[last].index_add_(0, idx, d)
            dh = w_out.t().mv(d)
            for k in range(last - 1, 0, -1):
                dz = dh * deriv(hs[k])
                h_in = hs[k - 1] * masks[k - 1] if masks else hs[k - 1]
                gw[k].addr_(dz, h_in)
                gb[k].add_(dz)
                dh = w[k].t().mv(dz)
                if masks:
                    dh = dh * masks[k - 1]
            dz = dh * deriv(hs[0])
            gw[0].index_add_(0, idx, torch.outer(x, dz))
            gb[0].add_(dz)
            if rec.optimizer == "sgd":
                sgd_(self.flat, self.grad, rec.lr, rec.weight_decay)
            else:
                rmsprop_(self.flat, self.grad, self.square_avg, rec.lr, rec.weight_decay,
                         use_numba=self.use_numba)
        return float(torch.stack(losses).sqrt().mean())
