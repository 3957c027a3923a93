"""Kernelised autoencoders: Sparse FC (Muller, Martel and Indiveri, "Kernelized Synaptic
Weight Matrices", ICML 2018; the authors' lorenzMuller/kernelNet_MovieLens,
`kernelNet_ml1m.py`), which GLocal-K (Han et al., CIKM 2021; usydnlp/Glocal_K) pre-trains.

A kernel layer's weight is a dense W (n_in x n_out) times a learned sparsifying kernel
w_hat[i, j] = max(0, 1 - ||u_i - v_j||^2), u_i, v_j in R^5, so that pairs of units whose
embeddings drift apart lose their connection entirely; its regulariser is
lambda_s / 2 ||w_hat||^2 + lambda_2 / 2 ||W||^2 (TensorFlow's `l2_regularizer`, as the authors
apply it). Initialisation as the authors' TF1 code has it: W and b Glorot-uniform (TF's
default for `get_variable`, which for the 1-D bias uses fan_in = fan_out = n), u and v
truncated normal with std 1e-3 (so every w_hat starts near 1).

Item-based, as in both papers: an item's ratings over users in, two kernel layers of 500
sigmoid units, a kernel layer back to the users with identity output; the loss is
1/2 the sum of squared errors at observed ratings (a sum, not a mean) plus every layer's
regulariser, minimised by full-batch L-BFGS in rounds (the batched engine's `lbfgs`
optimizer: an epoch is one round of `iterations` iterations from a fresh memory, as the
authors' 50-iteration scipy calls are). Deviations from the authors: torch's L-BFGS with a
strong-Wolfe line search instead of scipy's L-BFGS-B (the same memory of 10, no bounds; the
line search keeps each step a descent, in float32 without a round trip to float64 on the
host); the first layer is a sparse product and the output is computed only at the observed
entries (the loss needs nothing else); rounds are chosen by early stopping on the validation
carving instead of running all of them and reading the test set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numba
import numpy as np
import torch
from torch import nn

from .base import Batch, Flops, IntRange, LogUniform, ModelConfig, Recipe, Recommender, Space
from .registry import register
from .sparse_ops import numba_threads, sampled_linear, sparse_linear


def sparsifying_kernel(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """w_hat[i, j] = max(0, 1 - ||u_i - v_j||^2) for u (n_in x d), v (n_out x d)."""
    return torch.clamp(1.0 - torch.cdist(u, v).square(), min=0.0)


@numba.njit(parallel=True, fastmath=True, nogil=True, cache=True)
def _kernel_grads(g, w, k, gs, g2, dw, dd2):  # pragma: no cover - compiled
    """One pass of `_KernelWeight`'s backward over the n_in x n_out matrices (float32 on CPU):
    dW = g * k + g2 * W and the gradient of the squared distances,
    dd2 = -(g * W + gs * k) where k > 0, else 0."""
    for i in numba.prange(w.shape[0]):
        for j in range(w.shape[1]):
            kk = k[i, j]
            dw[i, j] = g[i, j] * kk + g2 * w[i, j]
            dd2[i, j] = -(g[i, j] * w[i, j] + gs * kk) if kk > 0 else np.float32(0.0)


def _compiled(weight: torch.Tensor) -> bool:
    """Whether `_KernelWeight` takes its compiled passes (float32 on CPU)."""
    return weight.device.type == "cpu" and weight.dtype == torch.float32


@numba.njit(parallel=True, fastmath=True, nogil=True, cache=True)
def _kernel_forward(w, u, vt, k, eff, sums):  # pragma: no cover - compiled
    """One pass of `_KernelWeight`'s forward (float32 on CPU): k = max(0, 1 - ||u_i - v_j||^2)
    from u (n_in x d) and v transposed (d x n_out), eff = w * k, and per row i the sums of
    k^2 and w^2 (`sums`, n_in x 2)."""
    n_out = w.shape[1]
    for i in numba.prange(w.shape[0]):
        d2 = np.zeros(n_out, np.float32)
        for t in range(u.shape[1]):
            ut = u[i, t]
            for j in range(n_out):
                diff = ut - vt[t, j]
                d2[j] += diff * diff
        sk = np.float32(0.0)
        sw = np.float32(0.0)
        for j in range(n_out):
            kk = max(np.float32(0.0), np.float32(1.0) - d2[j])
            k[i, j] = kk
            eff[i, j] = w[i, j] * kk
            sk += kk * kk
            sw += w[i, j] * w[i, j]
        sums[i, 0] = sk
        sums[i, 1] = sw


class _KernelWeight(torch.autograd.Function):
    """(W * w_hat, lambda_s / 2 ||w_hat||^2 + lambda_2 / 2 ||W||^2) with a hand-written
    backward, since autograd through `cdist` and the element-wise products makes about ten
    passes over the n_in x n_out matrices and dominates a layer's step; here the squared
    distances come from one product of rank d and the gradients of u and v from two more."""

    @staticmethod
    def forward(ctx, weight, u, v, lambda_s: float, lambda_2: float):
        ctx.lambdas = (lambda_s, lambda_2)
        if _compiled(weight):
            k, eff = torch.empty_like(weight), torch.empty_like(weight)
            sums = torch.empty(weight.shape[0], 2)
            numba_threads()
            _kernel_forward(weight.detach().contiguous().numpy(), u.detach().numpy(),
                            v.detach().t().contiguous().numpy(), k.numpy(), eff.numpy(),
                            sums.numpy())
            sk, sw = sums.sum(0)
            ctx.save_for_backward(weight, u, v, k)
            return eff, 0.5 * (lambda_s * sk + lambda_2 * sw)
        # ||u_i - v_j||^2 = ||u_i||^2 + ||v_j||^2 - 2 u_i . v_j (as cdist computes it at
        # these sizes)
        d2 = torch.addmm(u.square().sum(1, keepdim=True) + v.square().sum(1), u, v.t(),
                         alpha=-2.0)
        k = d2.neg_().add_(1.0).clamp_(min=0.0)
        ctx.save_for_backward(weight, u, v, k)
        penalty = 0.5 * (lambda_s * torch.dot(k.view(-1), k.view(-1))
                         + lambda_2 * torch.dot(weight.reshape(-1), weight.reshape(-1)))
        return weight * k, penalty

    @staticmethod
    def backward(ctx, g_eff, g_pen):
        weight, u, v, k = ctx.saved_tensors
        lambda_s, lambda_2 = ctx.lambdas
        gs, g2 = float(g_pen) * lambda_s, float(g_pen) * lambda_2
        g_eff = g_eff.contiguous()
        if _compiled(weight):
            dw, dd2 = torch.empty_like(weight), torch.empty_like(weight)
            numba_threads()
            _kernel_grads(g_eff.numpy(), weight.detach().numpy(), k.numpy(), gs, g2,
                          dw.numpy(), dd2.numpy())
        else:
            # d/dk: g_eff * W + g_pen * lambda_s * k;  d/dW: g_eff * k + g_pen * lambda_2 * W
            dk = torch.addcmul(k * gs, g_eff, weight)
            dw = torch.addcmul(weight * g2, g_eff, k)
            # k = 1 - d2 where positive: d/d(d2) = -d/dk there, 0 where the kernel is cut
            dd2 = dk.neg_().masked_fill_(k <= 0, 0.0)
        # d(d2_ij)/du_i = 2 (u_i - v_j), d(d2_ij)/dv_j = 2 (v_j - u_i)
        du = torch.addmm(u * dd2.sum(1, keepdim=True), dd2, v, alpha=-1.0).mul_(2.0)
        dv = torch.addmm(v * dd2.sum(0).unsqueeze(1), dd2.t(), u, alpha=-1.0).mul_(2.0)
        return dw, du, dv, None, None


def kernel_weight(weight: torch.Tensor, u: torch.Tensor, v: torch.Tensor, lambda_s: float,
                  lambda_2: float) -> tuple[torch.Tensor, torch.Tensor]:
    """A kernel layer's effective weight W * w_hat(u, v) and its regulariser."""
    return _KernelWeight.apply(weight, u, v, lambda_s, lambda_2)


class KernelLayer(nn.Module):
    """x @ (W * w_hat) + b, with W stored in x out (`weight`), u per input, v per output."""

    def __init__(self, n_in: int, n_out: int, dim: int = 5):
        super().__init__()
        limit = math.sqrt(6.0 / (n_in + n_out))
        self.weight = nn.Parameter(torch.empty(n_in, n_out).uniform_(-limit, limit))
        bias = math.sqrt(3.0 / n_out)
        self.bias = nn.Parameter(torch.empty(n_out).uniform_(-bias, bias))
        self.u = nn.Parameter(nn.init.trunc_normal_(torch.empty(n_in, dim), std=1e-3,
                                                    a=-2e-3, b=2e-3))
        self.v = nn.Parameter(nn.init.trunc_normal_(torch.empty(n_out, dim), std=1e-3,
                                                    a=-2e-3, b=2e-3))

    def effective(self, lambda_s: float = 0.0, lambda_2: float = 0.0
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """(W * w_hat, lambda_s / 2 ||w_hat||^2 + lambda_2 / 2 ||W||^2)."""
        return kernel_weight(self.weight, self.u, self.v, lambda_s, lambda_2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, _ = self.effective()
        return torch.addmm(self.bias, x, w)


@dataclass(frozen=True)
class KernelAEConfig(ModelConfig):
    # L-BFGS's line search compares losses to a few ulps: its loss stays float32
    low_precision: tuple[str, ...] = ("score",)
    rows: str = "item"
    hidden: tuple[int, ...] = (500, 500)
    dim: int = 5                 # kernel embedding dimension
    lambda_2: float = 60.0       # L2 on W
    lambda_s: float = 0.013      # L2 on the kernel w_hat
    batched: Recipe | None = field(default_factory=lambda: Recipe(
        optimizer="lbfgs", lr=1.0, weight_decay=0.0, epochs=20, batch_size=0, iterations=50))


class KernelAE(Recommender):
    """Sparse FC: kernel layers, sigmoid hidden units, identity output over the columns."""

    def __init__(self, n_in: int, cfg: KernelAEConfig):
        super().__init__()
        self.cfg = cfg
        widths = (n_in, *cfg.hidden, n_in)
        self.layers = nn.ModuleList(KernelLayer(a, b, cfg.dim)
                                    for a, b in zip(widths[:-1], widths[1:]))

    def _effective(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Every layer's (W * w_hat, penalty), computed once per evaluation and shared by all
        the passes it makes through the layers."""
        c = self.cfg
        return [layer.effective(c.lambda_s, c.lambda_2) for layer in self.layers]

    def _up(self, first: torch.Tensor, eff) -> torch.Tensor:
        """The last hidden layer's output from the first layer's pre-activation."""
        h = torch.sigmoid(first)
        for layer, (w, _) in zip(self.layers[1:-1], eff[1:-1]):
            h = torch.sigmoid(torch.addmm(layer.bias, h, w))
        return h

    def _hidden(self, batch: Batch, eff) -> torch.Tensor:
        """The last hidden layer's output for sparse rows."""
        first = self.layers[0]
        return self._up(sparse_linear(eff[0][0], first.bias, batch.pattern, batch.values), eff)

    def _hidden_dense(self, x: torch.Tensor, eff) -> torch.Tensor:
        """The last hidden layer's output for dense rows."""
        return self._up(torch.addmm(self.layers[0].bias, x, eff[0][0]), eff)

    def _output(self, h: torch.Tensor, eff) -> torch.Tensor:
        """Full-width outputs from the last hidden layer."""
        return torch.addmm(self.layers[-1].bias, h, eff[-1][0])

    def loss(self, batch: Batch) -> torch.Tensor:
        eff = self._effective()
        return self._observed_loss(self._hidden(batch, eff), batch, eff)

    def _observed_loss(self, h: torch.Tensor, batch: Batch, eff) -> torch.Tensor:
        """1/2 the squared error of the output layer at the batch's observed entries (from
        the last hidden layer `h`), plus every layer's penalty."""
        out = self.layers[-1]
        # the transposed kernel weight made contiguous: embedding_bag's backward gathers
        # from a strided table are far slower
        pred = sampled_linear(h, eff[-1][0].t().contiguous(), out.bias, batch.pattern)
        err = pred - batch.values
        return 0.5 * err.square().sum() + sum(penalty for _, penalty in eff)

    def score(self, batch: Batch) -> torch.Tensor:
        eff = self._effective()
        return self._output(self._hidden(batch, eff), eff)

    def epoch_flops(self, x) -> Flops:
        """One L-BFGS iteration's function and gradient (about 1.25 evaluations each, the
        line search's), per iteration of a round: 2 FLOPs per multiply-add, forward plus
        twice that backward, over the sparse first layer, the dense hidden layers and the
        output at observed entries."""
        widths = [self.layers[0].weight.shape[0]] + [layer.weight.shape[1]
                                                     for layer in self.layers]
        rows = x.shape[0]
        first = x.nnz * widths[1]
        inner = rows * sum(a * b for a, b in zip(widths[1:-2], widths[2:-1]))
        out = x.nnz * widths[-2]
        kernels = sum(a * b * (self.cfg.dim + 2) for a, b in zip(widths[:-1], widths[1:]))
        iterations = self.cfg.batched.iterations
        return Flops(2.0 * 3 * (first + inner + out + kernels) * 1.25 * iterations, "gather",
                     widths[1])


@dataclass(frozen=True)
class GLocalKConfig(KernelAEConfig):
    lambda_2: float = 70.0
    lambda_s: float = 0.018
    kernel_size: int = 3         # the global convolution kernel is kernel_size x kernel_size
    dot_scale: float = 0.5
    pretrain_rounds: int = 20
    pretrain_iterations: int = 50
    finetune_rounds: int = 30
    finetune_iterations: int = 10
    batched: Recipe | None = field(default_factory=lambda: Recipe(
        optimizer="lbfgs", lr=1.0, weight_decay=0.0, epochs=50, batch_size=0, iterations=50))


def global_kernel(item_means: torch.Tensor, conv: torch.Tensor, size: int,
                  dot_scale: float) -> torch.Tensor:
    """GLocal-K's global kernel: the items' mean reconstructions (n_items,) times a learned
    (n_items x size^2) matrix, scaled, as a size x size convolution kernel."""
    return ((item_means @ conv) * dot_scale).view(size, size)


class ConvCells(NamedTuple):
    """Where each observed entry lands under each tap of the convolution: `index`, (size^2,
    nnz) flat cells of the output, and `valid`, whether the tap lands inside it (an entry
    that falls outside points at cell 0 and adds nothing there)."""

    index: torch.Tensor
    valid: torch.Tensor


def conv_cells(rows: torch.Tensor, cols: torch.Tensor, shape: tuple[int, int], size: int,
               order: torch.Tensor | None = None) -> ConvCells:
    """Where each observed entry (`rows`, `cols` of an items x users matrix of `shape`) lands
    under each tap of a 'same'-padded size x size cross-correlation: (size^2, nnz) flat cell
    indices into the output, whose rows are `order`'s (default: every row in index order).
    Entries that fall outside, or on a row not in `order`, are marked not valid."""
    n_rows, n_cols = shape
    where = torch.arange(n_rows, device=rows.device)
    if order is not None:
        where = torch.full((n_rows,), -1, dtype=torch.long, device=rows.device)
        where[order] = torch.arange(len(order), device=rows.device)
    pad, taps, valid = size // 2, [], []
    for a in range(size):
        for b in range(size):
            i, j = rows + (pad - a), cols + (pad - b)
            ok = (i >= 0) & (i < n_rows) & (j >= 0) & (j < n_cols)
            at = where[i.clamp(0, n_rows - 1)]
            ok &= at >= 0
            taps.append(torch.where(ok, at * n_cols + j, 0))
            valid.append(ok)
    return ConvCells(torch.stack(taps), torch.stack(valid))


def global_conv(cells: ConvCells, values: torch.Tensor, kernel: torch.Tensor,
                out_shape: tuple[int, int]) -> torch.Tensor:
    """ReLU of the 'same'-padded cross-correlation of the items x users rating matrix (its
    observed `values`, zeros elsewhere) with `kernel` (TensorFlow's conv2d, which the
    authors call), so a cell mixes its neighbours in item and user id order; `cells` from
    `conv_cells`. Each entry adds kernel[a, b] times its rating to the cell (a, b) away: one
    scatter of size^2 x nnz values instead of a dense one-channel conv2d over the whole
    items x users grid (most of which is empty), and the kernel's gradient is a gather at the
    same cells."""
    contrib = (values[None, :] * cells.valid) * kernel.reshape(-1, 1)
    n = out_shape[0] * out_shape[1]
    # in place on fresh zeros, and no slice of a larger buffer: the output is the whole
    # items x users grid, and a slice's backward would copy it twice
    out = torch.zeros(n, dtype=contrib.dtype, device=contrib.device)
    out.index_add_(0, cells.index.reshape(-1), contrib.reshape(-1))
    return out.relu_().view(out_shape)


class GLocalK(KernelAE):
    """GLocal-K: the kernel autoencoder pre-trained (stage `pretrain`), then fine-tuned with
    the global kernel (stage `finetune`): the input becomes ReLU(conv2d(R, global kernel)),
    the whole items x users matrix, and passes through the same layers.

    The convolution mixes rows and columns that are neighbours in the suite's index order:
    items and users sorted by their original ids (`Split.item_ids`, `user_ids`), as the
    authors' loaders order them. It needs the whole matrix, so the model scores every row at
    once (`whole_matrix`) and places each batch's rows at their indices (`Batch.rows`)."""

    whole_matrix = True

    def __init__(self, n_rows: int, n_in: int, cfg: GLocalKConfig):
        super().__init__(n_in, cfg)
        self.n_rows = n_rows
        std = 0.1
        self.conv = nn.Parameter(nn.init.trunc_normal_(
            torch.empty(n_rows, cfg.kernel_size ** 2), std=std, a=-2 * std, b=2 * std))
        self.register_buffer("finetuning", torch.zeros((), dtype=torch.bool))

    def stages(self):
        from .base import Stage

        c = self.cfg
        return (Stage("pretrain", c.pretrain_rounds, c.pretrain_iterations),
                Stage("finetune", c.finetune_rounds, c.finetune_iterations))

    def start_stage(self, name: str) -> None:
        self.finetuning.fill_(name == "finetune")

    def _mean_output(self, h: torch.Tensor, eff) -> torch.Tensor:
        """Each row's output averaged over the columns, from the last hidden layer: the
        output layer is affine, so this is h times the mean column of its weight, without the
        rows x columns output (the authors' code forms it, then averages; here it would cost
        a third of every fine-tuning evaluation)."""
        out = self.layers[-1]
        return torch.addmv(out.bias.mean(), h, eff[-1][0].mean(1))

    def _convolved(self, batch: Batch, eff) -> torch.Tensor:
        """ReLU(conv2d(R, global kernel)) at the batch's rows, in batch order (R holds the
        batch's rows, zeros elsewhere); the global kernel from the current layers'
        reconstruction of R averaged over users (rows without ratings reconstruct from a
        zero input, as the authors' dense matrix has them)."""
        c = self.cfg
        means = self._mean_output(self._hidden(batch, eff), eff)  # the batch's rows
        zero = torch.zeros(1, batch.pattern.n_cols, device=means.device)
        empty = self._mean_output(self._hidden_dense(zero, eff), eff)
        means = empty.expand(self.n_rows).clone().index_put((batch.rows,), means)
        kernel = global_kernel(means, self.conv, c.kernel_size, c.dot_scale)
        return global_conv(self._cells(batch), batch.values, kernel,
                           (len(batch.rows), batch.pattern.n_cols))

    def _cells(self, batch: Batch) -> torch.Tensor:
        """`conv_cells` of the batch's entries, its rows in batch order; kept while the batch
        is the same (every evaluation of an L-BFGS round)."""
        held = getattr(self, "_held_cells", None)
        if held is None or held[0] is not batch.pattern or held[1] is not batch.rows:
            cells = conv_cells(batch.rows[batch.entry_rows()], batch.pattern.cols,
                               (self.n_rows, batch.pattern.n_cols), self.cfg.kernel_size,
                               order=batch.rows)
            held = self._held_cells = (batch.pattern, batch.rows, cells)
        return held[2]

    def loss(self, batch: Batch) -> torch.Tensor:
        if batch.phase != "finetune":
            return super().loss(batch)
        eff = self._effective()
        h = self._hidden_dense(self._convolved(batch, eff), eff)
        return self._observed_loss(h, batch, eff)

    def score(self, batch: Batch) -> torch.Tensor:
        if not bool(self.finetuning):
            return super().score(batch)
        eff = self._effective()
        return self._output(self._hidden_dense(self._convolved(batch, eff), eff), eff)


def _build(n_rows: int, n_cols: int, cfg: KernelAEConfig) -> KernelAE:
    if isinstance(cfg, GLocalKConfig):
        return GLocalK(n_rows, n_cols, cfg)
    return KernelAE(n_cols, cfg)


# GLocal-K's pre-training penalties and 5-iteration rounds on ML-100K (the Sparse FC authors
# published no ML-100K recipe), run to the same 1000 iterations as ML-1M's recipe: GLocal-K's
# 30 rounds leave validation still falling (u1, seed 0: 0.9229 at round 30, 0.8737 at 184)
ML100K = {"lambda_2": 20.0, "lambda_s": 0.006, "batched.iterations": 5, "batched.epochs": 200}

# the two penalties both families search, around the values their authors set per dataset
PENALTIES = {"lambda_2": LogUniform(1.0, 300.0), "lambda_s": LogUniform(1e-3, 0.1)}

register("sparse-fc", _build,
         KernelAEConfig(note="the authors' ML-1M recipe: 500-500, lambda_2 60, lambda_s 0.013, "
                             "up to 20 rounds of 50 L-BFGS iterations; on ml-100k GLocal-K's "
                             "pre-training penalties (lambda_2 20, lambda_s 0.006) in up to 200 "
                             "rounds of 5: validation RMSE (5% carving, seed 0) 0.8737 on u1 "
                             "(best round 184; GLocal-K's 30 rounds: 0.9229)"),
         "Muller et al., Kernelized Synaptic Weight Matrices, ICML 2018 (kernelNet_ml1m.py): "
         "item-based 500-500 kernel autoencoder, 1/2 SSE + kernel and L2 penalties, L-BFGS",
         space=Space({**PENALTIES, "batched.iterations": IntRange(5, 50)},
                     "the two penalties around the authors' (their sweep varied both), and "
                     "the round length GLocal-K varies (5 on ML-100K, 50 on ML-1M)"),
         datasets={"ml-100k": ML100K})

register("glocal-k", _build,
         GLocalKConfig(note="the authors' ML-1M recipe: 500-500, lambda_2 70, lambda_s 0.018, "
                            "dot_scale 0.5, pre-training 20 rounds of 50 L-BFGS iterations, "
                            "fine-tuning 30 rounds of 10; ML-100K: the authors' lambda_2 20, "
                            "lambda_s 0.006, dot_scale 1 and fine-tuning 60 rounds of 5, "
                            "pre-training as long as sparse-fc's (200 rounds of 5, where the "
                            "authors' 30 stop at validation RMSE 0.9237): on u1 (5% carving, "
                            "seed 0) validation reads 0.8740 at pre-training round 150 and "
                            "fine-tuning never beats it (0.8946 ten rounds in, 0.8889 at 50), "
                            "while the authors' 30 rounds reach 0.8826 after 60 of "
                            "fine-tuning and 0.8812 after 120"),
         "Han et al., GLocal-K, CIKM 2021 (usydnlp/Glocal_K): the kernel autoencoder "
         "pre-trained, then fine-tuned on ReLU(conv2d(R, global kernel)), L-BFGS throughout",
         space=Space({**PENALTIES, "dot_scale": LogUniform(0.1, 4.0)},
                     "the two penalties and the global kernel's scale, the three values the "
                     "authors set per dataset"),
         datasets={"ml-100k": {"lambda_2": 20.0, "lambda_s": 0.006, "dot_scale": 1.0,
                               "pretrain_rounds": 200, "pretrain_iterations": 5,
                               "finetune_rounds": 60, "finetune_iterations": 5,
                               "batched.epochs": 260, "batched.iterations": 5}})
