"""The runner: one linear function per run (load, split, build, fit, evaluate, record) and a
grid over models x datasets x devices that records every cell, failed ones included."""

from __future__ import annotations

import dataclasses
import itertools
import resource
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import datasets
import models

from . import records
from .evaluate import evaluate_ranking, evaluate_ratings, legacy_topk, per_user_errors, predict_at
from .train import fit, recipe_for

DEFAULT_SPLIT = {"ml-100k": "u1", "ml-1m": "random-90-10"}
FALLBACK_SPLIT = "random-90-10"


@dataclass(frozen=True)
class RunConfig:
    """One cell of the grid. `None` fields keep the variant's defaults for the mode."""

    model: str
    dataset: str
    split: str | None = None        # default: u1 for ml-100k, random-90-10 otherwise
    mode: str = "batched"           # per-user | batched
    device: str = "cpu"
    seed: int = 0
    epochs: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    batch_size: int | None = None
    eval_every: int | None = None   # test RMSE every N epochs (default: 10 points per run)
    ks: tuple[int, ...] = (5, 10, 20)  # cut-offs of the ranking metrics
    relevance: float = 4.0          # test ratings >= this are relevant for ranking
    data_dir: str | None = None

    @property
    def split_name(self) -> str:
        return self.split or DEFAULT_SPLIT.get(self.dataset, FALLBACK_SPLIT)


def available_devices() -> list[str]:
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


class SplitCache:
    """Loads each dataset and split once per grid."""

    def __init__(self, data_dir: str | None = None):
        self.data_dir = data_dir
        self._data: dict[str, datasets.Dataset] = {}
        self._splits: dict[tuple[str, str, int], datasets.Split] = {}

    def dataset(self, name: str) -> datasets.Dataset:
        if name not in self._data:
            self._data[name] = datasets.load(name, self.data_dir)
        return self._data[name]

    def split(self, name: str, split: str, seed: int) -> datasets.Split:
        key = (name, split, seed)
        if key not in self._splits:
            self._splits[key] = datasets.make_split(self.dataset(name), split, seed)
        return self._splits[key]


def model_config(cfg: RunConfig):
    section = "per_user" if cfg.mode == "per-user" else "batched"
    return models.config(cfg.model, **{f"{section}.{k}": getattr(cfg, k)
                                       for k in ("epochs", "lr", "weight_decay", "batch_size")})


def run_one(cfg: RunConfig, cache: SplitCache, out_dir: Path | None = None,
            on_epoch=None) -> dict:
    """Train and evaluate one cell; never raises for a failed run, records it instead."""
    record: dict = {"model": cfg.model, "dataset": cfg.dataset, "mode": cfg.mode,
                    "device": cfg.device, "seed": cfg.seed, "run_config": dataclasses.asdict(cfg),
                    "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    device = torch.device(cfg.device)
    try:
        record["env"] = records.environment(device)
        split = cache.split(cfg.dataset, cfg.split_name, cfg.seed)
        record["split"] = split.describe()
        mcfg = model_config(cfg)
        recipe = recipe_for(mcfg, cfg.mode)
        record["config"] = dataclasses.asdict(mcfg)
        record["epochs"] = recipe.epochs
        torch.manual_seed(cfg.seed)
        model = models.get(cfg.model).build(split.n_items, mcfg)
        model.to(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)

        def test_rmse() -> float:
            return evaluate_ratings(model, split, device, train_too=False)["rmse"]

        eval_every = cfg.eval_every or max(1, recipe.epochs // 10)
        result = fit(model, split, mcfg, cfg.mode, device, cfg.seed, recipe.epochs,
                     test_rmse, eval_every, on_epoch)
        record["history"] = result.history
        t0 = time.perf_counter()
        test_pred = predict_at(model, split.train, split.test, device)
        record["metrics"] = evaluate_ratings(model, split, device, test_pred=test_pred)
        ranking, per_user = evaluate_ranking(model, split, device, cfg.ks, cfg.relevance)
        record["metrics"].update(ranking)
        record["metrics"].update(legacy_topk(model, split, device))
        eval_s = time.perf_counter() - t0
        epoch_s = sorted(h["epoch_s"] for h in result.history)
        record["timings"] = {
            "epoch_s_median": epoch_s[len(epoch_s) // 2],
            "fit_s": result.fit_s, "eval_s": eval_s,
            "ratings_per_s": split.train.nnz * len(epoch_s) / result.fit_s,
            "peak_mem_mb": (torch.cuda.max_memory_allocated(device) / 2**20
                            if device.type == "cuda" else None),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
        if out_dir is not None:
            record["weights"] = save_weights(model, record, out_dir)
            record["per_user"] = save_per_user(split, per_user,
                                               per_user_errors(split, test_pred),
                                               record, out_dir)
        record["status"] = "ok"
    except (Exception, torch.OutOfMemoryError) as exc:  # a failed cell must not stop the grid
        record["status"] = "failed"
        record["error"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc(limit=5)
    return record


def cell_name(record: dict) -> str:
    return (f"{record['model']}__{record['dataset']}__{record['split']['name']}__"
            f"{record['mode']}__{record['device']}__s{record['seed']}")


def save_per_user(split, ranking: dict, errors: dict, record: dict, out_dir: Path) -> str:
    """Per-user values (original user ids) for paired comparisons between variants."""
    path = out_dir / "per_user" / f"{cell_name(record)}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    ranking = dict(ranking)
    ranked_users = split.user_ids[ranking.pop("user")]
    np.savez_compressed(path, user_id=split.user_ids, **errors, ranked_user_id=ranked_users,
                        **{k.replace("@", "_at_"): v for k, v in ranking.items()})
    return str(path.relative_to(out_dir))


def save_weights(model, record: dict, out_dir: Path) -> str:
    path = out_dir / "weights" / f"{cell_name(record)}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
                "config": record["config"], "split": record["split"], "model": record["model"]},
               path)
    return str(path.relative_to(out_dir))


def grid(model_patterns, dataset_names, devices, **common) -> list[RunConfig]:
    names = models.list(model_patterns)
    if not names:
        raise KeyError(f"no registered model matches {model_patterns}; "
                       f"registered: {', '.join(models.list())}")
    return [RunConfig(model=m, dataset=d, device=dev, **common)
            for d, m, dev in itertools.product(dataset_names, names, devices)]
