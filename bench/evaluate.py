"""Evaluation protocols. Masked rating error: the model reads each user's training row and is
scored on that user's held-out ratings (and, for reference, on the training ratings).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from datasets import Split
from models.sparse_ops import CSRBatch

from . import metrics


def _csr_to_device(m: sp.csr_matrix, device: torch.device):
    return (m.indptr.astype(np.int64), torch.as_tensor(m.indices.astype(np.int64), device=device),
            torch.as_tensor(m.data, device=device))


@torch.no_grad()
def score_batches(model, inputs: sp.csr_matrix, device: torch.device, batch_users: int = 1024):
    """Yield (first_user, scores) with full-width model outputs for users in batches."""
    model.eval()
    indptr, items, values = _csr_to_device(inputs, device)
    n = inputs.shape[0]
    for a in range(0, n, batch_users):
        b = min(a + batch_users, n)
        lo, hi = int(indptr[a]), int(indptr[b])
        crow = torch.as_tensor(indptr[a:b + 1] - lo, device=device)
        h = model.encode_sparse(CSRBatch(crow, items[lo:hi], inputs.shape[1]), values[lo:hi])
        yield a, model.decode(h)


def predict_at(model, inputs: sp.csr_matrix, targets: sp.csr_matrix, device: torch.device,
               batch_users: int = 1024) -> np.ndarray:
    """Model outputs at the nonzero entries of `targets` (in CSR data order)."""
    out = np.empty(targets.nnz, dtype=np.float32)
    tptr = targets.indptr
    cols = torch.as_tensor(targets.indices.astype(np.int64), device=device)
    for a, scores in score_batches(model, inputs, device, batch_users):
        b = a + scores.shape[0]
        lo, hi = int(tptr[a]), int(tptr[b])
        rows = torch.as_tensor(np.repeat(np.arange(b - a), np.diff(tptr[a:b + 1])), device=device)
        out[lo:hi] = scores[rows, cols[lo:hi]].float().cpu().numpy()
    return out


def _row_index(m: sp.csr_matrix) -> np.ndarray:
    return np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))


def rating_errors(pred: np.ndarray, target: sp.csr_matrix) -> dict[str, float]:
    """Headline metrics on clamped predictions, plus unclamped RMSE and the legacy figure."""
    true = target.data.astype(np.float64)
    sse, n = metrics.per_user_sse(pred, true, _row_index(target), target.shape[0])
    return {"rmse": metrics.rmse(metrics.clamp(pred), true),
            "mae": metrics.mae(metrics.clamp(pred), true),
            "rmse_raw": metrics.rmse(pred, true),
            "legacy_loss": metrics.legacy_loss(sse, n)}


def cold_counts(split: Split) -> dict[str, int]:
    """Test ratings whose user, or item, has no training rating."""
    user_has = np.diff(split.train.indptr) > 0
    item_has = np.bincount(split.train.indices, minlength=split.n_items) > 0
    rows = _row_index(split.test)
    return {"n_test": int(split.test.nnz),
            "n_test_cold_user": int((~user_has[rows]).sum()),
            "n_test_cold_item": int((~item_has[split.test.indices]).sum())}


def evaluate_ratings(model, split: Split, device: torch.device, train_too: bool = True) -> dict:
    """The masked-RMSE protocol on test (and train) ratings."""
    out = rating_errors(predict_at(model, split.train, split.test, device), split.test)
    if train_too:
        train = rating_errors(predict_at(model, split.train, split.train, device), split.train)
        out.update({f"train_{k}": v for k, v in train.items()})
    out.update(cold_counts(split))
    return out
