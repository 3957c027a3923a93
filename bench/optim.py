"""Optimizer updates over one flat parameter buffer.

The faithful per-user engine keeps all parameters, accumulated gradients and RMSprop state
in flat buffers so that one step is one pass over memory. On CPU the pass is a numba kernel
(one read of p, G, v and one write of p, v, instead of six torch element-wise ops, which is
what bounds the 200-100-200 model's per-user step); elsewhere it is the same arithmetic in
torch ops, the very sequence `torch.optim.RMSprop` runs (single-tensor path).
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
except ImportError:  # pragma: no cover - numba is a declared dependency
    _rmsprop_numba = None


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
