"""Mult-VAE whose encoder also reads the user's side information: the variational hybrid of
the cold-start study, after the collaborative-VAE idea (Li and She, "Collaborative
Variational Autoencoder for Recommender Systems", KDD 2017: content through the inference
network) applied on the user side of Liang et al.'s Mult-VAE (`models/mult.py`), with
DropoutNet's input dropout (Volkovs et al., NeurIPS 2017).

The encoder's first layer reads [x_u; f_u], the normalised interaction row and the user's
encoded demographics (`W x_u + V f_u + b`); the rest is Mult-VAE unchanged (multinomial
likelihood, KL annealed to 0.2). A user who has rated nothing is encoded from f_u alone.
In training, a row's whole interaction input is dropped with probability `row_dropout` (its
likelihood still counts every interaction), so the encoder learns what demographics alone
say; with `row_dropout` 0 and all-zero features it is Mult-VAE.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .base import Batch, Side, Space, Uniform, side_rows
from .mult import SOURCE, SPACE, Mult, MultConfig
from .registry import register


@dataclass(frozen=True)
class MultSideConfig(MultConfig):
    variational: bool = True
    features: tuple[str, ...] = ("user",)
    row_dropout: float = 0.25   # probability a training row's whole input is dropped


class MultSide(Mult):
    def __init__(self, n_rows: int, n_items: int, cfg: MultSideConfig):
        super().__init__(n_items, cfg)
        self.register_buffer("features", torch.zeros(n_rows, 0), persistent=False)
        self.side_in: nn.Linear | None = None

    def attach(self, side: Side) -> None:
        if side.rows is None or side.rows.shape[1] == 0:
            return
        self.features = side.rows.to(torch.float32).clone()
        self.side_in = nn.Linear(side.rows.shape[1], self.first.weight.shape[1], bias=False)
        nn.init.xavier_uniform_(self.side_in.weight)

    def _first(self, batch: Batch, values: torch.Tensor) -> torch.Tensor:
        """Mult-VAE's first layer plus the demographics' map; in training a row's whole
        interaction input is dropped with probability `row_dropout` first."""
        if self.training and self.cfg.row_dropout > 0:
            keep = torch.rand(batch.size, device=values.device) >= self.cfg.row_dropout
            values = values * keep.index_select(0, batch.entry_rows())
        z = super()._first(batch, values)
        if self.side_in is not None:
            z = z + self.side_in(side_rows(self.features, batch.rows, batch.side))
        return z


def _build(n_rows: int, n_cols: int, cfg: MultSideConfig) -> MultSide:
    return MultSide(n_rows, n_cols, cfg)


register("mult-vae-side", _build,
         MultSideConfig(note="mult-vae's recipe with demographics in the encoder and a whole "
                             "row's input dropped with probability 0.25 in training"),
         SOURCE + "; KL annealed to beta 0.2; the encoder also reads the user's demographics "
                  "(Li and She, KDD 2017, on the user side), DropoutNet's input dropout",
         space=Space({**SPACE.params, "beta_cap": Uniform(0.05, 1.0),
                      "row_dropout": Uniform(0.0, 0.8)},
                     SPACE.reason + "; the KL cap and the share of rows read from "
                                    "demographics alone"))
