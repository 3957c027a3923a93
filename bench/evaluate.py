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


def per_user_errors(split: Split, test_pred: np.ndarray) -> dict[str, np.ndarray]:
    """Per-user test SSE (clamped predictions) and rating counts, for paired tests;
    `test_pred` is `predict_at(model, split.train, split.test, ...)`."""
    sse, n = metrics.per_user_sse(metrics.clamp(test_pred), split.test.data.astype(np.float64),
                                  _row_index(split.test), split.n_users)
    return {"test_sse": sse, "test_n": n}


def evaluate_ratings(model, split: Split, device: torch.device, train_too: bool = True,
                     test_pred: np.ndarray | None = None) -> dict:
    """The masked-RMSE protocol on test (and train) ratings; `test_pred` reuses test
    predictions already made (`predict_at`) instead of scoring again."""
    if test_pred is None:
        test_pred = predict_at(model, split.train, split.test, device)
    out = rating_errors(test_pred, split.test)
    if train_too:
        train = rating_errors(predict_at(model, split.train, split.train, device), split.train)
        out.update({f"train_{k}": v for k, v in train.items()})
    out.update(cold_counts(split))
    return out


@torch.no_grad()
def ranking_hits(model, split: Split, device: torch.device, k: int, relevance: float = 4.0,
                 batch_users: int = 1024) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full-ranking protocol: per user, every item outside the user's training ratings is a
    candidate (the same set for every variant); relevant = test items rated >= `relevance`.

    Returns (user indices, hits[users, k], n_relevant) for users with at least one relevant
    test item. Ties in score are broken towards the lower item index (a stable sort).
    """
    n_items = split.n_items
    train, test = split.train, split.test
    users_out, hits_out, nrel_out = [], [], []
    for a, scores in score_batches(model, train, device, batch_users):
        b = a + scores.shape[0]
        scores = scores.float()
        tr = train[a:b].tocoo()
        scores[torch.as_tensor(tr.row, device=device),
               torch.as_tensor(tr.col, device=device)] = -torch.inf
        te = test[a:b].tocoo()
        liked = te.data >= relevance
        rel = torch.zeros(b - a, n_items, dtype=torch.bool, device=device)
        rel[torch.as_tensor(te.row[liked], device=device),
            torch.as_tensor(te.col[liked], device=device)] = True
        n_rel = rel.sum(1)
        keep = n_rel > 0
        top = torch.sort(scores[keep], dim=1, descending=True, stable=True).indices[:, :k]
        hits_out.append(rel[keep].gather(1, top).cpu().numpy())
        nrel_out.append(n_rel[keep].cpu().numpy())
        users_out.append(a + np.flatnonzero(keep.cpu().numpy()))
    return np.concatenate(users_out), np.concatenate(hits_out), np.concatenate(nrel_out)


def evaluate_ranking(model, split: Split, device: torch.device, ks: tuple[int, ...] = (5, 10, 20),
                     relevance: float = 4.0) -> tuple[dict, dict[str, np.ndarray]]:
    """Ranking metrics (means over users with a relevant test item) and per-user values."""
    users, hits, n_rel = ranking_hits(model, split, device, max(ks), relevance)
    per_user = metrics.ranking_per_user(hits, n_rel, ks)
    has_test = np.diff(split.test.indptr) > 0
    summary = {name: float(v.mean()) if len(v) else float("nan") for name, v in per_user.items()}
    summary["n_users_ranked"] = int(len(users))
    summary["n_users_no_relevant"] = int(has_test.sum() - len(users))
    per_user["user"] = users
    return summary, per_user


def legacy_topk(model, split: Split, device: torch.device, ks: tuple[int, ...] = (5, 10),
                liked: float = 4.0) -> dict[str, float]:
    """The ML-1M notebook's leaky "top-k accuracy": the model reads each user's *test* row and
    ranks that user's test items (`metrics.legacy_topk_acc` has the notebook's arithmetic).
    Kept to compare with its printed 77.55 (k=5) / 69.87 (k=10); not a valid protocol."""
    scores = predict_at(model, split.test, split.test, device)
    ptr = split.test.indptr
    per_s = [scores[ptr[u]:ptr[u + 1]] for u in range(split.n_users)]
    per_r = [split.test.data[ptr[u]:ptr[u + 1]] for u in range(split.n_users)]
    return {f"legacy_topk_acc@{k}": metrics.legacy_topk_acc(per_s, per_r, k, liked) for k in ks}
