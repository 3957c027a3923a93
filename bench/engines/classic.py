"""The classic per-user SAE loop, written as the seed notebooks write it.

Kept verbatim in spirit as the reference implementation: the speed benchmark times it, and
tests check that the faithful `per-user` engine follows its trajectory. It trains on a dense
users x items tensor, one optimizer step per user with at least one rating; the loss is
`nn.MSELoss` over the whole item row with unobserved outputs set to 0, so it equals the squared
error on observed ratings divided by the number of items. `optimizer.zero_grad()` is never
called, so every step applies the running sum of all gradients so far (the classic quirk).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn, optim


class ClassicSAE(nn.Module):
    def __init__(self, nb_movies: int, hidden: tuple[int, ...] = (20, 10, 20)):
        super().__init__()
        self.fc1 = nn.Linear(nb_movies, hidden[0])
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.fc3 = nn.Linear(hidden[1], hidden[2])
        self.fc4 = nn.Linear(hidden[2], nb_movies)
        self.activation = nn.Sigmoid()

    def forward(self, x):
        x = self.activation(self.fc1(x))
        x = self.activation(self.fc2(x))
        x = self.activation(self.fc3(x))
        x = self.fc4(x)
        return x

    def load_from(self, model: nn.Module) -> ClassicSAE:
        """Copy the weights of a model's dense layer stack (`Recommender.stack()`) of the same
        shape, for trajectory checks."""
        with torch.no_grad():
            for k, (mine, theirs) in enumerate(zip((self.fc1, self.fc2, self.fc3, self.fc4),
                                                   model.stack().layers)):
                mine.weight.copy_(theirs.weight.t() if k == 0 else theirs.weight)  # item-major
                mine.bias.copy_(theirs.bias)
        return self


def hidden_of(model: nn.Module) -> tuple[int, ...]:
    """The hidden widths of a model's dense layer stack (`Recommender.stack()`)."""
    return tuple(layer.bias.shape[0] for layer in model.stack().layers[:-1])


def from_model(model: nn.Module) -> ClassicSAE:
    """The classic notebook module with the same shape and weights as `model`'s stack."""
    stack = model.stack()
    return ClassicSAE(stack.layers[0].weight.shape[0], hidden_of(model)).load_from(model)


def masked_mse(output, target):
    """The ML-1M notebook's loss (its own `MSELoss` class): squared error over the rated
    items divided by their number, where `nn.MSELoss` divides by the number of items."""
    mask = (target != 0).float()
    return torch.sum(torch.pow(output * mask - target, 2)) / mask.sum()


CRITERIA = {"items": nn.MSELoss(), "rated": masked_mse}  # by `Recipe.loss`


def make_optimizer(sae: ClassicSAE, lr: float = 0.01, weight_decay: float = 0.5):
    return optim.RMSprop(sae.parameters(), lr=lr, weight_decay=weight_decay)


def train_epoch(sae, optimizer, training_set, criterion=None, order=None):
    """One classic epoch; returns the notebook's printed `train_loss / s` (a per-user RMSE
    under the default `nn.MSELoss`; with another criterion compare test losses instead)."""
    criterion = criterion or nn.MSELoss()
    nb_users, nb_movies = training_set.shape
    train_loss = 0
    s = 0.
    for id_user in (range(nb_users) if order is None else order):
        input = training_set[id_user].unsqueeze(0)
        target = input.clone()
        if torch.sum(target.data > 0) > 0:
            output = sae(input)
            target.require_grad = False
            output[target == 0] = 0
            loss = criterion(output, target)
            mean_corrector = nb_movies / float(torch.sum(target.data > 0) + 1e-10)
            loss.backward()
            train_loss += np.sqrt(loss.data * mean_corrector)
            s += 1.
            optimizer.step()
    return float(train_loss / s)


def test_loss(sae, training_set, test_set, criterion=None):
    """The notebooks' test figure: mean over users of sqrt(mse * nb_movies / n_rated)."""
    criterion = criterion or nn.MSELoss()
    nb_users, nb_movies = training_set.shape
    loss_sum = 0
    s = 0.
    with torch.no_grad():
        for id_user in range(nb_users):
            input = training_set[id_user].unsqueeze(0)
            target = test_set[id_user].unsqueeze(0)
            if torch.sum(target.data > 0) > 0:
                output = sae(input)
                output[target == 0] = 0
                loss = criterion(output, target)
                mean_corrector = nb_movies / float(torch.sum(target.data > 0) + 1e-10)
                loss_sum += np.sqrt(loss.data * mean_corrector)
                s += 1.
    return float(loss_sum / s)
