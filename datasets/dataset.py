"""Loading a named dataset into memory: ratings plus item titles and genres."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .fetch import DatasetError, locate
from .parse import read_genre_names, read_items, read_ratings
from .specs import SPECS, DatasetSpec
from .synthetic import ML1M_SHAPE, ml1m_shaped_ratings, parse_name, synthetic_ratings


@dataclass(frozen=True)
class Dataset:
    """All ratings of one dataset (original ids) and its item metadata."""

    name: str
    ratings: pd.DataFrame
    items: pd.DataFrame
    spec: DatasetSpec | None = None
    folder: Path | None = None

    @property
    def n_ratings(self) -> int:
        return len(self.ratings)


def names() -> list[str]:
    return [*SPECS, "synthetic", "synthetic-ml1m"]


def check_name(name: str) -> None:
    """Raise DatasetError unless `name` is a dataset aebench can load (before loading it)."""
    if name not in names() and parse_name(name) is None:
        raise DatasetError(f"unknown dataset {name!r}; choose from {', '.join(names())} or "
                           "synthetic-<users>x<items>")


def _synthetic(name: str, ratings: pd.DataFrame, n_items: int) -> Dataset:
    items = pd.DataFrame({"item": range(1, n_items + 1)})
    items["title"] = [f"Synthetic item {i}" for i in items["item"]]
    items["genres"] = ""
    return Dataset(name, ratings, items)


def load(name: str, data_dir: str | os.PathLike | None = None, download: bool = True) -> Dataset:
    """Load `ml-100k`, `ml-1m`, `synthetic`, `synthetic-<users>x<items>` or `synthetic-ml1m`
    (ML-1M's shape and density, for timing)."""
    if name == "synthetic-ml1m":
        return _synthetic(name, ml1m_shaped_ratings(), ML1M_SHAPE[1])
    shape = parse_name(name)
    if shape is not None:
        return _synthetic(name, synthetic_ratings(*shape), shape[1])
    check_name(name)
    spec = SPECS[name]
    folder = locate(spec, data_dir, download=download)
    ratings = read_ratings(folder / spec.ratings_file, spec.ratings_sep)
    genre_file = folder / "u.genre"
    genres = read_genre_names(genre_file) if spec.items_sep == "|" else None
    items = read_items(folder / spec.items_file, spec.items_sep, genres)
    return Dataset(name, ratings, items, spec, folder)
