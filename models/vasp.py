"""VASP (Vančura and Kordík, "Deep Variational Autoencoder with Shallow Parallel Path for
Top-N Recommendation", ICANN 2021; code `zombak79/vasp`, `VASP.ipynb` and `utils.py`): a deep
variational autoencoder and an EASE-like shallow path read the same binary row, and their
sigmoid outputs multiply:

    deep:     residual encoder (each layer swish(W h + the sum of the layers before), then
              layer norm), a Gaussian latent (mean, log-variance; sampled in training, the
              mean in scoring), a residual decoder; its output sigmoid(R e) * sigmoid(L z)
    shallow:  sigmoid(x B), B items x items with a zero diagonal (the authors' constraint,
              "critical to prevent learning simple identity")
    output:   deep * shallow, a probability per item

trained with the sigmoid focal loss (alpha 0.25, gamma 2; summed over items, averaged over
rows) plus the KL term (its mean over rows and latent units), on three views of each batch:
the full row to itself, and each user's items shuffled and cut in two halves, each half to
the other (the authors' `prevent_identity` 50/50 splits, drawn afresh at every step here
where the authors draw them once an epoch). The authors' ML-20M network (7 encoder and 5
decoder layers of 4096, a 2048 latent, Nadam) is far larger than the defaults here, which were
chosen on the validation carving at the suite's dataset sizes; Adam stands in for Nadam (the
suite's optimizers)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .base import Batch, Choice, IntRange, LogUniform, ModelConfig, Recipe, Recommender, Space
from .registry import register
from .sparse_ops import CSRBatch


@dataclass(frozen=True)
class VASPConfig(ModelConfig):
    feedback: str = "implicit"
    inductive: bool = True
    hidden: int = 256           # width of every residual layer
    latent: int = 128           # the Gaussian latent
    encoder_layers: int = 7     # the authors' 7
    decoder_layers: int = 5     # the authors' 5
    alpha: float = 0.25         # focal loss: weight of the positive class
    gamma: float = 2.0          # focal loss: focusing exponent
    halves: bool = True         # train on the two halves of each row too (prevent identity)
    batched: Recipe | None = field(default_factory=lambda: Recipe(
        optimizer="adam", lr=1e-3, weight_decay=0.0, epochs=100, batch_size=128))


class Residual(nn.Module):
    """Layers h_k = LN(swish(W_k h_{k-1} + h_1 + ... + h_{k-1})) (h_0 the input, no sum)."""

    def __init__(self, n_in: int, width: int, depth: int):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(n_in if k == 0 else width, width)
                                    for k in range(depth))
        # Keras' LayerNormalization epsilon, the authors' layers
        self.norms = nn.ModuleList(nn.LayerNorm(width, eps=1e-3) for _ in range(depth))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        total = None
        for layer, norm in zip(self.layers, self.norms):
            a = layer(h) if total is None else layer(h) + total
            h = norm(F.silu(a))
            total = h if total is None else total + h
        return h


class _ZeroDiagonalProduct(torch.autograd.Function):
    """X @ B' for a binary X given by its pattern (a `CSRBatch`) and B' = B with a zero
    diagonal, and B's gradient X.T @ g with a zero diagonal: the products autograd makes of
    `x @ (B - diag(B))` at the cost of X's entries (an ML-1M row is 4% full, an ML-20M one
    under 1%) and without the items x items copies of B that form makes. X.T @ g gathers
    g's rows where the pattern carries its column view (`with_column_view`)."""

    @staticmethod
    def forward(ctx, b, pattern: CSRBatch):
        ones = torch.ones(pattern.cols.numel(), dtype=b.dtype, device=b.device)
        out = pattern.rows_times(b, ones)
        # less B's diagonal where a row holds the column (the identity path it may not take)
        out.index_put_((pattern.entry_rows(), pattern.cols),
                       b.diagonal().index_select(0, pattern.cols).neg(), accumulate=True)
        ctx.pattern, ctx.ones = pattern, ones
        return out

    @staticmethod
    def backward(ctx, g):
        db = ctx.pattern.cols_times(g.to(ctx.ones.dtype).contiguous(), ctx.ones)
        db.diagonal().zero_()
        return db, None


class VASP(Recommender):
    # weights, gradients and Adam's moments, and in the shallow part's backward its column
    # view's blocks and the zero-diagonal product's copy (its items x items part dominates)
    working_copies = 6.5

    def __init__(self, n_items: int, cfg: VASPConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Residual(n_items, cfg.hidden, cfg.encoder_layers)
        self.mean = nn.Linear(cfg.hidden, cfg.latent)
        self.log_var = nn.Linear(cfg.hidden, cfg.latent)
        self.decoder = Residual(cfg.latent, cfg.hidden, cfg.decoder_layers)
        self.decoder_resnet = nn.Linear(cfg.hidden, n_items)
        self.decoder_latent = nn.Linear(cfg.latent, n_items)
        self.shallow = nn.Parameter(torch.empty(n_items, n_items))
        for m in self.modules():  # Keras' defaults: Glorot-uniform kernels, zero biases
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.xavier_uniform_(self.shallow)
        with torch.no_grad():
            self.shallow.fill_diagonal_(0.0)

    def _logits(self, x: torch.Tensor, pattern: CSRBatch
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The three logits whose sigmoids multiply (resnet, latent, shallow) and the KL, for
        binary rows x whose nonzero entries are `pattern`."""
        h = self.encoder(x)
        mu, log_var = self.mean(h), self.log_var(h)
        z = mu
        if self.training:
            z = mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)
        kl = -0.5 * (1 + log_var - mu.square() - log_var.exp()).mean()
        e = self.decoder(z)
        return (self.decoder_resnet(e), self.decoder_latent(z),
                _ZeroDiagonalProduct.apply(self.shallow, pattern), kl)

    @staticmethod
    def _binary(batch: Batch) -> tuple[torch.Tensor, CSRBatch]:
        """The batch's rows as binary (x), and the pattern of their nonzero entries (the
        batch's own where every stored value is nonzero)."""
        pattern = batch.pattern
        keep = batch.values != 0
        if not bool(keep.all()):
            pattern = CSRBatch.of_rows(batch.entry_rows()[keep], pattern.cols[keep],
                                       batch.size, pattern.n_cols)
        x = torch.zeros(batch.size, pattern.n_cols, dtype=batch.values.dtype,
                        device=batch.values.device)
        x[pattern.entry_rows(), pattern.cols] = 1.0
        return x, pattern

    def _views(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, CSRBatch]:
        """(inputs, targets, the inputs' pattern with its column view): the full rows to
        themselves, then with `halves` each row's items in a random order cut at int(n/2),
        each half to the other."""
        x, pattern = self._binary(batch)
        if not self.cfg.halves:
            return x, x, pattern.with_column_view()
        n, rows, cols = batch.size, pattern.entry_rows(), pattern.cols
        keys = torch.rand(rows.numel(), dtype=torch.float64, device=x.device)
        order = torch.argsort(rows.double() + keys)  # by row, random within a row
        counts = pattern.crow.diff()
        starts = pattern.crow[:-1]
        position = torch.empty_like(rows)
        position[order] = torch.arange(rows.numel(), device=x.device) - starts[rows[order]]
        first = position < (counts // 2)[rows]  # split2_50: the first int(0.5 n) items
        a = torch.zeros_like(x)
        a[rows[first], cols[first]] = 1.0
        b = x - a
        stacked = CSRBatch.of_rows(torch.cat([rows, rows[first] + n, rows[~first] + 2 * n]),
                                   torch.cat([cols, cols[first], cols[~first]]), 3 * n,
                                   pattern.n_cols)
        return torch.cat([x, a, b]), torch.cat([x, b, a]), stacked.with_column_view()

    def loss(self, batch: Batch) -> torch.Tensor:
        inputs, targets, pattern = self._views(batch)
        r, lat, s, kl = self._logits(inputs, pattern)
        r, lat, s = r.float(), lat.float(), s.float()
        # log y and log(1 - y) of y = sigmoid(r) sigmoid(lat) sigmoid(s), clipped as Keras
        # clips probabilities to [1e-7, 1 - 1e-7]
        eps = 1e-7
        log_y = (F.logsigmoid(r) + F.logsigmoid(lat) + F.logsigmoid(s)).clamp(
            torch.log(torch.tensor(eps)), torch.log1p(torch.tensor(-eps)))
        y = log_y.exp()
        ce = -(targets * log_y + (1 - targets) * torch.log1p(-y))
        p_t = targets * y + (1 - targets) * (1 - y)
        weight = targets * self.cfg.alpha + (1 - targets) * (1 - self.cfg.alpha)
        focal = (weight * (1 - p_t).pow(self.cfg.gamma) * ce).sum(1).mean()
        return focal + kl

    def score(self, batch: Batch) -> torch.Tensor:
        x, pattern = self._binary(batch)
        r, lat, s, _ = self._logits(x.to(self.shallow.dtype), pattern)
        return torch.sigmoid(r) * torch.sigmoid(lat) * torch.sigmoid(s)


register("vasp", lambda n_rows, n_cols, cfg: VASP(n_cols, cfg),
         VASPConfig(note="hidden 256, latent 128, 7 + 5 layers, Adam 1e-3, batch 128: "
                         "validation NDCG@10 (5% carving, seed 0) 0.1850 on u1 (epoch 10); "
                         "lr 3e-4 0.1848 (epoch 40); hidden 512 / latent 256 at lr 1e-3 / "
                         "3e-4 / 1e-4 0.1785 / 0.1793 / 0.1816 (epochs 10 / 30 / 95); 2 + 2 "
                         "layers 0.1798. Chosen on u1 alone: an ml-1m epoch costs about 20 s "
                         "here"),
         "Vančura and Kordík, VASP, ICANN 2021: a residual VAE and an EASE-like shallow path, "
         "sigmoid outputs multiplied, focal loss, the 50/50 prevent-identity views",
         space=Space({"batched.lr": LogUniform(1e-5, 1e-3), "hidden": Choice((256, 512, 1024)),
                      "latent": Choice((128, 256, 512)), "encoder_layers": IntRange(1, 7),
                      "decoder_layers": IntRange(1, 5)},
                     "the step size and the network's size, which the authors set per "
                     "dataset"))
