"""Users' own rating files: a delimited file of (user, item[, rating][, timestamp]) lines,
and optionally an items file with titles, read into the same `Dataset` MovieLens gives.

A `FileSpec` says how to read one (the experiment file's `[datasets.NAME]` table maps onto
its fields; `-d PATH.csv` is `FileSpec.for_path`: header `user,item,rating[,timestamp]`).
Columns are named (with a header) or 0-based positions. Every malformed line stops loading
with `file:line` and the rule it broke, before any training:

- a missing column, an id that is not an integer, a rating that is not a number or lies off
  the declared scale, a timestamp that is not an integer;
- a duplicate (user, item) pair: an error naming both lines (`duplicates = "error"`, the
  default: the suite does not guess which rating counts), or the later line kept
  (`duplicates = "last"`, for logs where a re-rating replaces the earlier one).

`scale = "implicit"` reads files without ratings: every line is an interaction of value 1;
only implicit-feedback variants run on such a dataset (a rating model has nothing to learn).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .fetch import DatasetError

Column = str | int  # a header name, or a 0-based position
DUPLICATES = ("error", "last")


@dataclass(frozen=True)
class FileSpec:
    name: str
    path: str
    delimiter: str = ","
    header: bool = True
    user: Column = "user"
    item: Column = "item"
    rating: Column | None = "rating"     # None: implicit (also implied by scale "implicit")
    timestamp: Column | None = None      # None: try a "timestamp" column under a header
    scale: tuple[float, float] | str = (1.0, 5.0)  # (low, high), or "implicit"
    duplicates: str = "error"            # error | last
    items: str | None = None             # an items file with titles
    items_delimiter: str = ","
    items_header: bool = True
    items_item: Column = "item"
    items_title: Column = "title"
    encoding: str = "utf-8"

    @property
    def implicit(self) -> bool:
        return self.scale == "implicit" or self.rating is None

    @property
    def rating_scale(self) -> tuple[float, float] | None:
        return None if self.implicit else (float(self.scale[0]), float(self.scale[1]))

    @classmethod
    def for_path(cls, path: str) -> FileSpec:
        """`-d PATH`: a comma-separated file with header user,item,rating[,timestamp], on a
        1-5 scale (the MovieLens one)."""
        return cls(name=path, path=path)

    def check(self) -> None:
        """The spec's own values (before the file is read)."""
        if self.duplicates not in DUPLICATES:
            raise DatasetError(f"dataset {self.name!r}: duplicates {self.duplicates!r} unknown; "
                               f"choose from {', '.join(DUPLICATES)}")
        if not self.implicit:
            if isinstance(self.scale, str) or len(self.scale) != 2 or not (
                    float(self.scale[0]) < float(self.scale[1])):
                raise DatasetError(f"dataset {self.name!r}: scale must be [low, high] with "
                                   f"low < high, or \"implicit\"; got {self.scale!r}")
        if not self.header:
            for key in ("user", "item", "rating", "timestamp"):
                if isinstance(getattr(self, key), str):
                    raise DatasetError(f"dataset {self.name!r}: {key} = "
                                       f"{getattr(self, key)!r} names a column, but the file "
                                       "has no header (give a 0-based position)")


def _columns(path: Path, delimiter: str, header: bool, wanted: dict[str, Column | None],
             encoding: str, optional: frozenset[str] = frozenset()
             ) -> tuple[list[list[str]], dict]:
    """The file's rows as lists of fields, and each wanted key's position (an `optional`
    key's named column may be absent from the header)."""
    with open(path, newline="", encoding=encoding) as fh:
        try:
            rows = list(csv.reader(fh, delimiter=delimiter))
        except (csv.Error, UnicodeDecodeError) as exc:
            raise DatasetError(f"{path}: {exc}") from exc
    names = rows[0] if header and rows else None
    where = {}
    for key, col in wanted.items():
        if col is None:
            continue
        if isinstance(col, int):
            where[key] = col
        elif names is not None and col in names:
            where[key] = names.index(col)
        elif key not in optional:
            shown = f"; its header: {', '.join(names)}" if names else ""
            raise DatasetError(f"{path}:1: no column {col!r} (the {key} column){shown}")
    return rows, where


def read_file(spec: FileSpec) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(ratings: user, item, rating, timestamp; items: item, title, genres or None)."""
    spec.check()
    path = Path(spec.path).expanduser()
    if not path.is_file():
        raise DatasetError(f"dataset {spec.name!r}: {path}: file not found")
    # no timestamp column named: a header's "timestamp" column if it has one
    guess = spec.timestamp is None and spec.header
    wanted = {"user": spec.user, "item": spec.item,
              "rating": None if spec.implicit else spec.rating,
              "timestamp": "timestamp" if guess else spec.timestamp}
    rows, where = _columns(path, spec.delimiter, spec.header, wanted, spec.encoding,
                           frozenset({"timestamp"}) if guess else frozenset())
    start = 1 if spec.header else 0
    body = rows[start:]
    if not body:
        raise DatasetError(f"{path}: no ratings")
    need = max(where.values()) + 1
    users, items, ratings, stamps = [], [], [], []
    low, high = spec.rating_scale or (1.0, 1.0)
    for i, fields in enumerate(body):
        line = i + start + 1
        if len(fields) < need:
            missing = [k for k, c in where.items() if c >= len(fields)]
            raise DatasetError(f"{path}:{line}: missing column {missing[0]!r} ({len(fields)} "
                               f"fields, separated by {spec.delimiter!r})")
        for key, out in (("user", users), ("item", items)):
            text = fields[where[key]].strip()
            try:
                out.append(int(text))
            except ValueError:
                raise DatasetError(f"{path}:{line}: {key} {text!r} is not an integer id"
                                   ) from None
        if spec.implicit:
            ratings.append(1.0)
        else:
            text = fields[where["rating"]].strip()
            try:
                value = float(text)
            except ValueError:
                raise DatasetError(f"{path}:{line}: rating {text!r} is not a number") from None
            if not low <= value <= high:
                raise DatasetError(f"{path}:{line}: rating {value:g} off the scale "
                                   f"{low:g}..{high:g}")
            ratings.append(value)
        if "timestamp" in where:
            text = fields[where["timestamp"]].strip()
            try:
                stamps.append(int(text) if text else None)
            except ValueError:
                raise DatasetError(f"{path}:{line}: timestamp {text!r} is not an integer"
                                   ) from None
        else:
            stamps.append(None)
    df = pd.DataFrame({"user": np.asarray(users, np.int64), "item": np.asarray(items, np.int64),
                       "rating": np.asarray(ratings, np.float32),
                       "timestamp": pd.array(stamps, dtype="Int64")})
    dup = df.duplicated(["user", "item"], keep=False).to_numpy()
    if dup.any():
        if spec.duplicates == "error":
            first = int(np.argmax(dup))
            u, it = df["user"].iat[first], df["item"].iat[first]
            again = np.flatnonzero(dup & (df["user"].to_numpy() == u)
                                   & (df["item"].to_numpy() == it))[1]
            raise DatasetError(f"{path}:{again + start + 1}: duplicate (user {u}, item {it}), "
                               f"first at line {first + start + 1} (set duplicates = \"last\" "
                               "to keep the later line)")
        df = df[~df.duplicated(["user", "item"], keep="last")].reset_index(drop=True)
    return df, (_read_items(spec) if spec.items else None)


def _read_items(spec: FileSpec) -> pd.DataFrame:
    path = Path(spec.items).expanduser()
    if not path.is_file():
        raise DatasetError(f"dataset {spec.name!r}: items file {path}: file not found")
    if not spec.items_header:
        for key in ("items_item", "items_title"):
            if isinstance(getattr(spec, key), str):
                raise DatasetError(f"dataset {spec.name!r}: {key} = {getattr(spec, key)!r} "
                                   "names a column, but the items file has no header")
    rows, where = _columns(path, spec.items_delimiter, spec.items_header,
                           {"item": spec.items_item, "title": spec.items_title}, spec.encoding)
    start = 1 if spec.items_header else 0
    out = []
    for i, fields in enumerate(rows[start:]):
        line = i + start + 1
        if len(fields) <= max(where.values()):
            raise DatasetError(f"{path}:{line}: missing column (the item's id or title)")
        try:
            out.append((int(fields[where["item"]]), fields[where["title"]]))
        except ValueError:
            raise DatasetError(f"{path}:{line}: item {fields[where['item']]!r} is not an "
                               "integer id") from None
    items = pd.DataFrame(out, columns=["item", "title"])
    items["genres"] = ""
    return items
