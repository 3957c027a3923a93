"""DiffRec (Wang, Xu, Feng, Lin, He and Chua, "Diffusion Recommender Model", SIGIR 2023; code
`YiyanXu/DiffRec`, `DiffRec/models/gaussian_diffusion.py` and `DNN.py`): a Gaussian diffusion
over users' binary interaction rows whose denoiser is an MLP autoencoder.

- Forward process q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I), with the authors'
  `linear-var` schedule: 1 - abar_t runs linearly from scale * noise_min to
  scale * noise_max over `steps`, and beta_1 is fixed at 1e-5.
- Denoiser: [items + time embedding] -> tanh layers -> items, dropout on the input, the
  sinusoidal time embedding (`emb_size`) through one linear layer; it predicts x_0.
- Training: t drawn by importance sampling over each step's last 10 losses (uniform until
  every step has 10), the squared error to x_0 averaged over items, weighted by
  SNR(t - 1) - SNR(t) (1 at t = 0; `reweight`) and divided by the draw's probability.
- Scoring: x_T = q_sample(x_0, T) for `sampling_steps` = T > 0 (x_0 itself for 0, the
  authors' setting), then every step's posterior mean with the denoiser's x_0, no noise.

The defaults are the authors' ML-1M clean-training recipe (inference.py: dims [200, 600],
40 steps, noise scale 0.005 from 0.005 to 0.01, lr 1e-3, batch 400); the authors stop after
20 epochs without a better validation Recall@20, here the suite's early stopping reads
validation NDCG@10."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .base import Batch, Choice, IntRange, LogUniform, ModelConfig, Recipe, Recommender, Space
from .registry import register

HISTORY = 10  # the authors' history_num_per_term


@dataclass(frozen=True)
class DiffRecConfig(ModelConfig):
    feedback: str = "implicit"
    inductive: bool = True
    dims: tuple[int, ...] = (200, 600)  # the authors' --dims: the decoder's widths
    emb_size: int = 10          # time embedding
    dropout: float = 0.5        # on the denoiser's input, in training
    steps: int = 40             # diffusion steps
    noise_scale: float = 0.005
    noise_min: float = 0.005
    noise_max: float = 0.01
    sampling_steps: int = 0     # forward steps before denoising at scoring time
    reweight: bool = True
    batched: Recipe | None = field(default_factory=lambda: Recipe(
        optimizer="adam", lr=1e-3, weight_decay=0.0, epochs=200, batch_size=400))


def linear_var_betas(steps: int, scale: float, low: float, high: float) -> np.ndarray:
    """The authors' `linear-var` schedule (`betas_from_linear_variance`), beta_1 = 1e-5."""
    variance = np.linspace(scale * low, scale * high, steps, dtype=np.float64)
    alpha_bar = 1 - variance
    betas = [1 - alpha_bar[0]] + [min(1 - alpha_bar[i] / alpha_bar[i - 1], 0.999)
                                  for i in range(1, steps)]
    betas = np.array(betas)
    betas[0] = 1e-5
    return betas


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embeddings of the steps `t` (cos, then sin)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32,
                                                           device=t.device) / half)
    args = t[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class Schedule:
    """The diffusion's constants (float64), as `GaussianDiffusion.calculate_for_diffusion`."""

    def __init__(self, betas: np.ndarray):
        b = torch.tensor(betas, dtype=torch.float64, device="cpu")
        alphas = 1.0 - b
        self.betas = b
        self.abar = torch.cumprod(alphas, 0)
        self.abar_prev = torch.cat([torch.ones(1, dtype=b.dtype, device="cpu"), self.abar[:-1]])
        self.posterior_variance = b * (1.0 - self.abar_prev) / (1.0 - self.abar)
        self.coef1 = b * torch.sqrt(self.abar_prev) / (1.0 - self.abar)
        self.coef2 = (1.0 - self.abar_prev) * torch.sqrt(alphas) / (1.0 - self.abar)

    @staticmethod
    def at(values: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """values[t] on t's device."""
        return values.to(t.device)[t]

    def snr(self, t: torch.Tensor) -> torch.Tensor:
        abar = self.at(self.abar, t)
        return abar / (1 - abar)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        abar = self.at(self.abar, t)
        return (torch.sqrt(abar).float()[:, None] * x0
                + torch.sqrt(1 - abar).float()[:, None] * noise)

    def posterior_mean(self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor
                       ) -> torch.Tensor:
        return (self.at(self.coef1, t).float()[:, None] * x0
                + self.at(self.coef2, t).float()[:, None] * xt)


class DiffRec(Recommender):
    def __init__(self, n_items: int, cfg: DiffRecConfig):
        super().__init__()
        self.cfg = cfg
        widths = [*cfg.dims, n_items]                 # the authors' out_dims
        ins = [n_items + cfg.emb_size, *widths[::-1][1:]]  # in_dims with the embedding
        self.emb = nn.Linear(cfg.emb_size, cfg.emb_size)
        self.in_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(ins[:-1], ins[1:]))
        self.out_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        for layer in (self.emb, *self.in_layers, *self.out_layers):  # the authors' init
            fan_out, fan_in = layer.weight.shape
            nn.init.normal_(layer.weight, 0.0, math.sqrt(2.0 / (fan_in + fan_out)))
            nn.init.normal_(layer.bias, 0.0, 0.001)
        self.drop = nn.Dropout(cfg.dropout)
        self.schedule = Schedule(linear_var_betas(cfg.steps, cfg.noise_scale, cfg.noise_min,
                                                  cfg.noise_max))
        self.register_buffer("lt_history", torch.zeros(cfg.steps, HISTORY, dtype=torch.float64))
        self.register_buffer("lt_count", torch.zeros(cfg.steps, dtype=torch.long))

    def denoise(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = torch.cat([self.drop(x), self.emb(timestep_embedding(t, self.cfg.emb_size))], -1)
        for layer in self.in_layers:
            h = torch.tanh(layer(h))
        for k, layer in enumerate(self.out_layers):
            h = layer(h)
            if k < len(self.out_layers) - 1:
                h = torch.tanh(h)
        return h

    def sample_steps(self, n: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """(t, p_t * steps): importance sampling once every step holds its history, else
        uniform (`sample_timesteps`, uniform_prob 0.001)."""
        steps = self.cfg.steps
        if not bool((self.lt_count == HISTORY).all()):
            return (torch.randint(0, steps, (n,), device=device),
                    torch.ones(n, dtype=torch.float64, device=device))
        lt = torch.sqrt((self.lt_history ** 2).mean(-1))
        p = lt / lt.sum() * (1 - 0.001) + 0.001 / steps
        t = torch.multinomial(p, n, replacement=True)
        return t.to(device), (p[t] * steps).to(device)

    def remember(self, t: torch.Tensor, losses: torch.Tensor) -> None:
        """Each step's last HISTORY losses, in the batch's order (the authors' loop)."""
        for step, value in zip(t.tolist(), losses.detach().double().tolist()):
            n = int(self.lt_count[step])
            if n == HISTORY:
                self.lt_history[step, :-1] = self.lt_history[step, 1:].clone()
                self.lt_history[step, -1] = value
            else:
                self.lt_history[step, n] = value
                self.lt_count[step] += 1

    def loss(self, batch: Batch) -> torch.Tensor:
        x0 = (batch.dense() != 0).float()
        t, pt = self.sample_steps(x0.shape[0], x0.device)
        noise = torch.randn_like(x0)
        xt = self.schedule.q_sample(x0, t, noise) if self.cfg.noise_scale else x0
        mse = (x0 - self.denoise(xt, t).float()).square().mean(1)
        weight = torch.ones_like(mse, dtype=torch.float64)
        if self.cfg.reweight:
            weight = torch.where(t == 0, torch.ones_like(weight),
                                 self.schedule.snr((t - 1).clamp_min(0)) - self.schedule.snr(t))
        losses = weight * mse.double()
        self.remember(t, losses)
        return (losses / pt).mean().float()

    def score(self, batch: Batch) -> torch.Tensor:
        x = (batch.dense() != 0).float()
        n = x.shape[0]
        if self.cfg.sampling_steps:
            t = torch.full((n,), self.cfg.sampling_steps - 1, dtype=torch.long, device=x.device)
            x = self.schedule.q_sample(x, t, torch.randn_like(x))
        if not self.cfg.noise_scale:
            for i in range(self.cfg.steps - 1, -1, -1):
                x = self.denoise(x, torch.full((n,), i, dtype=torch.long, device=x.device))
            return x
        for i in range(self.cfg.steps - 1, -1, -1):
            t = torch.full((n,), i, dtype=torch.long, device=x.device)
            x = self.schedule.posterior_mean(self.denoise(x, t), x, t)
        return x


register("diffrec", lambda n_rows, n_cols, cfg: DiffRec(n_cols, cfg),
         DiffRecConfig(note="the authors' ML-1M clean recipe: validation NDCG@10 (5% carving, "
                            "seed 0) 0.2005 on u1 (epoch 20 of 45); lr 1e-4 0.2057 (epoch 170 "
                            "of 195, slow), the authors' ML-1M noisy-training diffusion (5 "
                            "steps, scale 0.5 from 0.001 to 0.01) 0.1897"),
         "Wang et al., DiffRec, SIGIR 2023: Gaussian diffusion over interaction rows, an MLP "
         "denoiser predicting x_0, importance-sampled steps; the authors' ML-1M clean recipe",
         space=Space({"batched.lr": LogUniform(1e-5, 1e-2),
                      "dims": Choice(((200, 600), (300,), (1000,))),
                      "steps": IntRange(2, 100), "noise_scale": LogUniform(1e-4, 1e-1),
                      "noise_max": LogUniform(5e-3, 1e-1)},
                     "the authors' grid: learning rate, denoiser widths, steps and the noise "
                     "scale and bound"))
