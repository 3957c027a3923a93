"""Top-k movie recommendations for one person from a trained model, by original MovieLens id:
the scoring and unseen-item masking that `recommend` and the service share.

A model is reused from an earlier run (each run saves its weights, config and split under
`<run folder>/weights/`); the newest matching one under the search roots wins. Its split is
rebuilt from the recorded name and seed and checked against the recorded fingerprint.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from aebench.bench.evaluation.evaluate import user_scores
from aebench.datasets import Split
from aebench.models.base import Batch, check_scores
from aebench.models.sparse_ops import CSRBatch

from aebench import models

SEARCH_ROOTS = (Path("results/runs"), Path("results/published"))


def find_weights(model: str, dataset: str, roots=SEARCH_ROOTS) -> Path | None:
    found = [p for root in roots if root.is_dir()
             for p in root.glob(f"**/weights/{model}__{dataset}__*.pt")]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def load(path: Path, split_for) -> tuple[torch.nn.Module, models.ModelConfig, Split, dict]:
    """Rebuild the model of a checkpoint; `split_for(name, seed)` supplies its split."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    if ckpt.get("model") not in models.list():
        raise ValueError(f"{path}: model {ckpt.get('model')!r} is not registered")
    cfg = models.config_from_dict(ckpt["model"], ckpt["config"])
    split = split_for(ckpt["split"]["name"], ckpt["split"]["seed"] or 0)
    if split.fingerprint != ckpt["split"]["fingerprint"]:
        raise ValueError(f"{path}: trained on split {ckpt['split']['name']} with fingerprint "
                         f"{ckpt['split']['fingerprint'][:12]}, but that split now has "
                         f"{split.fingerprint[:12]}: the data changed")
    n_rows, n_cols = cfg.view(split.train).shape
    model = models.get(ckpt["model"]).make(n_rows, n_cols, cfg,
                                            cfg.side(split.user_side, split.item_side))
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise ValueError(f"{path}: the saved weights do not fit {ckpt['model']} as this "
                         f"version of aebench builds it ({str(exc).splitlines()[-1].strip()})"
                         ) from exc
    model.eval()
    return model, cfg, split, ckpt


class Scorer:
    """Full-width scores of one person from a trained model: the one scoring path of
    `recommend` and the service (`bench/service/`).

    A known user is scored from their training row, as evaluation scores them (rows keep
    their indices, which models with per-user parameters read). A model that cannot score
    one row alone (item-based rows, or one that reads the whole matrix at once) is scored over
    every user once and the matrix kept. A new user (`fold_in`) is scored from their ratings
    alone, which only an inductive variant can do."""

    def __init__(self, model: models.Recommender, cfg: models.ModelConfig, split: Split,
                 device: torch.device | None = None):
        self.model, self.cfg, self.split = model, cfg, split
        self.device = device or torch.device("cpu")
        self._view = cfg.view(split.train)
        parts = [m for m in (split.train, split.test, split.valid) if m is not None]
        seen = sum(sp.csr_matrix((np.ones_like(m.data), m.indices, m.indptr), shape=m.shape)
                   for m in parts).tocsr()
        seen.sort_indices()
        self._seen = seen  # the items each user rated in any part: never recommended
        self._full: torch.Tensor | None = None
        self._lock = threading.Lock()

    @property
    def one_row(self) -> bool:
        """Whether a user's scores come from their row alone (else from the whole matrix)."""
        return self.cfg.rows == "user" and not self.model.whole_matrix

    def _row(self, cols: np.ndarray, values: np.ndarray, index: int,
             side: np.ndarray | None = None) -> np.ndarray:
        """The model's scores of one row (in its view) that has row index `index` (and, where
        given, its own features `side`, 1 x width)."""
        def put(a, dtype):
            return torch.as_tensor(np.asarray(a), dtype=dtype).to(self.device)

        n = self.split.n_items
        batch = Batch(put([index], torch.int64),
                      CSRBatch(put([0, len(cols)], torch.int64), put(cols, torch.int64), n),
                      put(values, torch.float32),
                      side=None if side is None else put(side, torch.float32))
        with torch.no_grad():
            out = check_scores(self.model, self.model.score(batch), 1, n)
        return out[0].float().cpu().numpy()

    def user(self, u: int) -> np.ndarray:
        """Scores of the user at index `u` of the split, reading their training row."""
        if self.one_row:  # the row's slices, not scipy's row indexing (a hot path)
            x = self._view
            lo, hi = x.indptr[u], x.indptr[u + 1]
            return self._row(x.indices[lo:hi], x.data[lo:hi], u).copy()
        with self._lock:  # scored once, by whichever request comes first
            if self._full is None:
                full = torch.empty(self.split.n_users, self.split.n_items)
                for a, block in user_scores(self.model, self.cfg, self.split.train,
                                            self.device):
                    full[a:a + block.shape[0]] = block.cpu()
                self._full = full
        return self._full[u].numpy().copy()

    @property
    def reads_profile(self) -> bool:
        """Whether the model reads a new user's demographics (`fold_in`'s `profile`)."""
        return "user" in self.cfg.features and self.cfg.rows == "user"

    def fold_in(self, cols: np.ndarray, values: np.ndarray,
                profile: np.ndarray | None = None) -> np.ndarray:
        """Scores of a user the model never saw, from their ratings of item indices `cols`
        (an implicit variant reads every rating as 1, as in training) and, for a variant that
        reads user features, their encoded demographics `profile` (1 x width,
        `FeatureTable.encode_values`; none: nothing known of them, zeros)."""
        if not self.cfg.inductive:
            raise ValueError(fold_in_refusal(self.cfg))
        order = np.argsort(cols, kind="stable")
        values = np.asarray(values, dtype=np.float32)[order]
        if self.cfg.feedback == "implicit":  # as `ModelConfig.view` reads a training row
            values = np.ones_like(values)
        # the row index of a user no one trained: past the end, never a training row's
        side = profile if profile is not None and self.reads_profile else None
        return self._row(np.asarray(cols, dtype=np.int64)[order], values, self.split.n_users,
                         side).copy()

    def rated(self, u: int) -> np.ndarray:
        """Item indices the user at index `u` rated anywhere in the split (never recommended)."""
        return self._seen.indices[self._seen.indptr[u]:self._seen.indptr[u + 1]]


def fold_in_refusal(cfg: models.ModelConfig) -> str:
    """Why a variant that is not inductive cannot fold a new user in (after its name)."""
    why = ("it reads items as rows: every training user is one of its input dimensions"
           if cfg.rows == "item" else
           "it keeps parameters for each training user (a user embedding or bias)")
    return f"cannot score a user it never saw: {why}"


def top_k(scores: np.ndarray, exclude: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The `k` best item indices (and their scores) outside `exclude`, best first; ties keep
    the lower index; items the model cannot score (non-finite) are never returned."""
    scores = scores.copy()
    scores[np.asarray(exclude, dtype=np.int64)] = -np.inf
    k = min(k, len(scores))
    part = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    order = part[np.lexsort((part, -scores[part]))]
    order = order[np.isfinite(scores[order])]
    return order, scores[order]


def recommend(model, cfg: models.ModelConfig, split: Split, items: pd.DataFrame, user_id: int,
              k: int, device: torch.device | None = None) -> pd.DataFrame:
    """The user's top k unrated movies (neither in train nor in test) with titles, genres.

    The model reads the training ratings, as in evaluation (rows keep their indices, which
    models with per-user parameters need). A rating model ranks by predicted rating, which
    favours rarely rated movies with a few high ratings; see ndcg@k in the results tables
    for how well each variant ranks."""
    scorer = Scorer(model, cfg, split, device)
    u = split.user_index(user_id)
    order, scores = top_k(scorer.user(u), scorer.rated(u), k)
    ids = split.item_ids[order]
    meta = items.set_index("item").reindex(ids)
    return pd.DataFrame({"rank": np.arange(1, len(ids) + 1), "movie_id": ids,
                         "title": meta["title"].to_numpy(), "genres": meta["genres"].to_numpy(),
                         "score": scores})
