"""The `batched` engine: mini-batches of rows of the training matrix, for every family that
trains by gradient epochs. It calls only the model contract (`Recommender.loss`).

Each epoch draws a row permutation on the host, lays the training entries out in that order
with each batch's column order beside them (`_plan`, one compiled pass) and sends them to the
device once; batches are then slices, with boundaries known on the host, so nothing inside
the epoch waits for the device. A batch reaches the model as a CSR pattern and its values
(`models.base.Batch`), so a first layer reads it as a sparse product, and a masked loss can be
evaluated only at the observed entries (an SDDMM) instead of at full width.

`EngineOptions` selects the code paths CUDA takes by default (full-width outputs gathered
afterwards, torch's multi-tensor optimizer, the torch-op RMSprop of the per-user engine), so
that they run, and are checked against the CPU defaults, on any machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import scipy.sparse as sp
import torch
from aebench.bench.engines import precision
from aebench.bench.engines.optim import FusedRprop
from aebench.models.base import Batch, Phase, Recipe, Recommender
from aebench.models.sparse_ops import CSRBatch


@dataclass(frozen=True)
class EngineOptions:
    """Code paths of the engines; `auto` picks each device's default, `cuda` picks CUDA's
    everywhere (`--engine-paths cuda`)."""

    output: str = "auto"      # auto | sparse (outputs at observed entries) | dense (full width)
    optimizer: str = "auto"   # auto | fused | foreach | single (torch.optim implementation)
    kernels: str = "auto"     # auto | numba | torch (the per-user engine's RMSprop step)
    precision: str = "fp32"   # fp32 | bf16 | tf32 (`bench/engines/precision.py`)

    @classmethod
    def preset(cls, name: str) -> EngineOptions:
        presets = {"auto": cls(), "cuda": cls(output="dense", optimizer="foreach",
                                              kernels="torch")}
        if name not in presets:
            raise ValueError(f"engine paths {name!r} unknown; choose from {', '.join(presets)}")
        return presets[name]

    def dense_output(self, device: torch.device) -> bool:
        return {"auto": device.type != "cpu", "sparse": False, "dense": True}[self.output]

    def optimizer_impl(self, device: torch.device) -> str:
        return self.optimizer if self.optimizer != "auto" else (
            "fused" if device.type == "cpu" else "foreach")

    def use_numba(self, device: torch.device) -> bool:
        return {"auto": device.type == "cpu", "numba": True, "torch": False}[self.kernels]


DEFAULT_OPTIONS = EngineOptions()

OPTIMIZERS = {"adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop,
              "sgd": torch.optim.SGD, "rprop": torch.optim.Rprop, "lbfgs": torch.optim.LBFGS}
LBFGS_MEMORY = 10  # the papers' scipy L-BFGS-B `maxcor`
FUSED = {"adam", "sgd", "rprop"}  # with a fused CPU step (torch's, or ours for Rprop)


def make_optimizer(params, recipe: Recipe, device: torch.device,
                   options: EngineOptions = DEFAULT_OPTIONS) -> torch.optim.Optimizer:
    """The recipe's torch optimizer. `fused` falls back to `foreach` for optimizers without a
    fused kernel (Rprop's fused CPU step is `bench.optim.FusedRprop`); `single` is the
    per-parameter loop. Rprop has no weight decay argument: a family that trains with it
    puts its penalty in the loss."""
    if recipe.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer {recipe.optimizer!r} unknown; "
                         f"choose from {', '.join(OPTIMIZERS)}")
    impl = options.optimizer_impl(device)
    if impl == "fused" and recipe.optimizer not in FUSED:
        impl = "foreach"
    extra = {"fused": {"fused": True}, "foreach": {"foreach": True},
             "single": {"foreach": False}}[impl]
    if recipe.optimizer == "lbfgs":
        # full-batch L-BFGS with a strong-Wolfe line search, `iterations` per step (a round);
        # the engine clears its memory at each round, as the papers' scipy calls start afresh
        return torch.optim.LBFGS(params, lr=recipe.lr, max_iter=recipe.iterations,
                                 history_size=LBFGS_MEMORY, line_search_fn="strong_wolfe")
    if recipe.optimizer == "rprop":
        if recipe.weight_decay:
            raise ValueError("rprop takes no weight decay; put the penalty in the loss")
        if impl == "fused" and device.type == "cpu":
            return FusedRprop(params, lr=recipe.lr)
        return torch.optim.Rprop(params, lr=recipe.lr, **extra)
    return OPTIMIZERS[recipe.optimizer](params, lr=recipe.lr,
                                        weight_decay=recipe.weight_decay, **extra)


@numba.njit(parallel=True, cache=True, nogil=True)
def _plan(indptr, indices, data, perm, bs, n_items):  # pragma: no cover - compiled
    """Lay out one epoch: the rows `perm` of a CSR matrix concatenated (`ptr`, `cols`, `vals`)
    and, for each batch of `bs` rows, its entries in column order: `t_local` (entry position
    within the batch), `t_rows` (row within the batch) and `t_ptr` (column pointers, one row
    per batch). A counting sort per batch, O(nnz + batches x n_items), batches in parallel."""
    n = perm.size
    ptr = np.zeros(n + 1, np.int64)
    for i in range(n):
        ptr[i + 1] = ptr[i] + indptr[perm[i] + 1] - indptr[perm[i]]
    cols = np.empty(ptr[n], np.int64)
    vals = np.empty(ptr[n], np.float32)
    for i in numba.prange(n):
        src = indptr[perm[i]]
        for j in range(ptr[i + 1] - ptr[i]):
            cols[ptr[i] + j] = indices[src + j]
            vals[ptr[i] + j] = data[src + j]
    n_batches = (n + bs - 1) // bs
    t_local = np.empty(ptr[n], np.int64)
    t_rows = np.empty(ptr[n], np.int64)
    t_ptr = np.zeros((n_batches, n_items + 1), np.int64)
    for k in numba.prange(n_batches):
        first, last = k * bs, min((k + 1) * bs, n)
        lo, hi = ptr[first], ptr[last]
        col_ptr = t_ptr[k]
        for e in range(lo, hi):
            col_ptr[cols[e] + 1] += 1
        for c in range(n_items):
            col_ptr[c + 1] += col_ptr[c]
        fill = col_ptr[:-1].copy()
        for r in range(first, last):
            for e in range(ptr[r], ptr[r + 1]):
                j = lo + fill[cols[e]]
                fill[cols[e]] += 1
                t_local[j] = e - lo
                t_rows[j] = r - first
    return ptr, cols, vals, t_local, t_rows, t_ptr


class BatchedEngine:
    """Gradient epochs over mini-batches of the rows of `x` (the model's view of the training
    matrix) that have at least one entry; `recipe.batch_size` 0 is one full batch."""

    def __init__(self, model: Recommender, x: sp.csr_matrix, recipe: Recipe,
                 device: torch.device, seed: int, options: EngineOptions = DEFAULT_OPTIONS,
                 low_precision: tuple[str, ...] = ("loss", "score")):
        self.model, self.recipe, self.device = model, recipe, device
        self.low = (options.precision, device, low_precision)  # where the loss may run low
        self.phases = model.phases() or (Phase("", ("",)),)
        named = list(model.named_parameters())
        self.groups = []
        for phase in self.phases:
            params = [p for n, p in named if n.startswith(phase.params)]
            if not params:
                raise ValueError(f"{type(model).__name__}: phase {phase.name!r} names no "
                                 f"parameter (prefixes {phase.params})")
            self.groups.append(params)
        self.opts = [make_optimizer(params, recipe, device, options) for params in self.groups]
        self.passes = sum(phase.passes for phase in self.phases)  # per epoch
        self.schedulers = ([torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, T_max=max(1, recipe.epochs)) for opt in self.opts]
            if recipe.schedule == "cosine" else [])
        self.indptr = x.indptr.astype(np.int64)
        self.indices = x.indices.astype(np.int64)
        self.data = np.ascontiguousarray(x.data, dtype=np.float32)
        self.n_cols = x.shape[1]
        self.rows = np.flatnonzero(np.diff(self.indptr) > 0)
        self.batch_size = recipe.batch_size or max(1, len(self.rows))
        self.rng = np.random.default_rng(seed)
        self.dense_output = options.dense_output(device)
        self.steps, self.epochs_done = 0, 0
        self.stages, self.stage = model.stages(), None
        # the last epoch's L-BFGS work (fit() adds it to the epoch's history row): iterations
        # run and loss evaluations (a round may end before its iterations, on tolerance)
        self.counts: dict[str, int] = {}

    def _epoch_plan(self) -> tuple[torch.Tensor, list[tuple[int, int, torch.Tensor, CSRBatch]]]:
        """One epoch's batches, laid out on the host in one pass (`_plan`) and sent to the
        device in a few transfers: the training entries in permuted-row order, and per
        batch its row indices, its CSR pattern and the same entries in column order (for the
        X.T products of the backward pass)."""
        perm = self.rng.permutation(self.rows)
        bs, n_cols = self.batch_size, self.n_cols
        ptr, cols, vals, t_local, t_rows, t_ptr = _plan(self.indptr, self.indices, self.data,
                                                        perm, bs, n_cols)
        dev = self.device
        perm_d, ptr_d, cols_d, vals_d, t_local_d, t_rows_d, t_ptr_d = (
            torch.from_numpy(a).to(dev)
            for a in (perm.astype(np.int64), ptr, cols, vals, t_local, t_rows, t_ptr))
        plan = []
        for k in range(len(t_ptr)):
            a, b = k * bs, min((k + 1) * bs, len(perm))
            lo, hi = int(ptr[a]), int(ptr[b])
            plan.append((lo, hi, perm_d[a:b],
                         CSRBatch(ptr_d[a:b + 1] - lo, cols_d[lo:hi], n_cols, t_local_d[lo:hi],
                                  t_rows_d[lo:hi], t_ptr_d[k])))
        return vals_d, plan

    def epoch(self) -> float:
        """One epoch: each phase's passes over all rows with entries (one pass of every
        parameter without phases); returns the mean of the batch losses, weighted by rows
        per batch, over every pass."""
        model = self.model
        model.train()
        stage = self._enter_stage()
        self.counts = {}
        total = torch.zeros((), device=self.device)
        done = 0
        for phase, opt, params in zip(self.phases, self.opts, self.groups):
            frozen = self._freeze_all_but(params) if len(self.phases) > 1 else []
            try:
                for _ in range(phase.passes):
                    total += self._pass(opt, phase.name or stage, done / self.passes)
                    done += 1
            finally:
                for p in frozen:
                    p.requires_grad_(True)
            model.end_phase(phase.name)
        self.epochs_done += 1
        for scheduler in self.schedulers:
            scheduler.step()
        return float(total) / max(1, len(self.rows) * self.passes)

    @property
    def in_last_stage(self) -> bool:
        """Whether the next epoch belongs to the last stage (always, without stages): early
        stopping may end training only there, so a plateau in pre-training cannot skip
        fine-tuning."""
        return self.epochs_done >= sum(stage.rounds for stage in self.stages[:-1])

    def _enter_stage(self) -> str:
        """The name of the stage this epoch belongs to ("" without stages); on a stage's first
        epoch, announce it to the model and set its L-BFGS round length."""
        if not self.stages:
            return ""
        end = 0
        for stage in self.stages:
            end += stage.rounds
            if self.epochs_done < end:
                break
        if stage is not self.stage:
            self.stage = stage
            self.model.start_stage(stage.name)
            iterations = stage.iterations or self.recipe.iterations
            for opt in self.opts:  # an optimizer that counts iterations per step (L-BFGS)
                for group in opt.param_groups:
                    if "max_iter" in group:
                        group["max_iter"], group["max_eval"] = iterations, iterations * 5 // 4
        return stage.name

    def _autocast(self):
        """The context the loss runs in: the cell's precision where the family allows it."""
        return precision.context(*self.low, "loss")

    def _freeze_all_but(self, params: list[torch.Tensor]) -> list[torch.Tensor]:
        """Stop gradients of every trainable parameter outside `params`; returns them."""
        keep = {id(p) for p in params}
        frozen = [p for p in self.model.parameters() if p.requires_grad and id(p) not in keep]
        for p in frozen:
            p.requires_grad_(False)
        return frozen

    def _pass(self, opt: torch.optim.Optimizer, phase: str, offset: float) -> torch.Tensor:
        """One pass over the rows in a fresh order, stepping `opt`; the rows-weighted sum of
        the batch losses. `offset`: the share of the epoch's passes done before this one."""
        values, plan = self._epoch_plan()
        total = torch.zeros((), device=self.device)
        share = 1.0 / self.passes
        for k, (lo, hi, rows, pattern) in enumerate(plan):
            batch = Batch(rows, pattern, values[lo:hi], self.steps,
                          self.epochs_done + offset + share * k / len(plan),
                          self.dense_output, phase)
            loss = self.model.train_step(batch, opt, self._autocast, self.counts)
            self.steps += 1
            total += loss.detach() * batch.size
        return total
