"""AutoRec (Sedhain, Menon, Sanner and Xie, "AutoRec: Autoencoders Meet Collaborative
Filtering", WWW 2015 Companion).

One hidden layer: h(r) = f(W g(V r + mu) + b), g sigmoid, f identity (the paper's best pair:
"Identity / Sigmoid" 0.831 on ML-1M), k = 500 hidden units. The objective is the squared
error on observed ratings only, plus (lambda / 2) (||W||^2 + ||V||^2) on the two weight
matrices (biases are not penalised). I-AutoRec reads item rows (an item's ratings by all
users) and predicts R_ui as entry u of item i's reconstruction; U-AutoRec reads user rows.

Training as the authors describe it: resilient propagation (RProp, Riedmiller and Braun 1993;
reference [3] of the paper's poster), i.e. full-batch steps over the whole training matrix.
RProp's steps follow the sign of each gradient component, so the loss's overall scale does
not matter; the data term and the penalty keep the paper's relative weight. The model is the
SAE module with one hidden layer (its sparse first layer and output at observed entries).

The paper reports ML-1M 90/10 RMSE 0.831 (I-AutoRec) and 0.874 (U-AutoRec), averaged over
5 random splits; lambda was chosen from {0.001, 0.01, 0.1, 1, 100, 1000}.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .base import Batch, Choice, LogUniform, Recipe, Space
from .registry import register
from .sae import SAE, SAEConfig


@dataclass(frozen=True)
class AutoRecConfig(SAEConfig):
    hidden: tuple[int, ...] = (500,)
    activation: str = "sigmoid"
    l2: float = 100.0           # lambda: (lambda / 2) * sum of squared weights, in the loss
    per_user: Recipe | None = None
    batched: Recipe | None = field(default_factory=lambda: Recipe(
        optimizer="rprop", lr=0.01, weight_decay=0.0, epochs=300, batch_size=0))


class AutoRec(SAE):
    """The SAE with one hidden layer and the paper's penalty inside the loss."""

    def __init__(self, n_items: int, cfg: AutoRecConfig):
        super().__init__(n_items, cfg)
        self.l2 = cfg.l2

    def loss(self, batch: Batch) -> float:
        """(sum of squared errors + (l2 / 2) sum ||W||^2) / number of observed ratings: the
        paper's objective, scaled by a constant."""
        err = self.predict_observed(batch) - batch.values
        penalty = sum(layer.weight.square().sum() for layer in self.layers)
        return (err.square().sum() + 0.5 * self.l2 * penalty) / max(1, batch.values.numel())


def _build(n_rows: int, n_cols: int, cfg: AutoRecConfig) -> AutoRec:
    return AutoRec(n_cols, cfg)


SPACE = Space(
    {"l2": LogUniform(0.01, 1000.0), "batched.lr": LogUniform(1e-3, 0.1),
     "hidden": Choice(((300,), (500,), (700,)))},
    "lambda over the paper's own grid (0.001-1000, narrowed to where RProp converges), the "
    "initial RProp step, and the width the paper's Figure shows RMSE flattening at (300-700)")

SOURCE = ("Sedhain et al., AutoRec, WWW 2015: k=500 sigmoid encoder, identity decoder, "
          "masked squared error + lambda/2 ||W||^2, trained with RProp (full batch)")

register("autorec-i", _build,
         AutoRecConfig(rows="item", inductive=False, l2=300.0,
                       note="full-batch RProp (initial step 0.01), lambda 300, up to 300 "
                            "epochs: validation RMSE (5% carving, seed 0) 0.885 on u1, 0.836 "
                            "on ml-1m; lambda 1 / 10 / 100 / 1000 gave 0.918 / 0.907 / 0.883 / "
                            "0.929 on u1 and 0.879 / 0.872 / 0.842 / 0.859 on ml-1m"),
         SOURCE, space=SPACE)
register("autorec-u", _build,
         AutoRecConfig(rows="user", l2=100.0,
                       note="full-batch RProp (initial step 0.01), lambda 100, up to 300 "
                            "epochs: validation RMSE 0.929 on u1, 0.890 on ml-1m; lambda 1 / 10 "
                            "/ 300 / 1000 gave 0.950 / 0.943 / 0.939 / 0.976 on u1 and 0.922 / "
                            "0.909 / 0.886 / 0.901 on ml-1m"),
         SOURCE, space=SPACE)
