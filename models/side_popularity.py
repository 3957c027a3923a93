"""Popularity read through side information: the references a cold-start figure has to beat.

- `genre-pop` (items): a film's popularity as its features predict it. A ridge regression of
  the training items' log interaction counts on their encoded features (genres, year) gives a
  film nobody rated the popularity its genres and year have among rated films; a rated film
  keeps its own count. Under `cold-items`, where only unrated films are ranked, this is
  "popularity within the cold film's genres", year included.
- `group-pop` (users): the items most popular within the user's demographic groups (gender,
  age, occupation, zip region: each encoded column a group), the mean of the groups' shares:
  what a site can show a visitor who has rated nothing. A user's own ratings are not read
  (they only leave the candidates).

Both rank only (implicit feedback) and are closed forms fitted on the training matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from .base import Batch, LogUniform, ModelConfig, Recommender, Side, Space, side_rows
from .registry import register


@dataclass(frozen=True)
class GenrePopConfig(ModelConfig):
    feedback: str = "implicit"
    inductive: bool = True
    features: tuple[str, ...] = ("item",)
    ridge: float = 1.0          # the regression's L2 penalty (features are 0/1 and z-scores)


class GenrePop(Recommender):
    trainer = "closed-form"

    def __init__(self, n_users: int, n_items: int, cfg: GenrePopConfig):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("features", torch.zeros(n_items, 0), persistent=False)
        self.register_buffer("scores", torch.zeros(n_items))

    def attach(self, side: Side) -> None:
        if side.cols is not None:
            self.features = side.cols.to(torch.float32).clone()

    def fit(self, x: sp.csr_matrix) -> None:
        counts = np.bincount(x.indices, minlength=x.shape[1]).astype(np.float64)
        pop = np.log1p(counts)
        rated = counts > 0
        f = self.features.double().numpy()
        f1 = np.concatenate([f, np.ones((len(f), 1))], axis=1)  # an intercept
        a, y = f1[rated], pop[rated]
        reg = self.cfg.ridge * np.eye(f1.shape[1])
        reg[-1, -1] = 0.0  # the intercept is not penalised
        w = np.linalg.solve(a.T @ a + reg, a.T @ y) if rated.any() else np.zeros(f1.shape[1])
        self.scores.copy_(torch.from_numpy(np.where(rated, pop, f1 @ w).astype(np.float32)))

    def score(self, batch: Batch) -> torch.Tensor:
        return self.scores.expand(batch.size, -1)


@dataclass(frozen=True)
class GroupPopConfig(ModelConfig):
    feedback: str = "implicit"
    inductive: bool = True
    features: tuple[str, ...] = ("user",)
    prior: float = 10.0         # pseudo-users at the overall rate in each group's rate


class GroupPop(Recommender):
    """Per encoded demographic column c (gender=F, age=18, occupation=4, ...), the share of its
    training users who interacted with each item, smoothed toward the overall share by
    `prior` pseudo-users; a user's score is the mean over the columns they hold (a positive
    value) of those shares. State: features x items, whatever the number of users."""

    trainer = "closed-form"

    def __init__(self, n_users: int, n_items: int, cfg: GroupPopConfig):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("features", torch.zeros(n_users, 0), persistent=False)
        self.register_buffer("rates", torch.zeros(1, n_items))  # per column, then overall

    def attach(self, side: Side) -> None:
        if side.rows is not None:
            self.features = side.rows.to(torch.float32).clone()
            self.rates = torch.zeros(side.rows.shape[1] + 1, self.rates.shape[1])

    def fit(self, x: sp.csr_matrix) -> None:
        trained = np.flatnonzero(np.diff(x.indptr) > 0)
        xb = x[trained]
        xb = sp.csr_matrix((np.ones_like(xb.data), xb.indices, xb.indptr), shape=xb.shape)
        member = (self.features.numpy()[trained] > 0).astype(np.float64)  # users x columns
        counts = np.asarray((sp.csr_matrix(member.T) @ xb).todense())     # columns x items
        overall = np.asarray(xb.sum(0)).ravel() / max(1, len(trained))
        sizes = member.sum(0)[:, None]
        rates = (counts + self.cfg.prior * overall) / (sizes + self.cfg.prior)
        self.rates.copy_(torch.from_numpy(np.vstack([rates, overall]).astype(np.float32)))

    def score(self, batch: Batch) -> torch.Tensor:
        member = (side_rows(self.features, batch.rows, batch.side) > 0).float()
        n = member.sum(1, keepdim=True)
        groups = member @ self.rates[:-1] / n.clamp_min(1.0)
        # a user in no group (no demographics) gets the overall shares
        return torch.where(n > 0, groups, self.rates[-1].expand_as(groups))


def _genre(n_rows: int, n_cols: int, cfg: GenrePopConfig) -> GenrePop:
    return GenrePop(n_rows, n_cols, cfg)


def _group(n_rows: int, n_cols: int, cfg: GroupPopConfig) -> GroupPop:
    return GroupPop(n_rows, n_cols, cfg)


register("genre-pop", _genre,
         GenrePopConfig(note="ridge 1 on log counts against genres and year"),
         "popularity a film's genres and year predict (ridge regression of rated films' log "
         "interaction counts on their features); a rated film keeps its own count",
         kind="reference",
         space=Space({"ridge": LogUniform(1e-3, 1e3)}, "the regression's penalty"))
register("group-pop", _group,
         GroupPopConfig(note="each group's shares smoothed by 10 pseudo-users"),
         "items most popular within the user's demographic groups (gender, age, occupation, "
         "zip region): the mean of the groups' interaction shares",
         kind="reference",
         space=Space({"prior": LogUniform(0.1, 1000.0)}, "the smoothing of small groups"))
