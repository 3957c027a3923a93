"""Evaluation protocols, over the model contract only (`Recommender.score`).

The rule, the same for every variant: a model reads what it knows of each user, the rows of
the input matrix it is given (the training ratings at test time, the validation carving's
fitting ratings during model selection), and is scored on held-out ratings it never read.
- Masked rating error (models that predict ratings): its outputs at the held-out (user,
  item) pairs against the ratings.
- Full ranking (every model): per user, every item outside the user's input ratings is a
  candidate (at test time, outside a protocol's validation part too, as RecBole masks
  it); relevant = held-out items rated at least `relevance` (every one, where the protocol
  says so). Under a protocol that holds out whole items (`cold-items`), the candidates are
  the held-out items no input rating has: a cold film is ranked among the cold films.

`evaluate` is the one entry the runner calls: every metric and the per-user values at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import torch
from aebench.bench.evaluation import metrics
from aebench.datasets import Split
from aebench.models.base import Batch, ModelConfig, Recommender, check_scores
from aebench.models.sparse_ops import CSRBatch

BATCH_ROWS = 1024
ITEM_ROWS_BYTES = 1 << 30  # an item-based model's items x users scores held at once


def rows_per_batch(model: Recommender, shape: tuple[int, int], batch_rows: int = BATCH_ROWS
                   ) -> int:
    """Rows `score_rows` scores at once of a (rows, columns) matrix: every row for a family
    that reads them all at once, as many as `score_batch_bytes` allows where the family
    declares it, else `batch_rows`."""
    rows, cols = shape
    if model.whole_matrix:
        return max(1, rows)
    if model.score_batch_bytes:
        return max(batch_rows, model.score_batch_bytes // (4 * max(1, cols)))
    return batch_rows


@torch.no_grad()
def score_rows(model: Recommender, x: sp.csr_matrix, device: torch.device,
               batch_rows: int = BATCH_ROWS, rows: np.ndarray | None = None
               ) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield (first_row, scores) with the model's full-width outputs for the rows of `x`,
    a matrix in the model's own view, in batches; with `rows`, for those rows only, each
    batch's first position in `rows` yielded (the batch still names its rows by their index
    in `x`, which a model with per-row state reads)."""
    model.eval()
    ids = None
    if rows is not None:
        x, ids = x[rows], torch.as_tensor(np.asarray(rows, np.int64), device=device)
    batch_rows = rows_per_batch(model, x.shape, batch_rows)
    indptr = x.indptr.astype(np.int64)
    cols = torch.as_tensor(x.indices.astype(np.int64), device=device)
    values = torch.as_tensor(x.data, dtype=torch.float32, device=device)
    n = x.shape[0]
    for a in range(0, n, batch_rows):
        b = min(a + batch_rows, n)
        lo, hi = int(indptr[a]), int(indptr[b])
        crow = torch.as_tensor(indptr[a:b + 1] - lo, device=device)
        batch = Batch(torch.arange(a, b, device=device) if ids is None else ids[a:b],
                      CSRBatch(crow, cols[lo:hi], x.shape[1]), values[lo:hi])
        # float32 for the metric arithmetic, whatever precision the model scored in
        yield a, check_scores(model, model.score(batch), b - a, x.shape[1]).float()


def writable(model: Recommender, scores: torch.Tensor) -> torch.Tensor:
    """`scores` where they are a tensor of their own, else a copy: a model may return a view
    of its state (popularity's one row, expanded) or a parameter itself, which masking must
    not overwrite; a fresh output is masked in place, without a batch-sized copy."""
    if scores._base is None:
        ptr = scores.untyped_storage().data_ptr()
        if all(t.untyped_storage().data_ptr() != ptr
               for t in (*model.parameters(), *model.buffers())):
            return scores
    return scores.clone()


def user_scores(model: Recommender, cfg: ModelConfig, inputs: sp.csr_matrix,
                device: torch.device, batch_users: int = BATCH_ROWS,
                users: np.ndarray | None = None) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield (first_user, scores[users, items]): the model's full-width scores of each user,
    reading `inputs` (users x items ratings) in its own view; with `users` (sorted), of those
    users only, each batch's first position in `users` yielded. A user-row model scores only
    them; one that reads every row at once (`whole_matrix`), or an item-based one, scores all
    and the rows are selected. The one place that knows about item-based models: their
    scores are the reconstructed items x users matrix, transposed. That matrix is held a span
    of users at a time, at most `ITEM_ROWS_BYTES` of float32: a larger one is scored again for
    each span and sliced, trading passes for memory (a family whose `score` needs every row
    at once holds it whole)."""
    x = cfg.view(inputs)
    if cfg.rows == "user" and (users is None or not model.whole_matrix):
        yield from score_rows(model, x, device, batch_users, users)
        return
    every = (score_rows(model, x, device, batch_users) if cfg.rows == "user"
             else _item_based_scores(model, x, device, batch_users))
    if users is None:
        yield from every
        return
    for a, scores in every:
        lo, hi = np.searchsorted(users, (a, a + scores.shape[0]))
        if hi > lo:
            yield int(lo), scores[torch.as_tensor(users[lo:hi] - a, device=device)]


def _item_based_scores(model: Recommender, x: sp.csr_matrix, device: torch.device,
                       batch_users: int) -> Iterator[tuple[int, torch.Tensor]]:
    """An item-based model's scores of every user (`user_scores`), `x` its items x users
    view."""
    n_items, n_users = x.shape
    span = n_users if model.whole_matrix else max(
        batch_users, ITEM_ROWS_BYTES // (4 * max(1, n_items)))
    for lo in range(0, n_users, span):
        hi = min(lo + span, n_users)
        part = torch.empty(n_items, hi - lo, device=device)
        for a, block in score_rows(model, x, device, batch_users):
            part[a:a + block.shape[0]] = block[:, lo:hi]
        part = part.t()
        for a in range(0, hi - lo, batch_users):
            yield lo + a, part[a:a + batch_users].contiguous()


def predict_at(model: Recommender, cfg: ModelConfig, inputs: sp.csr_matrix,
               targets: sp.csr_matrix, device: torch.device) -> np.ndarray:
    """Model outputs at the nonzero entries of `targets` (users x items, CSR data order)."""
    out = np.empty(targets.nnz, dtype=np.float32)
    tptr = targets.indptr
    cols = torch.as_tensor(targets.indices.astype(np.int64), device=device)
    for a, scores in user_scores(model, cfg, inputs, device):
        b = a + scores.shape[0]
        lo, hi = int(tptr[a]), int(tptr[b])
        rows = torch.as_tensor(np.repeat(np.arange(b - a), np.diff(tptr[a:b + 1])),
                               device=device)
        out[lo:hi] = scores[rows, cols[lo:hi]].float().cpu().numpy()
    return out


def _row_index(m: sp.csr_matrix) -> np.ndarray:
    return np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))


def rating_errors(pred: np.ndarray, target: sp.csr_matrix,
                  scale: tuple[float, float] = (1.0, 5.0)) -> dict[str, float]:
    """Headline metrics on predictions clamped to the rating scale, plus unclamped RMSE and
    the legacy figure."""
    true = target.data.astype(np.float64)
    sse, n = metrics.per_user_sse(pred, true, _row_index(target), target.shape[0])
    return {"rmse": metrics.rmse(metrics.clamp(pred, *scale), true),
            "mae": metrics.mae(metrics.clamp(pred, *scale), true),
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
    `test_pred` is `predict_at(model, cfg, split.train, split.test, ...)`."""
    sse, n = metrics.per_user_sse(metrics.clamp(test_pred, *split.scale),
                                  split.test.data.astype(np.float64),
                                  _row_index(split.test), split.n_users)
    return {"test_sse": sse, "test_n": n}


def top_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Column indices of each row's k highest scores, highest first, equal scores in column
    order: exactly the first k of a stable descending sort, without sorting whole rows.

    One `topk` of k + 1 decides most rows: where the (k+1)-th value is below the k-th, the k
    columns are the only ones at or above it, and sorting them by column and then stably by
    value orders their ties. A row whose k-th value recurs beyond them (ties across the cut,
    a row with fewer than k finite scores) takes the exact path: the k-th value is a
    threshold, everything above it is taken, and of the entries equal to it the
    lowest-indexed fill the rest."""
    n = scores.shape[1]
    k = min(k, n)
    if k == 0:
        return torch.zeros(scores.shape[0], 0, dtype=torch.long, device=scores.device)
    vals, cols = torch.topk(scores, min(k + 1, n), dim=1, sorted=True)
    cut = vals[:, k] == vals[:, k - 1] if k < n else torch.zeros_like(vals[:, 0], dtype=bool)
    cols = cols[:, :k].sort(dim=1).values
    if cut.any():
        cols[cut] = _tied_top_k(scores[cut], vals[cut, k - 1:k], k)
    order = torch.sort(scores.gather(1, cols), dim=1, descending=True, stable=True).indices
    return cols.gather(1, order)


def _tied_top_k(scores: torch.Tensor, kth: torch.Tensor, k: int) -> torch.Tensor:
    """The k columns of each row that a stable descending sort puts first, in column order,
    given each row's k-th value `kth` (rows x 1)."""
    above = scores > kth
    equal = scores == kth
    room = k - above.sum(1, keepdim=True)
    take = above | (equal & (equal.cumsum(1) <= room))
    return take.nonzero()[:, 1].view(scores.shape[0], k)  # row-major: columns ascending


@torch.no_grad()
def ranking_hits(model: Recommender, cfg: ModelConfig, inputs: sp.csr_matrix,
                 heldout: sp.csr_matrix, device: torch.device, k: int,
                 relevance: float = 4.0, batch_users: int = BATCH_ROWS,
                 exclude: sp.csr_matrix | None = None, candidates: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full-ranking protocol: per user, every item outside the user's `inputs` ratings (and
    `exclude`'s: a protocol's validation part, at test time) is a candidate (the same set
    for every variant); relevant = `heldout` items rated >= `relevance`. Returns (user
    indices, hits[users, k], n_relevant) for users with at least one relevant held-out
    item. Ties in score go to the lower item index. `candidates` (a bool per item), where
    given, are the only items ranked."""
    n_items = inputs.shape[1]
    shut = None if candidates is None else torch.as_tensor(~candidates, device=device)
    liked = heldout.data >= relevance
    n_rel = np.bincount(_row_index(heldout)[liked], minlength=heldout.shape[0])
    ranked = np.flatnonzero(n_rel)
    # where few users hold out a relevant item (strong generalisation's test users), only they
    # are scored; elsewhere every user is, in the same batches whoever holds out what
    whole = 2 * len(ranked) > heldout.shape[0]
    ranked = np.arange(heldout.shape[0]) if whole else ranked
    users_out, hits_out = [], []
    for a, scores in user_scores(model, cfg, inputs, device, batch_users,
                                 None if whole else ranked):
        ids = ranked[a:a + scores.shape[0]]
        seen = (inputs[ids] if exclude is None else inputs[ids] + exclude[ids]).tocoo()
        scores = writable(model, scores).index_put_(
            (torch.as_tensor(seen.row, device=device), torch.as_tensor(seen.col, device=device)),
            torch.tensor(-torch.inf, device=device))
        if shut is not None:
            scores[:, shut] = -torch.inf
        keep = np.flatnonzero(n_rel[ids])
        if not len(keep):
            continue
        top = top_k(scores, k)[torch.as_tensor(keep, device=device)].cpu().numpy()
        ids = ids[keep]
        held = heldout[ids].tocoo()
        good = held.data >= relevance
        # a hit: (user, item) among the user's relevant pairs, looked up as sorted keys
        # (row * items + item), so no dense users x items relevance matrix is made
        wanted = np.sort(held.row[good].astype(np.int64) * n_items + held.col[good])
        keys = np.arange(len(ids))[:, None] * n_items + top
        found = np.minimum(np.searchsorted(wanted, keys), len(wanted) - 1)
        hits_out.append(wanted[found] == keys)
        users_out.append(ids)
    if not users_out:
        return np.zeros(0, np.int64), np.zeros((0, k), bool), np.zeros(0, np.int64)
    users = np.concatenate(users_out)
    return users, np.concatenate(hits_out), n_rel[users]


def cold_candidates(split: Split, inputs: sp.csr_matrix,
                    heldout: sp.csr_matrix) -> np.ndarray | None:
    """Under a protocol that holds out whole items (`Split.cold_items`), the items ranked:
    those `heldout` rates and no rating of `inputs` has; None (every item) elsewhere."""
    if not split.cold_items:
        return None
    n = inputs.shape[1]
    return ((np.bincount(heldout.indices, minlength=n) > 0)
            & (np.bincount(inputs.indices, minlength=n) == 0))


def test_inputs(split: Split) -> tuple[sp.csr_matrix, sp.csr_matrix | None]:
    """What a model reads of each user at test time, and what else is no candidate: the
    training ratings with a protocol's validation part masked (RecBole's rule), or, where
    the protocol says so, both read as input (the infinite-width autoencoder's rule)."""
    if split.valid is not None and split.valid_in_context:
        inputs = (split.train + split.valid).tocsr()
        inputs.sort_indices()
        return inputs, None
    return split.train, split.valid


def evaluate_ranking(model: Recommender, cfg: ModelConfig, split: Split, device: torch.device,
                     ks: tuple[int, ...] = (5, 10, 20), relevance: float = 4.0
                     ) -> tuple[dict, dict[str, np.ndarray]]:
    """Ranking metrics (means over users with a relevant test item) and per-user values."""
    inputs, exclude = test_inputs(split)
    candidates = cold_candidates(split, inputs, split.test)
    users, hits, n_rel = ranking_hits(model, cfg, inputs, split.test, device, max(ks),
                                      relevance, exclude=exclude, candidates=candidates)
    per_user = metrics.ranking_per_user(hits, n_rel, ks)
    has_test = np.diff(split.test.indptr) > 0
    summary = {name: float(v.mean()) if len(v) else float("nan") for name, v in per_user.items()}
    summary["n_users_ranked"] = int(len(users))
    summary["n_users_no_relevant"] = int(has_test.sum() - len(users))
    if candidates is not None:
        summary["n_candidates"] = int(candidates.sum())
    per_user["user"] = users
    return summary, per_user


def legacy_topk(model: Recommender, cfg: ModelConfig, split: Split, device: torch.device,
                ks: tuple[int, ...] = (5, 10), liked: float = 4.0) -> dict[str, float]:
    """The ML-1M notebook's leaky "top-k accuracy": the model reads each user's *test* row and
    ranks that user's test items (`metrics.legacy_topk_acc` has the notebook's arithmetic).
    Kept to compare with its printed 77.55 (k=5) / 69.87 (k=10); not a valid protocol."""
    scores = predict_at(model, cfg, split.test, split.test, device)
    ptr = split.test.indptr
    per_s = [scores[ptr[u]:ptr[u + 1]] for u in range(split.n_users)]
    per_r = [split.test.data[ptr[u]:ptr[u + 1]] for u in range(split.n_users)]
    return {f"legacy_topk_acc@{k}": metrics.legacy_topk_acc(per_s, per_r, k, liked) for k in ks}


def evaluate(model: Recommender, cfg: ModelConfig, split: Split, device: torch.device,
             ks: tuple[int, ...] = (5, 10, 20), relevance: float = 4.0
             ) -> tuple[dict, dict[str, np.ndarray]]:
    """Every protocol that means something for the variant, on `split`'s test ratings with
    its training ratings as input: (metrics, per-user values). Rating errors, the training
    error and the leaky legacy figure only for models that predict ratings."""
    out: dict = {}
    per_user: dict[str, np.ndarray] = {}
    if cfg.rates:
        test_pred = predict_at(model, cfg, split.train, split.test, device)
        out.update(rating_errors(test_pred, split.test, split.scale))
        train = rating_errors(predict_at(model, cfg, split.train, split.train, device),
                              split.train, split.scale)
        out.update({f"train_{k}": v for k, v in train.items()})
        per_user.update(per_user_errors(split, test_pred))
    out.update(cold_counts(split))
    ranking, ranked = evaluate_ranking(model, cfg, split, device, ks,
                                       relevant_from(split, relevance))
    out.update(ranking)
    per_user.update(ranked)
    if cfg.rates:
        out.update(legacy_topk(model, cfg, split, device))
    return out, per_user


def relevant_from(split: Split, relevance: float) -> float:
    """The relevance threshold on `split`: `relevance` on a rated dataset; every held-out
    interaction on an implicit one (all its values are 1)."""
    return relevance if split.scale is not None and not split.all_relevant else -math.inf


VALIDATION_METRIC = {True: ("rmse", False), False: ("ndcg@10", True)}  # by cfg.rates


def validation_metric(cfg: ModelConfig) -> tuple[str, bool]:
    """The figure early stopping and tuning read: (name, higher is better)."""
    return VALIDATION_METRIC[cfg.rates]


def validate(model: Recommender, cfg: ModelConfig, view: Split, device: torch.device,
             relevance: float = 4.0) -> float:
    """The validation figure on a fitting view (`datasets.carve_validation`): RMSE of a
    rating model on the validation ratings, NDCG@10 of a ranking-only model."""
    if cfg.rates:
        pred = predict_at(model, cfg, view.train, view.test, device)
        return metrics.rmse(metrics.clamp(pred, *view.scale), view.test.data.astype(np.float64))
    _, hits, n_rel = ranking_hits(model, cfg, view.train, view.test, device, 10,
                                  relevant_from(view, relevance),
                                  candidates=cold_candidates(view, view.train, view.test))
    return float(metrics.ndcg_at_k(hits, n_rel, 10).mean()) if len(hits) else float("nan")
