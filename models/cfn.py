"""CFN, the hybrid autoencoder of Strub, Gaudel and Mary ("Hybrid Recommender System based on
Autoencoders", DLRS 2016; "Hybrid Collaborative Filtering with Autoencoders", arXiv
1603.00806), after the authors' Torch code (`fstrub95/Autoencoders_cf`: `Appender.lua`,
`SDAECriterionGPU.lua`, `conf/conf.movieLens.1M.V.lua`); and the DropoutNet training scheme
(Volkovs, Yu and Poutanen, "DropoutNet: Addressing Cold Start in Recommender Systems",
NeurIPS 2017) on the same network.

A row of the rating matrix (an item's ratings by every user for the item-based V-CFN, the
paper's better network; a user's for U-CFN) plus the row's side information s:
    h = tanh(W1 [r~; s] + b1),   r^ = W2 [h; s] + b2,
the side information appended to the input and again to the hidden layer (the authors'
`AppenderIn` / `AppenderOut`), so a row with no rating at all (a film nobody rated, a person
who just signed up) is still scored from s. Without side information (`features` empty) the
network is the paper's plain CFN, the parent a hybrid is compared with.

Training, the authors' stacked denoising criterion (`SDAECriterionGPU`): a share `hide` of a
row's observed ratings is hidden from the input (masking noise), and the squared error on the
observed ratings weighs the hidden ones by `alpha` and the visible ones by `beta`, so that the
network learns to predict what it cannot see. Their ML-1M V-network: 700 tanh units, alpha
1.11, beta 0.72, hide 0.14, weight decay 0.025 under SGD (lr 0.09, mini-batches of 35 rows);
here the suite's batched Adam with the step and weight decay chosen on validation (SGD's
decay does not carry over to Adam's steps). The authors rescale stars to [-1, 1]; the output
layer is linear, so here it reads raw stars with its bias started at the training mean.

DropoutNet's idea (`row_dropout` > 0): in training, a row's whole preference input is
dropped (all its ratings hidden, all weighed by `alpha`) with probability `row_dropout`, so the
network must learn to reconstruct from content alone; Volkovs et al. found 0.5 best for cold
start. That is the `dropoutnet-*` variants; the network and the loss are CFN's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import scipy.sparse as sp
import torch
from torch import nn

from .base import (
    Batch,
    Choice,
    Flops,
    LogUniform,
    ModelConfig,
    Recipe,
    Recommender,
    Side,
    Space,
    Uniform,
    side_rows,
)
from .layers import ItemLinear
from .registry import register
from .sparse_ops import sampled_linear


@dataclass(frozen=True)
class CFNConfig(ModelConfig):
    rows: str = "item"
    hidden: int = 700           # the authors' ML-1M V-network
    alpha: float = 1.1          # weight of the hidden (masked) ratings' squared error
    beta: float = 0.7           # weight of the visible ratings' squared error
    hide: float = 0.15          # share of a row's observed ratings hidden from the input
    row_dropout: float = 0.0    # DropoutNet: probability a row's whole input is dropped
    batched: Recipe | None = field(default_factory=lambda: Recipe(
        optimizer="adam", lr=3e-4, weight_decay=1e-3, epochs=150, batch_size=64))


class CFN(Recommender):
    """Rows r (CSR) with side features s -> full-width reconstructions."""

    def __init__(self, n_rows: int, n_cols: int, cfg: CFNConfig):
        super().__init__()
        self.first = ItemLinear(n_cols, cfg.hidden)
        self.out = nn.Linear(cfg.hidden, n_cols)
        self.cfg = cfg
        self.n_rows = n_rows
        # no side information until `attach` (the plain CFN has none)
        self.register_buffer("features", torch.zeros(n_rows, 0), persistent=False)
        self.side_in: nn.Linear | None = None
        self.side_out: nn.Linear | None = None

    def attach(self, side: Side) -> None:
        """The rows' side information: appended to the input and to the hidden layer. Made
        after the rating layers, so that a hybrid and its plain parent built from one seed
        hold the same rating weights (and, given all-zero features, the same scores)."""
        if side.rows is None or side.rows.shape[1] == 0:
            return
        if side.rows.shape[0] != self.n_rows:
            raise ValueError(f"CFN: {side.rows.shape[0]} feature rows for {self.n_rows} rows")
        d = side.rows.shape[1]
        self.features = side.rows.to(torch.float32).clone()
        self.side_in = nn.Linear(d, self.first.weight.shape[1], bias=False)
        self.side_out = nn.Linear(d, self.out.weight.shape[0], bias=False)

    def setup(self, x: sp.csr_matrix) -> None:
        """The output bias starts at the mean training rating (the targets are raw stars)."""
        with torch.no_grad():
            self.out.bias.fill_(float(x.data.mean()) if x.nnz else 0.0)

    def _hidden(self, batch: Batch, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = side_rows(self.features, batch.rows, batch.side)
        z = self.first.sparse(batch.pattern, values)
        return torch.tanh(z if self.side_in is None else z + self.side_in(s)), s

    def loss(self, batch: Batch) -> torch.Tensor:
        """alpha * SSE on hidden ratings + beta * SSE on visible ones, over the number of
        observed ratings (the authors' criterion, summed rather than averaged per row)."""
        values = batch.values
        hidden = torch.rand_like(values) < self.cfg.hide
        if self.cfg.row_dropout > 0:
            dropped = torch.rand(batch.size, device=values.device) < self.cfg.row_dropout
            hidden = hidden | dropped.index_select(0, batch.entry_rows())
        h, s = self._hidden(batch, values.masked_fill(hidden, 0.0))
        if self.side_out is None:
            pred = sampled_linear(h, self.out.weight, self.out.bias, batch.pattern)
        else:  # [h; s] through [W2, W2s]: the side information appended to the hidden layer
            w = torch.cat([self.out.weight, self.side_out.weight], dim=1)
            pred = sampled_linear(torch.cat([h, s.to(h.dtype)], dim=1), w, self.out.bias,
                                  batch.pattern)
        err = (pred - values).square()
        weight = torch.where(hidden, self.cfg.alpha, self.cfg.beta)
        return (weight * err).sum() / max(1, values.numel())

    def score(self, batch: Batch) -> torch.Tensor:
        h, s = self._hidden(batch, batch.values)
        return self.out(h) if self.side_out is None else self.out(h) + self.side_out(s)

    def epoch_flops(self, x: sp.csr_matrix) -> Flops:
        k = self.cfg.hidden
        return Flops(2.0 * (2 * x.nnz * k + 3 * x.nnz * k), "gather", k)


def _build(n_rows: int, n_cols: int, cfg: CFNConfig) -> CFN:
    return CFN(n_rows, n_cols, cfg)


SPACE = Space(
    {"batched.lr": LogUniform(1e-4, 1e-2), "batched.weight_decay": LogUniform(1e-6, 1e-2),
     "hidden": Choice((300, 500, 700)), "hide": Uniform(0.0, 0.4),
     "alpha": Uniform(0.5, 1.5), "beta": Uniform(0.2, 1.0)},
    "the authors' searched quantities (their conf files come from a genetic search over alpha, "
    "beta, the hidden ratio, the step and the decay) and the width (their 500-700)")
DROPOUT_SPACE = Space({**SPACE.params, "row_dropout": Uniform(0.1, 0.9)},
                      "CFN's space plus DropoutNet's input-dropout rate")

SOURCE = ("Strub, Gaudel and Mary, CFN, DLRS 2016 (authors' code fstrub95/Autoencoders_cf): "
          "side information appended to the input and the hidden layer, masked denoising "
          "criterion (alpha, beta, hide)")
DROPOUT_SOURCE = ("CFN's network trained with DropoutNet's input dropout (Volkovs et al., "
                  "NeurIPS 2017): a row's whole preference input dropped with probability p")

NOTE = ("700 tanh units, alpha 1.1, beta 0.7, hide 0.15 (the authors' ML-1M V-network); Adam "
        "lr 3e-4, weight decay 1e-3, batch 64 rows, up to 150 epochs, chosen for cfn-i and cfn-u "
        "on ml-1m's validation carving (5%, seed 0): RMSE 0.841 / 0.896; lr 1e-3 with weight "
        "decay 1e-4 / 1e-3 / 3e-3 / 1e-2 / 0.1 gave 0.907 / 0.868 / 0.909 / 0.952 / 1.070 "
        "(cfn-i) and 0.981 / 0.925 / 0.973 / 0.990 / 1.043 (cfn-u); lr 3e-4, decay 3e-3: 0.858 / "
        "0.909. The hybrids take the same recipe")

for _name, _rows, _features, _drop, _source, _space in (
        ("cfn-i", "item", (), 0.0, SOURCE, SPACE),
        ("cfn-i-side", "item", ("item",), 0.0, SOURCE, SPACE),
        ("cfn-u", "user", (), 0.0, SOURCE, SPACE),
        ("cfn-u-side", "user", ("user",), 0.0, SOURCE, SPACE),
        ("dropoutnet-i", "item", ("item",), 0.5, DROPOUT_SOURCE, DROPOUT_SPACE),
        ("dropoutnet-u", "user", ("user",), 0.5, DROPOUT_SOURCE, DROPOUT_SPACE)):
    register(_name, _build,
             CFNConfig(rows=_rows, inductive=_rows == "user", features=_features,
                       row_dropout=_drop,
                       note=NOTE),
             _source, space=_space)


