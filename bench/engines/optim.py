"""Fused optimizer steps: one pass over memory where torch runs several element-wise ops.

- RMSprop over one flat buffer, for the faithful per-user engine, which keeps all parameters,
  accumulated gradients and RMSprop state in flat buffers: on CPU a numba kernel (one read of
  p, G, v and one write of p, v, instead of six torch element-wise ops, which is what bounds
  the 200-100-200 model's per-user step); elsewhere the same arithmetic in torch ops, the very
  sequence `torch.optim.RMSprop` runs (single-tensor path).
- `FusedRprop`, the full-batch Rprop of AutoRec: `torch.optim.Rprop`'s arithmetic in one numba
  pass per parameter on CPU (torch's own runs about ten passes: sign, three masked fills,
  clamp, a copy...), torch's implementation elsewhere.
"""

from __future__ import annotations

import torch

try:
    import numba
    import numpy as np

    @numba.njit(parallel=True, fastmath=False, cache=True, nogil=True)
    def _rmsprop_numba(p, g, v, lr, wd, alpha, eps):  # pragma: no cover - compiled
        lr32 = np.float32(lr)
        wd32 = np.float32(wd)
        a32 = np.float32(alpha)
        b32 = np.float32(1.0 - alpha)
        e32 = np.float32(eps)
        for i in numba.prange(p.size):
            gi = g[i] + wd32 * p[i]
            vi = a32 * v[i] + b32 * gi * gi
            v[i] = vi
            p[i] -= lr32 * gi / (np.sqrt(vi) + e32)
    @numba.njit(parallel=True, fastmath=False, cache=True, nogil=True)
    def _rprop_numba(p, g, prev, step, eta_minus, eta_plus, step_min, step_max
                     ):  # pragma: no cover - compiled
        em, ep = np.float32(eta_minus), np.float32(eta_plus)
        lo, hi = np.float32(step_min), np.float32(step_max)
        for i in numba.prange(p.size):
            gi = g[i]
            s = gi * prev[i]
            if s > 0:
                st = min(max(step[i] * ep, lo), hi)
            elif s < 0:
                st = min(max(step[i] * em, lo), hi)
                gi = np.float32(0.0)
            else:
                st = min(max(step[i], lo), hi)
            step[i] = st
            if gi > 0:
                p[i] -= st
            elif gi < 0:
                p[i] += st
            prev[i] = gi
except ImportError:  # pragma: no cover - numba is a declared dependency
    _rmsprop_numba = _rprop_numba = None


def rmsprop_torch(p: torch.Tensor, g: torch.Tensor, v: torch.Tensor, lr: float, wd: float,
                  alpha: float = 0.99, eps: float = 1e-8) -> None:
    grad = torch.add(g, p, alpha=wd) if wd else g
    v.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
    p.addcdiv_(grad, v.sqrt().add_(eps), value=-lr)


def rmsprop_(p: torch.Tensor, g: torch.Tensor, v: torch.Tensor, lr: float, wd: float,
             alpha: float = 0.99, eps: float = 1e-8, use_numba: bool = True) -> None:
    """In-place RMSprop step (torch's defaults alpha=0.99, eps=1e-8, L2 weight decay): the
    numba kernel for float32 CPU buffers when `use_numba`, else the torch ops (the CUDA
    path, selectable on CPU)."""
    if (use_numba and _rmsprop_numba is not None and p.device.type == "cpu"
            and p.dtype == torch.float32):
        _rmsprop_numba(p.numpy(), g.numpy(), v.numpy(), lr, wd, alpha, eps)
    else:
        rmsprop_torch(p, g, v, lr, wd, alpha, eps)


def sgd_(p: torch.Tensor, g: torch.Tensor, lr: float, wd: float) -> None:
    """In-place plain SGD step with L2 weight decay, as `torch.optim.SGD` (no momentum)."""
    p.add_(torch.add(g, p, alpha=wd) if wd else g, alpha=-lr)


class FusedRprop(torch.optim.Rprop):
    """`torch.optim.Rprop` (defaults etas (0.5, 1.2), step sizes (1e-6, 50)) whose step is
    one numba pass per parameter for contiguous float32 CPU tensors, with the same state
    (`prev`, `step_size`, `step`) and arithmetic; any other tensor takes torch's step."""

    @torch.no_grad()
    def step(self, closure=None):
        if _rprop_numba is None or any(
                p.grad is not None and (p.device.type != "cpu" or p.dtype != torch.float32
                                        or not p.is_contiguous() or p.grad.is_sparse)
                for group in self.param_groups for p in group["params"]):
            return super().step(closure)
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            eta_minus, eta_plus = group["etas"]
            step_min, step_max = group["step_sizes"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["prev"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["step_size"] = torch.full_like(p, group["lr"])
                state["step"] += 1
                grad = p.grad.contiguous()
                _rprop_numba(p.view(-1).numpy(), grad.view(-1).numpy(),
                             state["prev"].view(-1).numpy(), state["step_size"].view(-1).numpy(),
                             eta_minus, eta_plus, step_min, step_max)
        return loss
