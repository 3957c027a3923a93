"""Biased matrix factorisation with item side features, a linear hybrid reference (the
factorisation-with-features model of LightFM, Kula, CBRecSys 2015, on explicit ratings, and
of Koren et al.'s "additional input sources"):

    r_ui = mu + b_u + (b_i + w . f_i) + p_u . (q_i + W^T f_i),

an item's bias and factors are its own plus what its features (genres, year) map to. The own
parts start at zero and are regularised per rating, as `mf`'s factors are, so a film with no
training rating keeps them at zero and is scored from its features alone; a rated film adds
what its ratings say. Trained like `mf` (Adam on mini-batches of user rows, squared error
plus per-rating L2); the feature maps carry an L2 of their own (`feature_reg`). A vector per
training user: not inductive (it scores cold films, not cold users).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .base import IntRange, LogUniform, Recipe, Side, Space
from .mf import MF, MFConfig
from .registry import register


@dataclass(frozen=True)
class SideMFConfig(MFConfig):
    features: tuple[str, ...] = ("item",)
    feature_reg: float = 1e-3   # L2 on the feature maps, per batch
    batched: Recipe | None = field(default_factory=lambda: Recipe(
        optimizer="adam", lr=0.005, weight_decay=0.0, epochs=150, batch_size=128))


class SideMF(MF):
    def __init__(self, n_users: int, n_items: int, cfg: SideMFConfig):
        super().__init__(n_users, n_items, cfg)
        with torch.no_grad():
            self.item.zero_()  # an item's own factors: zero until its ratings move them
        self.register_buffer("features", torch.zeros(n_items, 0), persistent=False)
        self.map: nn.Linear | None = None       # made by `attach`
        self.map_bias: nn.Linear | None = None
        self.feature_reg = cfg.feature_reg

    def attach(self, side: Side) -> None:
        if side.cols is None or side.cols.shape[1] == 0:
            return
        d = side.cols.shape[1]
        self.features = side.cols.to(torch.float32).clone()
        self.map = nn.Linear(d, self.user.shape[1], bias=False)
        self.map_bias = nn.Linear(d, 1, bias=False)
        with torch.no_grad():
            self.map.weight.normal_(0.0, 0.01)
            self.map_bias.weight.zero_()

    def items(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every item's factors and bias: its own plus its features' maps."""
        if self.map is None:
            return self.item, self.item_bias
        return (self.item + self.map(self.features),
                self.item_bias + self.map_bias(self.features).squeeze(1))

    def extra_penalty(self) -> torch.Tensor | float:
        """L2 on the feature maps (`feature_reg`); mf's per-rating L2 covers the rest."""
        if self.map is None:
            return 0.0
        return self.feature_reg * (self.map.weight.square().sum()
                                   + self.map_bias.weight.square().sum())


def _build(n_rows: int, n_cols: int, cfg: SideMFConfig) -> SideMF:
    return SideMF(n_rows, n_cols, cfg)


register("side-mf", _build,
         SideMFConfig(note="mf's recipe (128 factors, lambda 0.08, Adam lr 0.005, batch 128) "
                           "with item feature maps (L2 1e-3)"),
         "biased MF whose item bias and factors add a linear map of the item's features "
         "(LightFM, Kula 2015, on ratings); own item parts start at zero",
         kind="reference",
         space=Space({"dim": IntRange(16, 256, 16), "reg": LogUniform(1e-3, 0.3),
                      "feature_reg": LogUniform(1e-6, 1e-1),
                      "batched.lr": LogUniform(1e-4, 3e-2)},
                     "mf's space plus the feature maps' penalty"))
