"""Parsers for the GroupLens rating and item files, with validation that names file and line.

Ratings are read by pandas' C parser; `::`-separated files are first rewritten to tabs in
memory, since pandas treats a multi-character separator as a regex and falls back to its
python engine, many times slower.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from .fetch import DatasetError

RATING_COLUMNS = ["user", "item", "rating", "timestamp"]


def _tabbed(path: Path, sep: str) -> io.BytesIO:
    raw = path.read_bytes()
    if sep != "\t":
        if b"\t" in raw:
            line = raw[: raw.index(b"\t")].count(b"\n") + 1
            raise DatasetError(f"{path}:{line}: tab found, expected fields separated by {sep!r}")
        raw = raw.replace(sep.encode(), b"\t")
    return io.BytesIO(raw)


def read_ratings(path: str | Path, sep: str, header: bool = False,
                 scale: tuple[float, float] = (1.0, 5.0)) -> pd.DataFrame:
    """Read `user<sep>item<sep>rating<sep>timestamp` lines (after a header line if `header`).

    Returns columns user, item (int64), rating (float32) and timestamp (nullable Int64; an
    empty fourth field is stored as missing). Raises DatasetError naming the file and the
    first offending line for wrong separators, non-integer ids, ratings off `scale` or off
    its step (whole stars on a 1-5 scale, half stars on 0.5-5) and duplicate (user, item)
    pairs.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    try:
        df = pd.read_csv(_tabbed(path, sep), sep="\t", header=0 if header else None,
                         names=RATING_COLUMNS, engine="c", skip_blank_lines=True,
                         keep_default_na=False, na_values={"timestamp": [""]})
    except pd.errors.ParserError as exc:
        raise DatasetError(f"{path}: {exc}") from exc
    first = 2 if header else 1  # the file line of the first data row
    if df.empty:
        raise DatasetError(f"{path}: no ratings")
    low, high = scale
    step = 0.5 if low % 1 else 1.0
    for col in ("user", "item"):
        _require_integers(df[col], path, col, sep, first=first)
    rating = pd.to_numeric(df["rating"], errors="coerce")
    bad = rating.isna() | (rating / step != np.floor(rating.fillna(0) / step))
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        kind = "an integer" if step == 1 else f"a multiple of {step:g}"
        raise DatasetError(f"{path}:{i + first}: rating {str(df['rating'].iat[i])!r} is not "
                           f"{kind} (expected 4 fields separated by {sep!r})")
    df["rating"] = rating
    if not pd.api.types.is_numeric_dtype(df["timestamp"]):
        _require_integers(df["timestamp"], path, "timestamp", sep, allow_missing=True,
                          first=first)
    bad = ~df["rating"].between(low, high)
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        raise DatasetError(f"{path}:{i + first}: rating {df['rating'].iat[i]:g} outside "
                           f"{low:g}..{high:g}")
    bad = (df["user"] < 1) | (df["item"] < 1)
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        raise DatasetError(f"{path}:{i + first}: ids must be positive integers")
    dup = df.duplicated(["user", "item"])
    if dup.any():
        i = int(np.argmax(dup.to_numpy()))
        raise DatasetError(f"{path}:{i + first}: duplicate rating for user "
                           f"{df['user'].iat[i]}, item {df['item'].iat[i]}")
    return pd.DataFrame({
        "user": df["user"].to_numpy(np.int64),
        "item": df["item"].to_numpy(np.int64),
        "rating": df["rating"].to_numpy(np.float32),
        "timestamp": df["timestamp"].astype("Int64"),
    })


def _require_integers(col: pd.Series, path: Path, name: str, sep: str,
                      allow_missing: bool = False, first: int = 1) -> None:
    if pd.api.types.is_integer_dtype(col):
        return
    values = pd.to_numeric(col, errors="coerce")
    bad = values.isna() if not allow_missing else values.isna() & (col.astype(str) != "")
    bad |= values.notna() & (values != np.floor(values.fillna(0)))
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        raise DatasetError(f"{path}:{i + first}: {name} {str(col.iat[i])!r} is not an "
                           f"integer (expected 4 fields separated by {sep!r})")
    if not allow_missing and values.isna().any():
        i = int(np.argmax(values.isna().to_numpy()))
        raise DatasetError(f"{path}:{i + first}: missing {name}")


def read_items(path: str | Path, sep: str, genre_names: list[str] | None = None) -> pd.DataFrame:
    """Read item titles and genres (latin-1) into columns item, title, genres ('A|B')."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    rows = []
    with open(path, encoding="latin-1") as fh:
        for line_no, line in enumerate(fh, 1):
            line = line.rstrip("\n")
            if not line:
                continue
            fields = line.split(sep)
            try:
                item = int(fields[0])
                if genre_names is None:
                    title, genres = fields[1], fields[2]
                else:
                    flags = fields[-len(genre_names):]
                    title = fields[1]
                    genres = "|".join(g for g, f in zip(genre_names, flags) if f == "1")
            except (ValueError, IndexError) as exc:
                raise DatasetError(f"{path}:{line_no}: malformed item line ({exc})") from exc
            rows.append((item, title, genres))
    return pd.DataFrame(rows, columns=["item", "title", "genres"])


def read_items_csv(path: str | Path) -> pd.DataFrame:
    """Read the CSV releases' movies.csv (UTF-8, header movieId,title,genres, titles quoted
    where they hold a comma) into columns item, title, genres."""
    import csv

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    rows = []
    with open(path, encoding="utf-8", newline="") as fh:
        for line_no, fields in enumerate(csv.reader(fh), 1):
            if line_no == 1 or not fields:
                continue
            try:
                rows.append((int(fields[0]), fields[1], fields[2]))
            except (ValueError, IndexError) as exc:
                raise DatasetError(f"{path}:{line_no}: malformed item line ({exc})") from exc
    return pd.DataFrame(rows, columns=["item", "title", "genres"])


def read_genre_names(path: str | Path) -> list[str]:
    """u.genre lists `name|index` lines (plus a trailing blank line)."""
    names = []
    with open(path, encoding="latin-1") as fh:
        for line in fh:
            if line.strip():
                names.append(line.rsplit("|", 1)[0])
    return names
