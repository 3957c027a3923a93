"""What a service serves: the models one run folder trained on one split, checked against
their records before the first request, and the catalogue of films they rank.

A run folder is what `run` writes: `runs.jsonl` (one record per cell) and `weights/`. Every
served model must come from one dataset and one split (one seed of it), so that a known user
means the same ratings to each of them and two models can be compared on one person. A
model whose weights are missing, or whose checkpoint disagrees with its record (another
variant, another split fingerprint) or with the split rebuilt from the data, refuses to start,
naming the file.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from aebench.bench import recommend
from aebench.bench.runs import records
from aebench.bench.runs.records import Record
from aebench.datasets import Dataset, Split


class ServeError(ValueError):
    """A run folder that cannot be served, with the file and the reason."""


@dataclass(frozen=True, eq=False)
class Served:
    """One served variant: the name requests use, the record it came from, its scorer."""

    name: str
    record: Record
    scorer: recommend.Scorer

    @property
    def record_id(self) -> str:
        """The cell's name (its weights file's stem): unique within the run folder."""
        return Path(self.record.weights).stem

    @property
    def folds_in(self) -> bool:
        return self.scorer.cfg.inductive


@dataclass(frozen=True, eq=False)
class Catalogue:
    """The dataset, split and films behind the served models."""

    data: Dataset
    split: Split
    models: dict[str, Served]
    titles: np.ndarray   # per item index
    genres: np.ndarray   # per item index
    external: np.ndarray  # per item index: the id as the ratings file writes it
    search_keys: np.ndarray  # per item index: the title folded for search
    popular: np.ndarray      # item indices, the most rated in training first

    @classmethod
    def of(cls, data: Dataset, split: Split, served: dict[str, Served]) -> Catalogue:
        meta = data.items.set_index("item").reindex(split.item_ids)
        titles = meta["title"].fillna("").astype(str).to_numpy()
        genres = meta["genres"].fillna("").astype(str).to_numpy()
        external = (split.item_ids if data.labels.item is None
                    else data.labels.item[split.item_ids - 1])
        counts = np.diff(split.train.tocsc().indptr)
        return cls(data, split, served, titles, genres, np.asarray(external),
                   np.array([fold(t) for t in titles]),
                   np.argsort(-counts, kind="stable"))

    def item_index(self, item) -> int:
        """The split's index of an item id as the ratings file writes it (KeyError if not)."""
        return self.split.item_index(self.data.labels.code("item", str(item)))

    def user_index(self, user) -> int:
        return self.split.user_index(self.data.labels.code("user", str(user)))

    def item_id(self, i: int):
        value = self.external[i]
        return value.item() if isinstance(value, np.generic) else value

    def describe(self, order: np.ndarray, scores: np.ndarray) -> list[dict]:
        return [{"rank": r + 1, "item": self.item_id(i), "title": self.titles[i],
                 "genres": self.genres[i].split("|") if self.genres[i] else [],
                 "score": float(s)} for r, (i, s) in enumerate(zip(order, scores))]

    def search(self, query: str, limit: int) -> np.ndarray:
        """Item indices whose title holds every word of `query` (case and accents ignored),
        the most rated first."""
        words = fold(query).split()
        hits = np.array([all(w in key for w in words) for key in self.search_keys])
        return self.popular[hits[self.popular]][:limit]


def fold(text: str) -> str:
    """Lower case without accents: what title search compares."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.lower())
                   if not unicodedata.combining(c))


def served_name(record: Record) -> str:
    """The name requests use: the variant, with its recipe label unless `default`."""
    return record.model if record.label == "default" else f"{record.model}:{record.label}"


def load_run(run_dir: Path, cache, dataset: str | None = None,
             names: list[str] | None = None, seed: int | None = None,
             device: torch.device | None = None) -> Catalogue:
    """The catalogue of the models a run folder trained, chosen by dataset, name and seed
    (defaults: the run's only dataset, every trained variant, the lowest seed all of them
    share); `cache` is a `SplitCache` that rebuilds the split."""
    run_dir = Path(run_dir)
    file = run_dir / "runs.jsonl"
    if not file.is_file():
        raise ServeError(f"{file}: not found; `bench serve` reads a folder `bench run` wrote")
    cells = [r for r in records.read(file) if r.ok and r.weights]
    if not cells:
        raise ServeError(f"{file}: no finished cell with saved weights")
    found = sorted({r.dataset for r in cells})
    if dataset is None and len(found) > 1:
        raise ServeError(f"{file}: cells on {', '.join(found)}; choose one with --dataset")
    dataset = dataset or found[0]
    if dataset not in found:
        raise ServeError(f"{file}: no cell on dataset {dataset!r}; it has {', '.join(found)}")
    by_name: dict[str, dict[tuple, Record]] = defaultdict(dict)
    for r in cells:
        if r.dataset == dataset:
            by_name[served_name(r)].setdefault((r.split_name, r.seed), r)
    names = names or sorted(by_name)
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ServeError(f"{file}: no trained {', '.join(map(repr, unknown))} on {dataset}; "
                         f"it has {', '.join(sorted(by_name))}")
    shared = set.intersection(*(set(by_name[n]) for n in names))
    if seed is not None:
        shared = {key for key in shared if key[1] == seed}
    if not shared:
        raise ServeError(f"{file}: {', '.join(names)} share no split and seed"
                         + (f" {seed}" if seed is not None else "")
                         + "; serve them separately, or choose --seed")
    key = min(shared, key=lambda key: (key[1], key[0]))
    chosen = [by_name[name][key] for name in names]
    split = cache.split(dataset, key[0], chosen[0].split.seed or 0)
    served = {name: Served(name, r, _scorer(run_dir, r, split, cache, device))
              for name, r in zip(names, chosen)}
    return Catalogue.of(cache.dataset(dataset), split, served)


def _scorer(run_dir: Path, record: Record, split: Split, cache,
            device: torch.device | None) -> recommend.Scorer:
    path = run_dir / record.weights
    if not path.is_file():
        raise ServeError(f"{path}: missing; {record.model}'s record names it (its weights "
                         "are not in the folder: rerun the cell)")
    try:
        model, cfg, rebuilt, ckpt = recommend.load(
            path, lambda name, seed: cache.split(record.dataset, name, seed))
    except (ValueError, RuntimeError, OSError) as exc:  # a torn or foreign file
        raise ServeError(f"{exc}" if str(path) in str(exc) else f"{path}: {exc}") from exc
    if ckpt.get("model") != record.model:
        raise ServeError(f"{path}: holds {ckpt.get('model')!r}, but its record says "
                         f"{record.model!r}")
    recorded = record.split.fingerprint if record.split else None
    if ckpt["split"]["fingerprint"] != recorded:
        raise ServeError(f"{path}: trained on split fingerprint "
                         f"{ckpt['split']['fingerprint'][:12]}, but its record says "
                         f"{(recorded or 'none')[:12]}: the weights are not the record's")
    if rebuilt.fingerprint != split.fingerprint:
        raise ServeError(f"{path}: trained on split {rebuilt.name} seed {rebuilt.seed}, not "
                         f"the served {split.name} seed {split.seed}")
    scorer = recommend.Scorer(model.to(device or "cpu"), cfg, split, device)
    if not scorer.one_row:  # scores every user now, not in the first request
        scorer.user(0)
    return scorer
