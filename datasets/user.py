"""Users' own rating files: a delimited file of (user, item[, rating][, timestamp]) lines,
and optionally an items file with titles, read into the same `Dataset` MovieLens gives.

A `FileSpec` says how to read one (the experiment file's `[datasets.NAME]` table maps onto
its fields; `-d PATH.csv` is `FileSpec.for_path`: header `user,item,rating[,timestamp]`).
Columns are named (with a header) or 0-based positions. Every malformed line stops loading
with `file:line` and the rule it broke, before any training:

- a missing column, a rating that is not a number or lies off the declared scale, a
  timestamp that is not an integer, an integer id column with a line whose id is not one;
- a duplicate (user, item) pair: an error naming both lines (`duplicates = "error"`, the
  default: the suite does not guess which rating counts), or the later line kept
  (`duplicates = "last"`, for logs where a re-rating replaces the earlier one).

What real files carry is read as it is: a UTF-8 byte-order mark (Excel writes one), blank
lines, MovieLens's own CSV header (`userId,movieId,rating,timestamp`, as ml-latest and
ML-20M/25M ship it), and ids that are strings (`u123`, ASINs, hashes). String ids
(`ids = "string"`, or `"auto"` where the first line's id is not an integer) are mapped once to
integer codes in sorted order; the map is kept with the dataset (`Dataset.user_labels`,
`item_labels`), the split's fingerprint covers it, and `recommend --user` takes the original id.
A header that does not name the columns gets an error that lists it and the experiment-file
keys that would read it.

`Side information (for the cold-start protocols and the families that read it): the items
file's `items_genres` (`|`-separated tags), `items_categorical` and `items_numeric` columns,
and a users file (`users`, `users_user`, `users_categorical`, `users_numeric`), read into
typed feature tables with the same file:line errors.

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
IDS = ("auto", "integer", "string")
# header names read for a column left at its default name (MovieLens's CSV header among them)
ALIASES = {"user": ("userId", "user_id", "userID", "UserID"),
           "item": ("movieId", "item_id", "itemId", "movie_id", "MovieID"),
           "rating": ("Rating", "ratings", "score"),
           "timestamp": ("Timestamp", "time")}
GUESS = {"user": ("user", "customer", "uid", "visitor", "reviewer"),
         "item": ("item", "movie", "product", "iid", "asin", "film", "track"),
         "rating": ("rating", "score", "star", "overall")}


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
    ids: str = "auto"                    # auto | integer | string (how ids are read)
    # side information (`datasets.features`): columns of the items file, and a users file
    items_genres: Column | None = None   # `|`-separated tags per item (genres): multi-hot
    items_categorical: tuple[Column, ...] = ()  # one category per item (a studio, a brand)
    items_numeric: tuple[Column, ...] = ()      # a number per item (a year; empty: unknown)
    users: str | None = None             # a users file of user features
    users_delimiter: str = ","
    users_header: bool = True
    users_user: Column = "user"
    users_categorical: tuple[Column, ...] = ()  # one category per user (gender, region)
    users_numeric: tuple[Column, ...] = ()      # a number per user (an age)

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
        return cls(name=Path(path).stem, path=path)

    def check(self) -> None:
        """The spec's own values (before the file is read)."""
        if self.ids not in IDS:
            raise DatasetError(f"dataset {self.name!r}: ids {self.ids!r} unknown; choose from "
                               f"{', '.join(IDS)}")
        if self.duplicates not in DUPLICATES:
            raise DatasetError(f"dataset {self.name!r}: duplicates {self.duplicates!r} unknown; "
                               f"choose from {', '.join(DUPLICATES)}")
        if not self.implicit:
            if isinstance(self.scale, str) or len(self.scale) != 2 or not (
                    float(self.scale[0]) < float(self.scale[1])):
                raise DatasetError(f"dataset {self.name!r}: scale must be [low, high] with "
                                   f"low < high, or \"implicit\"; got {self.scale!r}")
        if (self.items_genres is not None or self.items_categorical or self.items_numeric
                ) and self.items is None:
            raise DatasetError(f"dataset {self.name!r}: items_genres, items_categorical and "
                               "items_numeric read the items file; give its path (items)")
        if self.users is None and (self.users_categorical or self.users_numeric):
            raise DatasetError(f"dataset {self.name!r}: users_categorical and users_numeric "
                               "read the users file; give its path (users)")
        if self.users is not None and not (self.users_categorical or self.users_numeric):
            raise DatasetError(f"dataset {self.name!r}: a users file needs the columns to "
                               "read (users_categorical, users_numeric)")
        if not self.header:
            for key in ("user", "item", "rating", "timestamp"):
                if isinstance(getattr(self, key), str):
                    raise DatasetError(f"dataset {self.name!r}: {key} = "
                                       f"{getattr(self, key)!r} names a column, but the file "
                                       "has no header (give a 0-based position)")


def _open_encoding(encoding: str) -> str:
    """UTF-8 read so that a byte-order mark is dropped rather than glued to the first name."""
    return "utf-8-sig" if encoding.lower().replace("-", "").replace("_", "") == "utf8" \
        else encoding


def _hint(path: Path, names: list[str], delimiter: str) -> str:
    """The experiment-file table that would read a file whose header did not match."""
    keys = {}
    if len(names) == 1:
        for sep in ("::", ";", "\t", "|", ",", " "):
            if sep != delimiter and sep in names[0]:
                keys["delimiter"] = sep
                names = [n.strip() for n in names[0].split(sep)]
                break
    for key, words in GUESS.items():
        found = [n for n in names if any(w in n.lower() for w in words)]
        if found:
            keys[key] = found[0]
    if not keys:
        return ""
    lines = [f'path = "{path}"', *(f"{k} = {v!r}".replace("'", '"') for k, v in keys.items())]
    return ("; to read it, name its columns in an experiment file (run --config FILE.toml): "
            "[dataset.NAME] " + "; ".join(lines))


def _columns(path: Path, delimiter: str, header: bool, wanted: dict[str, Column | None],
             encoding: str, optional: frozenset[str] = frozenset(),
             defaults: dict[str, Column | None] | None = None
             ) -> tuple[list[tuple[int, list[str]]], dict]:
    """The file's non-blank rows as (line number, fields), and each wanted key's position
    (an `optional` key's named column may be absent from the header; a key left at its
    `defaults` name also finds the header's ALIASES)."""
    rows = []
    with open(path, newline="", encoding=_open_encoding(encoding)) as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            for fields in reader:
                if any(f.strip() for f in fields):
                    rows.append((reader.line_num, fields))
        except (csv.Error, UnicodeDecodeError) as exc:
            raise DatasetError(f"{path}:{reader.line_num}: {exc}") from exc
    names = [n.strip() for n in rows[0][1]] if header and rows else None
    where = {}
    for key, col in wanted.items():
        if col is None:
            continue
        if isinstance(col, int):
            where[key] = col
            continue
        choices = [col] + (list(ALIASES.get(key, ())) if defaults and defaults.get(key) == col
                           else [])
        found = [c for c in choices if names is not None and c in names]
        if found:
            where[key] = names.index(found[0])
        elif key not in optional:
            shown = f"; its header: {', '.join(names)}" if names else ""
            raise DatasetError(f"{path}:{rows[0][0] if rows else 1}: no column {col!r} (the "
                               f"{key} column){shown}"
                               + (_hint(path, names, delimiter) if names else ""))
    return rows, where


def _ids(texts: list[str], lines: list[int], key: str, mode: str, path: Path
         ) -> tuple[np.ndarray, np.ndarray | None]:
    """(integer ids, None), or (codes 1..n, the sorted original labels) for string ids."""
    first = texts[0] if texts else ""
    if mode == "string" or (mode == "auto" and not _is_int(first)):
        labels, codes = np.unique(np.asarray(texts, dtype=object).astype(str),
                                  return_inverse=True)
        return codes.astype(np.int64) + 1, labels
    out = np.empty(len(texts), np.int64)
    for i, text in enumerate(texts):
        try:
            out[i] = int(text)
        except ValueError:
            raise DatasetError(
                f"{path}:{lines[i]}: {key} {text!r} is not an integer id, as the ids before "
                f"it are (set ids = \"string\" to read every id as a string)") from None
    return out, None


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Labels:
    """The original ids of a file whose ids are strings: code k stands for `labels[k - 1]`
    (None for a column of integer ids, which are their own codes)."""

    user: np.ndarray | None = None
    item: np.ndarray | None = None

    def code(self, key: str, text: str) -> int:
        """The integer code of an original id (`KeyError` naming it if unknown)."""
        labels = getattr(self, key)
        if labels is None:
            try:
                return int(text)
            except ValueError:
                raise KeyError(f"{key} {text!r} is not an integer id") from None
        at = int(np.searchsorted(labels, str(text)))
        if at == len(labels) or labels[at] != str(text):
            raise KeyError(f"unknown {key} {text!r}")
        return at + 1

    def digest(self) -> bytes:
        """What the split's fingerprint adds for string ids (nothing for integer ids)."""
        import hashlib

        h = hashlib.sha256()
        for tag, labels in (("user", self.user), ("item", self.item)):
            if labels is not None:
                h.update(tag.encode() + "\x00".join(labels).encode("utf-8"))
        return b"" if self.user is None and self.item is None else h.digest()


def read_file(spec: FileSpec) -> tuple[pd.DataFrame, pd.DataFrame | None, Labels]:
    """(ratings: user, item, rating, timestamp; items: item, title, genres or None; the
    original ids where they are strings)."""
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
                           frozenset({"timestamp"}) if guess else frozenset(),
                           defaults={"user": "user", "item": "item", "rating": "rating",
                                     "timestamp": "timestamp"})
    body = rows[1:] if spec.header else rows
    if not body:
        raise DatasetError(f"{path}: no ratings")
    need = max(where.values()) + 1
    texts: dict[str, list[str]] = {"user": [], "item": []}
    lines, ratings, stamps = [], [], []
    low, high = spec.rating_scale or (1.0, 1.0)
    for line, fields in body:
        lines.append(line)
        if len(fields) < need:
            missing = [k for k, c in where.items() if c >= len(fields)]
            raise DatasetError(f"{path}:{line}: missing column {missing[0]!r} ({len(fields)} "
                               f"fields, separated by {spec.delimiter!r})")
        for key in ("user", "item"):
            text = fields[where[key]].strip()
            if not text:
                raise DatasetError(f"{path}:{line}: empty {key} id")
            texts[key].append(text)
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
    users, user_labels = _ids(texts["user"], lines, "user", spec.ids, path)
    items, item_labels = _ids(texts["item"], lines, "item", spec.ids, path)
    df = pd.DataFrame({"user": users, "item": items,
                       "rating": np.asarray(ratings, np.float32),
                       "timestamp": pd.array(stamps, dtype="Int64")})
    dup = df.duplicated(["user", "item"], keep=False).to_numpy()
    if dup.any():
        if spec.duplicates == "error":
            first = int(np.argmax(dup))
            u, it = df["user"].iat[first], df["item"].iat[first]
            again = np.flatnonzero(dup & (df["user"].to_numpy() == u)
                                   & (df["item"].to_numpy() == it))[1]
            u, it = (texts["user"][first], texts["item"][first])
            raise DatasetError(f"{path}:{lines[again]}: duplicate (user {u}, item {it}), "
                               f"first at line {lines[first]} (set duplicates = \"last\" "
                               "to keep the later line)")
        df = df[~df.duplicated(["user", "item"], keep="last")].reset_index(drop=True)
    labels = Labels(user_labels, item_labels)
    return df, (_read_items(spec, labels) if spec.items else None), labels


def _read_items(spec: FileSpec, labels: Labels) -> pd.DataFrame:
    path = Path(spec.items).expanduser()
    if not path.is_file():
        raise DatasetError(f"dataset {spec.name!r}: items file {path}: file not found")
    if not spec.items_header:
        for key in ("items_item", "items_title"):
            if isinstance(getattr(spec, key), str):
                raise DatasetError(f"dataset {spec.name!r}: {key} = {getattr(spec, key)!r} "
                                   "names a column, but the items file has no header")
    rows, where = _columns(path, spec.items_delimiter, spec.items_header,
                           {"item": spec.items_item, "title": spec.items_title}, spec.encoding,
                           defaults={"item": "item", "title": "title"})
    out = []
    for line, fields in rows[1:] if spec.items_header else rows:
        if len(fields) <= max(where.values()):
            raise DatasetError(f"{path}:{line}: missing column (the item's id or title)")
        text = fields[where["item"]].strip()
        try:
            out.append((labels.code("item", text), fields[where["title"]]))
        except KeyError as exc:
            if labels.item is None:
                raise DatasetError(f"{path}:{line}: item {text!r} is not an integer id"
                                   ) from None
            del exc  # an item no rating names: no code, nothing to show
    items = pd.DataFrame(out, columns=["item", "title"])
    items["genres"] = ""
    return items


def read_features(spec: FileSpec, labels: Labels, of: str):
    """The side information a user's dataset declares for `of` (item: the items file's
    genres, categorical and numeric columns; user: the users file's), as a
    `features.FeatureTable`, or None where it declares none. Rows whose id no rating names
    are left out; a malformed line stops loading with file:line."""
    from .features import from_rows

    if of == "item":
        file, delimiter, header, id_col = spec.items, spec.items_delimiter, spec.items_header, \
            spec.items_item
        multi = () if spec.items_genres is None else (spec.items_genres,)
        cats, nums = spec.items_categorical, spec.items_numeric
    else:
        file, delimiter, header, id_col = spec.users, spec.users_delimiter, spec.users_header, \
            spec.users_user
        multi, cats, nums = (), spec.users_categorical, spec.users_numeric
    if file is None or not (multi or cats or nums):
        return None
    path = Path(file).expanduser()
    if not path.is_file():
        raise DatasetError(f"dataset {spec.name!r}: {of}s file {path}: file not found")
    kinds = {**{c: "multi-hot" for c in multi}, **{c: "categorical" for c in cats},
             **{c: "numeric" for c in nums}}
    if not header and any(isinstance(c, str) for c in [id_col, *kinds]):
        raise DatasetError(f"dataset {spec.name!r}: the {of}s file has no header; give its "
                           "columns as 0-based positions")
    wanted = {of: id_col, **{f"column {c!r}": c for c in kinds}}
    rows, where = _columns(path, delimiter, header, wanted, spec.encoding)
    ids, values = [], {c: [] for c in kinds}
    need = max(where.values()) + 1
    for line, fields in rows[1:] if header else rows:
        if len(fields) < need:
            raise DatasetError(f"{path}:{line}: {len(fields)} fields, {need} needed "
                               f"(separated by {delimiter!r})")
        text = fields[where[of]].strip()
        try:
            code = labels.code(of, text)
        except KeyError:
            if getattr(labels, of) is None:
                raise DatasetError(f"{path}:{line}: {of} {text!r} is not an integer id"
                                   ) from None
            continue  # an id no rating names
        ids.append(code)
        for c, kind in kinds.items():
            raw = fields[where[f"column {c!r}"]].strip()
            if kind == "numeric":
                try:
                    values[c].append(float(raw) if raw else float("nan"))
                except ValueError:
                    raise DatasetError(f"{path}:{line}: {c} {raw!r} is not a number") from None
            elif kind == "multi-hot":
                values[c].append(tuple(t.strip() for t in raw.split("|") if t.strip()))
            else:
                values[c].append(raw)
    if not ids:
        return None
    return from_rows(of, ids, {(c if isinstance(c, str) else f"column{c}"): (kind, values[c])
                               for c, kind in kinds.items()}, path)
