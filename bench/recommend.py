"""Top-k movie recommendations for one user from a trained model, by original MovieLens id.

A model is reused from an earlier run (each run saves its weights, config and split under
`<run folder>/weights/`); the newest matching one under the search roots wins. Its split is
rebuilt from the recorded name and seed and checked against the recorded fingerprint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from aebench.bench.evaluation.evaluate import user_scores
from aebench.datasets import Split

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
    model = models.get(ckpt["model"]).build(n_rows, n_cols, cfg)
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise ValueError(f"{path}: the saved weights do not fit {ckpt['model']} as this "
                         f"version of aebench builds it ({str(exc).splitlines()[-1].strip()})"
                         ) from exc
    model.eval()
    return model, cfg, split, ckpt


def recommend(model, cfg: models.ModelConfig, split: Split, items: pd.DataFrame, user_id: int,
              k: int, device: torch.device | None = None) -> pd.DataFrame:
    """The user's top k unrated movies (neither in train nor in test) with titles, genres.

    The model reads the training ratings, as in evaluation (rows keep their indices, which
    models with per-user parameters need). A rating model ranks by predicted rating, which
    favours rarely rated movies with a few high ratings; see ndcg@k in the results tables
    for how well each variant ranks."""
    device = device or torch.device("cpu")
    u = split.user_index(user_id)
    scores = next(block[u - a] for a, block in user_scores(model, cfg, split.train, device)
                  if a <= u < a + block.shape[0])
    scores = scores.float().cpu().numpy().copy()
    rated = np.concatenate([split.train[u].indices, split.test[u].indices])
    scores[rated] = -np.inf
    order = np.argsort(-scores, kind="stable")[:k]
    order = order[np.isfinite(scores[order])]
    ids = split.item_ids[order]
    meta = items.set_index("item").reindex(ids)
    return pd.DataFrame({"rank": np.arange(1, len(ids) + 1), "movie_id": ids,
                         "title": meta["title"].to_numpy(), "genres": meta["genres"].to_numpy(),
                         "score": scores[order]})
