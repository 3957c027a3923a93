"""The table of MovieLens dataset specs: where each archive lives, its checksum and file layout."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetSpec:
    """One downloadable MovieLens release.

    `md5` is GroupLens' published checksum of the zip; a download must match it before it
    is kept. `ratings_sep` is the field separator of `ratings_file`; `items_*` describe the
    item metadata file (titles and genres), which GroupLens ships in latin-1.
    """

    name: str
    url: str
    md5: str
    folder: str
    ratings_file: str
    ratings_sep: str
    items_file: str
    items_sep: str
    official_splits: tuple[str, ...] = ()


GROUPLENS = "https://files.grouplens.org/datasets/movielens"

SPECS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="ml-100k",
            url=f"{GROUPLENS}/ml-100k.zip",
            md5="0e33842e24a9c977be4e0107933c0723",
            folder="ml-100k",
            ratings_file="u.data",
            ratings_sep="\t",
            items_file="u.item",
            items_sep="|",
            official_splits=("u1", "u2", "u3", "u4", "u5", "ua", "ub"),
        ),
        DatasetSpec(
            name="ml-1m",
            url=f"{GROUPLENS}/ml-1m.zip",
            md5="c4d9eecfca2ab87c1945afe126590906",
            folder="ml-1m",
            ratings_file="ratings.dat",
            ratings_sep="::",
            items_file="movies.dat",
            items_sep="::",
        ),
    )
}
