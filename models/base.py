"""The one contract between a model family and the rest of aebench.

Engines, evaluation, timing and the CLI see a variant only through what this file defines;
nothing in `bench/` names a concrete model. A new family is one file in `models/` that
subclasses `Recommender` and `ModelConfig`, plus its `register(...)` calls.

What a variant declares, as data (fields of its `ModelConfig`):
- `feedback`: what it learns from. `explicit`: the ratings, and it predicts ratings (it gets
  the masked-RMSE protocol and the ranking protocol). `implicit`: every training rating is
  an interaction of value 1, and it only ranks (its rating errors read "—").
- `rows`: which rows of the training matrix it reads. `user`: a user's ratings over items.
  `item`: an item's ratings over users (the transposed matrix); its prediction for
  (user, item) is entry `user` of the item's reconstructed row, and a user's full-width
  scores are that user's column of the reconstructed matrix.
- `inductive`: whether it can score a user it never trained on, from that user's row alone
  (no per-user parameters, user rows): what `heldout-users` needs. User-row autoencoders,
  EASE, SLIM, the item-item references, popularity and fold-in iALS and PureSVD are;
  item-row models and models with a vector per training user (MF, biases, CDAE) are not.
  False unless declared, so a family that forgets it is refused rather than scored wrongly.
- `features`: the side information it reads (`item`: genres and year, `user`:
  demographics); empty for a family that reads ratings only. The engines hand a declared
  kind over once, before training (`attach`); a protocol that holds out whole items
  (`cold-items`) scores only variants that read item features, and a dataset that lacks a
  declared kind is refused before work.
- `low_precision`: the parts (`loss`: the training loss and its gradients, `score`:
  scoring) that may run under `--precision bf16` / `tf32` autocast; a part left out keeps
  float32 whatever is asked (an L-BFGS line search, say). Closed-form fits always run in
  float32.
- `per_user` / `batched`: the training recipe of each mode, or None where the family has
  none (closed-form families have neither).

What a model implements (a `Recommender`, an `nn.Module`):
- `trainer`: `epochs` (gradient epochs over mini-batches of sparse rows) or `closed-form`.
- `loss(batch)`: for `epochs`, the scalar to minimise on one `Batch`, computed only where the
  family's loss needs it (observed entries for a masked loss, full width for a softmax).
- `stages()` (optional): training as consecutive stages (`Stage`: pre-training, then
  fine-tuning), each a number of epochs (L-BFGS rounds of its own length), announced by
  `start_stage(name)` and named in `batch.phase`.
- `train_step(batch, optimizer, autocast, counts)` (optional): one training step, which the
  batched engine calls for every batch. The default steps by the optimizer's entry in
  `models/steps.py` (loss, backward, step; an L-BFGS round with its closure); a family that
  trains in its own way overrides it (DeepRec re-feeds its dense output after each step).
- `whole_matrix` (optional, False): `score` needs every row of the matrix in one batch (a
  model that mixes neighbouring rows, as GLocal-K's convolution does); evaluation then
  scores all rows at once.
- `phases()` (optional): an epoch as alternating phases (`Phase`), each a number of passes
  over the rows that update one group of parameters with an optimizer of its own, followed by
  `end_phase(name)` (RecVAE's encoder and decoder phases and its prior refresh). The default,
  no phases, is one pass updating every parameter. `batch.phase` tells `loss` which phase
  it serves.
- `fit(x)`: for `closed-form`, learn from the whole training matrix at once.
- `score(batch)`: full-width outputs of the batch's rows, (B, n_cols): predicted ratings of
  an explicit model, ranking scores of an implicit one. Called in eval mode, no gradient.
- `attach(side)`: for a variant that declares `features`, the encoded features of the rows
  and columns of its view (`Side`), called once after `build` and before training or
  loading weights (layers that read them are made here); rows of held-out users and items
  are included, so a cold row is scored from them.
- `setup(x)` (optional): statistics of the training matrix a model starts from (a global
  mean, say), before any training.
- `epoch_flops(x)` (optional): a `Flops` count of one batched epoch over `x`, with the
  ceiling that bounds it (`gather` for sparse products, `matmul` for dense GEMMs), for
  `bench speed`.
- `stack()` (optional): the model as a stack of dense layers, for the faithful per-user
  engine and the classic reference loop (the SAE family).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from .sparse_ops import CSRBatch

FEEDBACK = ("explicit", "implicit")
FEATURES = ("item", "user")
ROWS = ("user", "item")
OPTIMIZERS = ("adam", "rmsprop", "sgd", "rprop", "lbfgs")
SCHEDULES = ("constant", "cosine")
LOSSES = ("items", "rated")  # per-user loss normalisation, `Recipe.loss`


@dataclass(frozen=True)
class Recipe:
    """How a variant is trained in one mode (`per-user` or `batched`)."""

    optimizer: str = "rmsprop"  # adam | rmsprop | sgd | rprop (full-batch, sign-based)
    lr: float = 0.01
    weight_decay: float = 0.5   # added to the gradient (L2), as torch's optimizers do
    epochs: int = 200           # the most epochs; early stopping may end sooner
    batch_size: int = 1         # rows per step; 0 = the whole matrix (full batch)
    zero_grad: bool = False     # per-user: the classic code never zeroes gradients
    schedule: str = "constant"  # batched: constant | cosine (lr decays to 0 over `epochs`)
    loss: str = "items"         # per-user: squared error / n_items (classic) | / n_rated
    iterations: int = 1         # lbfgs: iterations per epoch, a round whose memory restarts


@dataclass(frozen=True)
class ModelConfig:
    """What every variant declares; a family's config extends it with its own fields."""

    feedback: str = "explicit"  # explicit | implicit
    rows: str = "user"          # user | item
    inductive: bool = False     # scores a user it never trained on from that user's row alone
    features: tuple[str, ...] = ()  # side information it reads: item | user
    low_precision: tuple[str, ...] = ("loss", "score")  # parts that may run in bf16 / tf32
    per_user: Recipe | None = None
    batched: Recipe | None = None
    note: str = ""              # what the default recipe reaches, and why it is what it is

    @property
    def rates(self) -> bool:
        """Whether the variant predicts ratings (else it only ranks)."""
        return self.feedback == "explicit"

    def recipe(self, mode: str) -> Recipe | None:
        return {"per-user": self.per_user, "batched": self.batched}[mode]

    def view(self, ratings: sp.csr_matrix) -> sp.csr_matrix:
        """The matrix this variant reads, from a users x items rating matrix: binarised under
        implicit feedback, transposed for an item-based model."""
        x = ratings
        if self.feedback == "implicit":
            x = sp.csr_matrix((np.ones_like(x.data), x.indices, x.indptr), shape=x.shape)
        if self.rows == "item":
            x = x.T.tocsr()
            x.sort_indices()
        return x

    def side(self, user: np.ndarray | None, item: np.ndarray | None) -> Side:
        """The features this variant declares, as its view holds them: `rows` the features
        of its matrix's rows (users for a user-based model), `cols` of its columns; a kind it
        does not declare stays None."""
        user = user if "user" in self.features else None
        item = item if "item" in self.features else None
        rows, cols = (user, item) if self.rows == "user" else (item, user)
        def as_tensor(a: np.ndarray | None) -> torch.Tensor | None:
            return None if a is None else torch.as_tensor(np.ascontiguousarray(a, np.float32))

        return Side(as_tensor(rows), as_tensor(cols))

    def validate(self) -> None:
        if self.feedback not in FEEDBACK:
            raise ValueError(f"feedback {self.feedback!r} unknown; choose from "
                             f"{', '.join(FEEDBACK)}")
        if self.rows not in ROWS:
            raise ValueError(f"rows {self.rows!r} unknown; choose from {', '.join(ROWS)}")
        if set(self.features) - set(FEATURES):
            raise ValueError(f"features {sorted(set(self.features) - set(FEATURES))} "
                             f"unknown; choose from {', '.join(FEATURES)}")
        unknown = set(self.low_precision) - {"loss", "score"}
        if unknown:
            raise ValueError(f"low_precision {sorted(unknown)} unknown; its parts are loss, "
                             f"score")
        if self.inductive and self.rows != "user":
            raise ValueError("inductive needs rows 'user': an item-based model reads every "
                             "user as an input dimension it trained on")
        for recipe in (self.per_user, self.batched):
            if recipe is None:
                continue
            if recipe.optimizer not in OPTIMIZERS:
                raise ValueError(f"optimizer {recipe.optimizer!r} unknown; choose from "
                                 f"{', '.join(OPTIMIZERS)}")
            if recipe.schedule not in SCHEDULES:
                raise ValueError(f"schedule {recipe.schedule!r} unknown; choose from "
                                 f"{', '.join(SCHEDULES)}")
            if recipe.optimizer == "lbfgs" and (recipe.batch_size or recipe.weight_decay
                                                or recipe.iterations < 1):
                raise ValueError("lbfgs takes full batches (batch_size 0), no weight decay "
                                 "(the penalty goes in the loss) and iterations >= 1")


@dataclass(frozen=True)
class Side:
    """Encoded side information in a variant's own view: `rows` (n_rows x width) the features
    of its matrix's rows, `cols` (n_cols x width) of its columns; None where not declared or
    absent. A width of 0 is a dataset that has the kind but no column of it."""

    rows: torch.Tensor | None = None
    cols: torch.Tensor | None = None


def side_rows(features: torch.Tensor, rows: torch.Tensor,
              given: torch.Tensor | None = None) -> torch.Tensor:
    """The features of `rows`: `given` where the batch brings its rows' own (`Batch.side`:
    a new visitor who told the service their demographics); else the table's, where a row
    past the table (a user folded in, whom no split indexes: `bench.recommend.Scorer.
    fold_in`) reads zeros, nothing being known of them."""
    if given is not None:
        return given.to(features.dtype)
    inside = rows < features.shape[0]
    if bool(inside.all()):
        return features.index_select(0, rows)
    out = features.new_zeros(rows.shape[0], features.shape[1])
    out[inside] = features.index_select(0, rows[inside])
    return out


@dataclass(frozen=True)
class Batch:
    """Rows of the training matrix as a model sees them in one step (or one scoring pass)."""

    rows: torch.Tensor          # (B,) indices of these rows in the training matrix
    pattern: CSRBatch           # their observed entries (row pointers, columns, column order)
    values: torch.Tensor        # entry values: ratings, or ones under implicit feedback
    step: int = 0               # optimizer steps taken before this batch
    progress: float = 0.0       # epochs completed before this batch, fractional (annealing)
    dense_output: bool = False  # outputs at full width, then gathered (the CUDA path)
    phase: str = ""             # the `Phase` this step serves ("" without phases)
    side: torch.Tensor | None = None  # (B, width) the rows' own features, where given

    @property
    def size(self) -> int:
        return self.pattern.n_rows

    def entry_rows(self) -> torch.Tensor:
        """Row (within the batch) of every entry, in CSR order (the pattern's, computed once
        per pattern)."""
        return self.pattern.entry_rows()

    def row_sums(self, values: torch.Tensor | None = None) -> torch.Tensor:
        """Per-row sums of `values` (default: the batch's values), (B,)."""
        values = self.values if values is None else values
        out = torch.zeros(self.size, dtype=values.dtype, device=values.device)
        return out.index_add_(0, self.entry_rows(), values)

    def dense(self) -> torch.Tensor:
        """The batch as a dense (B, n_cols) tensor, zero where unobserved."""
        out = torch.zeros(self.size, self.pattern.n_cols, dtype=self.values.dtype,
                          device=self.values.device)
        out[self.entry_rows(), self.pattern.cols] = self.values
        return out


@dataclass(frozen=True)
class Flops:
    """FLOPs of one training epoch (2 per multiply-add) and what bounds them: `gather` (sparse
    products, one multiply-add per gathered float of a `width`-wide table) or `matmul`."""

    total: float
    bound: str
    width: int = 0


@dataclass(frozen=True)
class Stack:
    """A model as a stack of dense layers: an item-major first layer (`weight` items x out),
    then `nn.Linear` layers; `activation` after every layer but the last. What the faithful
    per-user engine and the classic reference loop train."""

    layers: list[nn.Module]
    activation: str
    dropout: float = 0.0        # on hidden activations between hidden layers
    corruption: float = 0.0     # share of observed inputs zeroed in training


def stack_flops(x: sp.csr_matrix, widths: tuple[int, ...], dense_input: bool,
                sparse_output: bool) -> float:
    """Forward+backward FLOPs of one epoch of a dense stack n_items -> widths[1:] over the
    rows of `x` with entries. The first layer reads the observed entries (or every item of
    a row, `dense_input`) and runs forward and weight gradient only: its input is data and
    needs no gradient. Inner layers run at every row with forward, weight and input
    gradients; so does the output layer, at the observed entries only (`sparse_output`) or
    at full width. 2 FLOPs per multiply-add."""
    rows = int((x.getnnz(axis=1) > 0).sum())
    first = (rows * x.shape[1] if dense_input else x.nnz) * widths[1]
    inner = rows * sum(a * b for a, b in zip(widths[1:-2], widths[2:-1]))
    out = (x.nnz if sparse_output else rows * x.shape[1]) * widths[-2]
    return 2.0 * (2 * first + 3 * (inner + out))


@dataclass(frozen=True)
class Phase:
    """One part of an epoch: `passes` passes over the rows (each in a fresh order) that step
    only the parameters whose names start with one of `params`, with an optimizer of the
    phase's own (the recipe's kind and settings); the others are frozen meanwhile, so no
    gradient is computed for them."""

    name: str
    params: tuple[str, ...]
    passes: int = 1


@dataclass(frozen=True)
class Stage:
    """A consecutive part of training (pre-training, then fine-tuning, say): `rounds` epochs,
    each of `iterations` L-BFGS iterations under an `lbfgs` recipe (0: the recipe's). The
    engine calls `start_stage(name)` before its first epoch and passes its name as
    `Batch.phase`; the last stage runs on if the recipe allows more epochs."""

    name: str
    rounds: int
    iterations: int = 0


# Search spaces (`register(..., space=...)`): small declarative parameter ranges, keyed by
# the override they set (`batched.lr`, `hidden`, ...), which `bench tune` turns into Optuna
# suggestions. Data, not code paths.
@dataclass(frozen=True)
class LogUniform:
    low: float
    high: float


@dataclass(frozen=True)
class Uniform:
    low: float
    high: float


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int
    step: int = 1


@dataclass(frozen=True)
class Choice:
    values: tuple


Param = LogUniform | Uniform | IntRange | Choice


@dataclass(frozen=True)
class Space:
    """A variant's search space and why it is what it is."""

    params: dict[str, Param] = field(default_factory=dict)
    reason: str = ""


TRAINERS = ("epochs", "closed-form")


class ContractError(TypeError):
    """A model that breaks this contract at run time; the message names the rule."""


def check_trainer(model: Recommender) -> None:
    """The trainer is one the engines know, and the model implements what it needs."""
    name = type(model).__name__
    if model.trainer not in TRAINERS:
        raise ContractError(f"contract: {name}.trainer is {model.trainer!r}; it must be one "
                            f"of {', '.join(TRAINERS)}")
    need = "loss" if model.trainer == "epochs" else "fit"
    if getattr(type(model), need) is getattr(Recommender, need):
        raise ContractError(f"contract: {name} trains by {model.trainer!r} but does not "
                            f"implement {need}()")
    if type(model).score is Recommender.score:
        raise ContractError(f"contract: {name} does not implement score()")


def _finite(scores: torch.Tensor) -> bool:
    """Every entry finite. A NaN or an infinity makes the sum non-finite, so a finite
    sum settles it in one pass without a boolean copy; only a sum that overflowed (or a
    non-finite entry) is checked entry by entry."""
    return bool(torch.isfinite(scores.sum())) or bool(
        torch.isfinite(scores).all())


def check_scores(model: Recommender, scores: Any, rows: int, cols: int) -> torch.Tensor:
    """score(batch) returned a finite float tensor of (batch rows, n_cols)."""
    name = type(model).__name__
    if not isinstance(scores, torch.Tensor):
        raise ContractError(f"contract: {name}.score() must return a torch.Tensor, got "
                            f"{type(scores).__name__}")
    if tuple(scores.shape) != (rows, cols):
        raise ContractError(f"contract: {name}.score() must return (batch rows, n_cols) = "
                            f"({rows}, {cols}), got {tuple(scores.shape)}")
    if not scores.is_floating_point() or not _finite(scores):
        raise ContractError(f"contract: {name}.score() returned non-finite or non-float "
                            "scores")
    return scores


class Recommender(nn.Module):
    """Base class of every model family: see the module docstring for the contract."""

    trainer: ClassVar[str] = "epochs"  # epochs | closed-form
    whole_matrix: ClassVar[bool] = False  # score() needs every row at once
    # float32 copies of the saved state a fit holds at its peak (the dry run's memory
    # estimate): weights, gradients and Adam's two moments for a trained family; a closed
    # form that builds its weights through larger intermediates says so
    working_copies: ClassVar[float] = 4.0
    # scores an evaluation batch may hold (bytes of float32; 0: the evaluation's rows per
    # batch): a family whose scoring gains from larger batches and whose scores do not
    # depend on the batch's other rows says so
    score_batch_bytes: ClassVar[int] = 0

    def train_step(self, batch: Batch, optimizer: torch.optim.Optimizer, autocast,
                   counts: dict) -> torch.Tensor:
        """One step on `batch` (see the module docstring); returns its loss."""
        from .steps import step_for

        return step_for(optimizer)(self, batch, optimizer, autocast, counts)

    def attach(self, side: Side) -> None:
        """Take the declared side information (see the module docstring)."""
        raise ContractError(f"contract: {type(self).__name__} declares features but does not "
                            "implement attach()")

    def setup(self, x: sp.csr_matrix) -> None:
        """Statistics of the training matrix (the model's view) taken before training."""

    def loss(self, batch: Batch) -> torch.Tensor:
        raise ContractError(f"contract: {type(self).__name__} does not implement loss()")

    def fit(self, x: sp.csr_matrix) -> None:
        raise ContractError(f"contract: {type(self).__name__} does not implement fit()")

    def score(self, batch: Batch) -> torch.Tensor:
        raise ContractError(f"contract: {type(self).__name__} does not implement score()")

    def phases(self) -> tuple[Phase, ...]:
        return ()

    def end_phase(self, name: str) -> None:
        """Called after each phase's passes (a prior refresh, say)."""

    def stages(self) -> tuple[Stage, ...]:
        return ()

    def start_stage(self, name: str) -> None:
        """Called before a stage's first epoch."""

    def epoch_flops(self, x: sp.csr_matrix) -> Flops | None:
        return None

    def stack(self) -> Stack | None:
        return None


def xavier_(module: nn.Module, bias_std: float = 0.0) -> None:
    """Glorot-uniform weights (what TensorFlow's `xavier_initializer` draws) and biases
    zero, or normal with `bias_std` (Liang et al.'s truncated normal of std 0.001)."""
    for name, p in module.named_parameters():
        if p.dim() >= 2:
            nn.init.xavier_uniform_(p)
        elif name.endswith("bias"):
            if bias_std:
                nn.init.trunc_normal_(p, std=bias_std, a=-2 * bias_std, b=2 * bias_std)
            else:
                nn.init.zeros_(p)


def describe(value: Any) -> Any:
    """A search-space parameter as plain data (for records and `list`)."""
    from dataclasses import asdict, is_dataclass

    return {"kind": type(value).__name__, **asdict(value)} if is_dataclass(value) else value
