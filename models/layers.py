"""Layers shared by the autoencoder families."""

from __future__ import annotations

import torch
from torch import nn

from .sparse_ops import CSRBatch, sparse_linear

ACTIVATIONS = {"sigmoid": torch.sigmoid, "relu": torch.relu, "tanh": torch.tanh,
               "identity": lambda x: x}


class ItemLinear(nn.Module):
    """The first layer, x @ weight + bias, with `weight` stored item-major (in x out).

    The sparse paths gather rows of items (the batched first layer is an `embedding_bag` over
    them, its gradient an item-major sum; the per-user engine reads a user's rated rows), so
    this layout spares a transposed copy of the largest matrix at every step. Initialised as
    `nn.Linear(n_in, n_out)` is, from the same random draws.
    """

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        dense = nn.Linear(n_in, n_out)
        self.weight = nn.Parameter(dense.weight.detach().t().contiguous())
        self.bias = dense.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias, x, self.weight)

    def sparse(self, pattern: CSRBatch, values: torch.Tensor) -> torch.Tensor:
        """The same product for rows given as a CSR pattern and its values."""
        return sparse_linear(self.weight, self.bias, pattern, values)
