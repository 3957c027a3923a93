"""Side information as typed tables: what is known of an item or a user beside their ratings.

A `FeatureTable` holds one row per original id and typed columns:
- `categorical`: one value per row (gender, occupation, ML-1M's age group, a zip region);
- `multi-hot`: a set of values per row (a film's genres);
- `numeric`: a float per row, NaN where unknown (a film's year, ML-100K's age).

`encode(ids)` turns a table into the float32 matrix a model reads, one row per id in the
order given (a split's index; an id the table lacks reads all zeros). The encoding depends on
the table alone (categories in sorted order, numbers standardised over the table's rows, a
`?missing` indicator where any value is unknown), so every split of a dataset encodes alike.

The MovieLens files behind them (GroupLens' READMEs):
- ML-100K `u.user`: `user|age|gender|occupation|zip`; `u.item`: its 19 genre flags and the
  title with its year;
- ML-1M `users.dat`: `user::gender::age group::occupation code::zip`; `movies.dat`:
  `item::title (year)::genre|genre`;
- the CSV releases (ML-20M, ML-25M, ml-latest): `movies.csv`'s genres and titles (no user
  file: demographics are absent from them).
A zip code is kept as its first character (US zip regions; ML-100K holds a few Canadian
codes, whose letter stands as its own region): a whole zip code is nearly an id.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from .fetch import DatasetError

KINDS = ("categorical", "multi-hot", "numeric")
NO_GENRE = {"", "(no genres listed)", "unknown"}
YEAR = re.compile(r"\((\d{4})\)\s*$")


@dataclass(frozen=True, eq=False)
class Column:
    """One typed column: `values[i]` belongs to the table's `ids[i]`. Categorical values are
    strings, multi-hot values tuples of strings, numeric values floats (NaN: unknown)."""

    name: str
    kind: str
    values: tuple

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"feature column {self.name!r}: kind {self.kind!r} unknown; "
                             f"choose from {', '.join(KINDS)}")

    def _sets(self) -> list[tuple]:
        """Each row's values as a tuple (categorical and multi-hot columns)."""
        return ([(x,) for x in self.values] if self.kind == "categorical"
                else [tuple(x) for x in self.values])

    @cached_property
    def _fitted(self) -> tuple:
        """What the encoding is fixed by, computed once: a numeric column's (mean, spread,
        whether any value is unknown), another's sorted categories."""
        if self.kind == "numeric":
            v = np.asarray(self.values, np.float64)
            known = v[~np.isnan(v)]
            sd = known.std() if len(known) > 1 else 0.0
            return (known.mean() if len(known) else 0.0, sd if sd > 0 else 1.0,
                    len(known) < len(v))
        return tuple(sorted({c for s in self._sets() for c in s}))

    def names(self) -> list[str]:
        """The encoded columns' names."""
        if self.kind == "numeric":
            return [self.name] + ([f"{self.name}?missing"] if self._fitted[2] else [])
        return [f"{self.name}={c}" for c in self._fitted]

    def encode(self) -> tuple[list[str], np.ndarray]:
        """(encoded column names, rows x width float32) in the table's own row order."""
        if self.kind == "numeric":
            mean, sd, missing = self._fitted
            v = np.asarray(self.values, np.float64)
            known = ~np.isnan(v)
            z = np.where(known, (v - mean) / sd, 0.0)
            out = np.stack([z, ~known], axis=1) if missing else z[:, None]
            return self.names(), out.astype(np.float32)
        where = {c: j for j, c in enumerate(self._fitted)}
        out = np.zeros((len(self.values), len(where)), np.float32)
        for i, s in enumerate(self._sets()):
            for c in s:
                out[i, where[c]] = 1.0
        return self.names(), out

    def choices(self) -> list[str] | None:
        """The values a categorical or multi-hot column knows, sorted (None: numeric)."""
        return None if self.kind == "numeric" else list(self._fitted)

    def encode_one(self, value) -> np.ndarray:
        """A new entity's value (None: unknown) encoded as the table encodes its rows: the
        table's categories, mean and spread. `FeatureValueError` names the column and, for a
        value it does not know, the values it does."""
        out = np.zeros(len(self.names()), np.float32)
        if value is None:
            if self.kind == "numeric" and self._fitted[2]:
                out[-1] = 1.0  # its ?missing indicator
            return out
        if self.kind == "numeric":
            try:
                x = float(value)
            except (TypeError, ValueError):
                raise FeatureValueError(self.name, f"{value!r} is not a number") from None
            if not np.isfinite(x):
                raise FeatureValueError(self.name, f"{value!r} is not a finite number")
            mean, sd, _ = self._fitted
            out[0] = (x - mean) / sd
            return out
        given = ([value] if self.kind == "categorical" or isinstance(value, str)
                 else list(value))
        cats = self._fitted
        for g in given:
            if str(g) not in cats:
                raise FeatureValueError(self.name, f"{g!r} is not one of {', '.join(cats)}")
            out[cats.index(str(g))] = 1.0
        return out


class FeatureValueError(ValueError):
    """A new entity's feature value (or column) the table cannot encode; `column` names it."""

    def __init__(self, column: str, message: str):
        super().__init__(f"{column}: {message}")
        self.column = column


@dataclass(frozen=True, eq=False)
class FeatureTable:
    """The side information of one kind of entity (`of`: item or user) of a dataset."""

    of: str
    ids: np.ndarray            # original ids, sorted, unique
    columns: tuple[Column, ...]
    source: str                # the file it was read from

    def __post_init__(self):
        ids = np.asarray(self.ids, np.int64)
        if len(ids) and (np.diff(ids) <= 0).any():
            raise ValueError(f"{self.source}: feature ids must be sorted and unique")
        for c in self.columns:
            if len(c.values) != len(ids):
                raise ValueError(f"{self.source}: column {c.name!r} has {len(c.values)} "
                                 f"values for {len(ids)} ids")

    @cached_property
    def _encoded(self) -> tuple[list[str], np.ndarray]:
        """Every column encoded once (a table is encoded for every split made of it)."""
        parts = [c.encode() for c in self.columns]
        full = (np.concatenate([m for _, m in parts], axis=1) if parts
                else np.zeros((len(self.ids), 0), np.float32))
        return [n for names, _ in parts for n in names], full

    def names(self) -> list[str]:
        return list(self._encoded[0])

    def encode(self, ids: np.ndarray) -> np.ndarray:
        """float32 (len(ids), width): the encoded rows of `ids` (original ids, any order);
        zeros for an id the table lacks."""
        full = self._encoded[1]
        ids = np.asarray(ids, np.int64)
        pos = np.searchsorted(self.ids, ids)
        pos = np.minimum(pos, max(len(self.ids) - 1, 0))
        found = (self.ids[pos] == ids) if len(self.ids) else np.zeros(len(ids), bool)
        out = np.zeros((len(ids), full.shape[1]), np.float32)
        out[found] = full[pos[found]]
        return out

    def encode_values(self, values: dict) -> np.ndarray:
        """float32 (1, width): an entity the table lacks (a new visitor), from its values by
        column name; a column not given is unknown (its `?missing` indicator where it has
        one, else zeros). `FeatureValueError` names an unknown column or value."""
        known = {c.name for c in self.columns}
        for name in values:
            if name not in known:
                raise FeatureValueError(name, f"not a {self.of} feature of {self.source}; it "
                                              f"has {', '.join(sorted(known)) or 'none'}")
        parts = [c.encode_one(values.get(c.name)) for c in self.columns]
        return (np.concatenate(parts) if parts else np.zeros(0, np.float32))[None, :]

    def digest(self) -> bytes:
        """sha256 of the ids and every column's name, kind and values: what a split's
        fingerprint covers where its protocol reads features."""
        h = hashlib.sha256(self.of.encode())
        h.update(np.asarray(self.ids, "<i8").tobytes())
        for c in self.columns:
            h.update(f"{c.name}:{c.kind}:".encode())
            h.update(repr(c.values).encode())
        return h.digest()


def year_of(title: str) -> float:
    """The year in a MovieLens title, `Toy Story (1995)` -> 1995.0; NaN without one."""
    m = YEAR.search(str(title))
    return float(m.group(1)) if m else float("nan")


def item_table(items: pd.DataFrame, source: str) -> FeatureTable | None:
    """Genres (multi-hot) and year (numeric, from the title) of a MovieLens items frame
    (`item, title, genres 'A|B'`); None where no item has a genre or a year (a synthetic
    dataset, a user's file without an items file)."""
    items = items.sort_values("item").drop_duplicates("item")
    genres = tuple(tuple(g for g in str(s).split("|") if g not in NO_GENRE)
                   for s in items["genres"].fillna(""))
    years = tuple(year_of(t) for t in items["title"].fillna(""))
    has_genre = any(genres)
    has_year = not all(np.isnan(years))
    if not has_genre and not has_year:
        return None
    cols = ((Column("genre", "multi-hot", genres),) if has_genre else ()) + (
        (Column("year", "numeric", years),) if has_year else ())
    return FeatureTable("item", items["item"].to_numpy(np.int64), cols, source)


def zip_region(code: str) -> str:
    """A zip code's first character (a US zip region; a Canadian code's letter)."""
    code = code.strip()
    return code[:1].upper() if code else "?"


USER_LAYOUTS = {
    # name: (separator, fields after the id, how each is typed)
    "ml-100k": ("|", ("age", "gender", "occupation", "zip"),
                {"age": "numeric", "gender": "categorical", "occupation": "categorical",
                 "zip": "categorical"}),
    "ml-1m": ("::", ("gender", "age", "occupation", "zip"),
              {"gender": "categorical", "age": "categorical", "occupation": "categorical",
               "zip": "categorical"}),
}


def read_users(path: str | Path, layout: str) -> FeatureTable:
    """A MovieLens users file (`u.user`, `users.dat`) as a table; every malformed line stops
    loading with file:line and what was wrong."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    sep, fields, kinds = USER_LAYOUTS[layout]
    ids, rows = [], []
    with open(path, encoding="latin-1") as fh:
        for line_no, line in enumerate(fh, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            parts = line.split(sep)
            if len(parts) != 1 + len(fields):
                raise DatasetError(f"{path}:{line_no}: expected {1 + len(fields)} fields "
                                   f"(user{sep}{sep.join(fields)}) separated by {sep!r}, "
                                   f"got {len(parts)}")
            try:
                ids.append(int(parts[0]))
            except ValueError:
                raise DatasetError(f"{path}:{line_no}: user {parts[0]!r} is not an "
                                   f"integer") from None
            row = {}
            for name, text in zip(fields, parts[1:]):
                if kinds[name] == "numeric":
                    try:
                        row[name] = float(text)
                    except ValueError:
                        raise DatasetError(f"{path}:{line_no}: {name} {text!r} is not a "
                                           f"number") from None
                elif name == "zip":
                    row[name] = zip_region(text)
                else:
                    row[name] = text.strip()
            rows.append(row)
    if not ids:
        raise DatasetError(f"{path}: no users")
    return from_rows("user", ids, {name: (kinds[name], [row[name] for row in rows])
                                   for name in fields}, path)


def from_rows(of: str, ids: list[int], columns: dict[str, tuple[str, list]],
              path: str | Path) -> FeatureTable:
    """A table from a file's rows in file order (`columns`: name -> (kind, values)), sorted
    by id; an id listed twice stops loading, naming the file."""
    order = np.argsort(ids, kind="stable")
    sorted_ids = np.asarray(ids, np.int64)[order]
    dup = np.flatnonzero(np.diff(sorted_ids) == 0)
    if len(dup):
        raise DatasetError(f"{path}: {of} {sorted_ids[dup[0]]} is listed twice")
    return FeatureTable(of, sorted_ids, tuple(
        Column(name, kind, tuple(values[i] for i in order))
        for name, (kind, values) in columns.items()), str(path))
