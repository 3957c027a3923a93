"""Loading a named dataset into memory: ratings plus item titles and genres."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .features import FeatureTable, item_table, read_users
from .fetch import DatasetError, locate
from .parse import read_genre_names, read_items, read_items_csv, read_ratings
from .specs import SPECS, DatasetSpec
from .synthetic import NAMED, parse_name, synthetic_ratings
from .user import FileSpec, Labels, read_features, read_file

FILES: dict[str, FileSpec] = {}  # users' own datasets, by name (`register_file`)
FILE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": ","}


@dataclass(frozen=True)
class Dataset:
    """All ratings of one dataset (original ids) and its item metadata."""

    name: str
    ratings: pd.DataFrame
    items: pd.DataFrame
    spec: DatasetSpec | None = None
    folder: Path | None = None
    scale: tuple[float, float] | None = (1.0, 5.0)  # the rating scale; None: implicit
    labels: Labels = Labels()  # the original ids of a user's file whose ids are strings
    item_features: FeatureTable | None = None  # genres and year (`features.item_table`)
    user_features: FeatureTable | None = None  # demographics, where the release has them

    @property
    def implicit(self) -> bool:
        return self.scale is None

    @property
    def n_ratings(self) -> int:
        return len(self.ratings)


def names() -> list[str]:
    return [*SPECS, "synthetic", *NAMED, *FILES]


def register_file(spec: FileSpec) -> FileSpec:
    """Make a user's file loadable by `spec.name` (the experiment file's datasets)."""
    if spec.name in SPECS or spec.name.startswith("synthetic"):
        raise DatasetError(f"dataset name {spec.name!r} is taken by a built-in dataset")
    spec.check()
    FILES[spec.name] = spec
    return spec


def registered(name: str) -> FileSpec | None:
    """The user's dataset registered as `name`, if any."""
    return FILES.get(name)


def file_spec(name: str) -> FileSpec | None:
    """The `FileSpec` behind `name`: a registered one, or `-d PATH` with a .csv / .tsv / .txt
    suffix (header user,item,rating[,timestamp], scale 1-5)."""
    if name in FILES:
        return FILES[name]
    sep = FILE_SUFFIXES.get(Path(name).suffix.lower())
    if sep is not None:
        return FileSpec(name=name, path=name, delimiter=sep)
    return None


def check_name(name: str) -> None:
    """Raise DatasetError unless `name` is a dataset aebench can load (before loading it)."""
    if name in names() or parse_name(name) is not None:
        return
    spec = file_spec(name)
    if spec is not None:
        if not Path(spec.path).expanduser().is_file():
            raise DatasetError(f"dataset file {name}: file not found")
        return
    raise DatasetError(f"unknown dataset {name!r}; choose from {', '.join(names())}, "
                       "synthetic-<users>x<items>, or a ratings file PATH.csv / PATH.tsv")


def available_memory() -> int:
    """Bytes of memory this machine can still give (MemAvailable; total physical memory
    where /proc/meminfo is missing)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


SYNTHETIC_BYTES_PER_RATING = 120  # the frame, the split's frames and CSR matrices, a carving
FILE_BYTES_PER_BYTE = 16          # a text line read into fields, then into the frame


def estimated_bytes(name: str, spec: FileSpec | None = None) -> int | None:
    """Memory that loading and splitting `name` takes, from its shape (synthetic) or its
    file's size (a user's file); None for the MovieLens releases, whose sizes are known."""
    if name in NAMED:
        return int(NAMED[name].ratings * SYNTHETIC_BYTES_PER_RATING
                   + (NAMED[name].users + NAMED[name].items) * 80)
    shape = parse_name(name)
    if shape is not None:
        users, items = shape
        per_user = max(2.0, items * 0.05)
        return int(users * per_user * SYNTHETIC_BYTES_PER_RATING + (users + items) * 80)
    if spec is not None and Path(spec.path).expanduser().is_file():
        return Path(spec.path).expanduser().stat().st_size * FILE_BYTES_PER_BYTE
    return None


def check_size(name: str, spec: FileSpec | None = None) -> None:
    """Raise DatasetError for a synthetic shape that cannot be split (fewer than 2 users or
    items) and for a dataset whose estimated memory exceeds what the machine has free, before
    any of it is made."""
    shape = parse_name(name)
    if shape is not None and (shape[0] < 2 or shape[1] < 2):
        raise DatasetError(f"{name}: a synthetic dataset needs at least 2 users and 2 items "
                           f"(each user gets 2 ratings or more, one of which may be held out); "
                           f"got {shape[0]} x {shape[1]}")
    need, free = estimated_bytes(name, spec), available_memory()
    if need is not None and need > free:
        raise DatasetError(f"{name}: loading and splitting it needs about {need / 2**30:,.1f} "
                           f"GiB by estimate and this machine has {free / 2**30:,.1f} GiB "
                           "free; choose a smaller shape")


def _synthetic(name: str, ratings: pd.DataFrame, n_items: int,
               scale: tuple[float, float] = (1.0, 5.0)) -> Dataset:
    items = pd.DataFrame({"item": range(1, n_items + 1)})
    items["title"] = [f"Synthetic item {i}" for i in items["item"]]
    items["genres"] = ""
    return Dataset(name, ratings, items, scale=scale)


def load(name: str, data_dir: str | os.PathLike | None = None, download: bool = True) -> Dataset:
    """Load a MovieLens release (`ml-100k`, `ml-1m`, `ml-10m`, `ml-20m`, `ml-25m`,
    `ml-latest-small`), a user's file (registered, or a PATH.csv / .tsv), `synthetic`,
    `synthetic-<users>x<items>`, or a named synthetic dataset of a release's shape
    (`synthetic.NAMED`: `synthetic-ml1m`, `synthetic-ml20m` and its `-half` and `-eighth`)."""
    if name in NAMED:
        named = NAMED[name]
        return _synthetic(name, named.make(), named.items, named.scale)
    shape = parse_name(name)
    if shape is not None:
        return _synthetic(name, synthetic_ratings(*shape), shape[1])
    check_name(name)
    user = file_spec(name)
    if user is not None:
        ratings, items, labels = read_file(user)
        if items is None:
            items = pd.DataFrame({"item": np.unique(ratings["item"].to_numpy())})
            items["title"] = [f"item {i}" if labels.item is None else
                              f"item {labels.item[i - 1]}" for i in items["item"]]
            items["genres"] = ""
        # the columns the dataset declares; else what titles tell (a film's year)
        declared = read_features(user, labels, "item")
        return Dataset(name, ratings, items, scale=user.rating_scale, labels=labels,
                       item_features=(declared if declared is not None
                                      else item_table(items, user.items or user.path)),
                       user_features=read_features(user, labels, "user"))
    spec = SPECS[name]
    folder = locate(spec, data_dir, download=download)
    ratings = read_ratings(folder / spec.ratings_file, spec.ratings_sep, spec.ratings_header,
                           spec.scale)
    if spec.items_csv:
        items = read_items_csv(folder / spec.items_file)
    else:
        genre_file = folder / "u.genre"
        genres = read_genre_names(genre_file) if spec.items_sep == "|" else None
        items = read_items(folder / spec.items_file, spec.items_sep, genres)
    users_file = None if spec.users_file is None else folder / spec.users_file
    # demographics are optional: a folder supplied without them loads, and whatever reads
    # user features refuses it by name
    users = (read_users(users_file, spec.name) if users_file is not None
             and users_file.is_file() else None)
    return Dataset(name, ratings, items, spec, folder, scale=spec.scale,
                   item_features=item_table(items, str(folder / spec.items_file)),
                   user_features=users)
