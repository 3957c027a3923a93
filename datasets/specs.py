"""The table of MovieLens dataset specs: where each archive lives, its checksum and file layout."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetSpec:
    """One downloadable MovieLens release.

    `md5` is GroupLens' published checksum of the zip; a download must match it before it
    is kept (None for ml-latest-small, which GroupLens rebuilds: its zip is checked for
    integrity only, and its md5 is printed). `ratings_sep` is the field separator of
    `ratings_file` (`ratings_header`: a header line first, the CSV releases); `items_*`
    describe the item metadata file (titles and genres): latin-1 `::` or `|` files up to
    ML-10M, UTF-8 CSV with quoted titles from ML-20M on; `users_file` the demographics of
    ML-100K and ML-1M (read by `features.read_users` in the layout named after the release).
    `scale` is the rating scale: whole stars 1-5 up to ML-1M, half stars 0.5-5 from ML-10M on.
    """

    name: str
    url: str
    md5: str | None
    folder: str
    ratings_file: str
    ratings_sep: str
    items_file: str
    items_sep: str
    official_splits: tuple[str, ...] = ()
    ratings_header: bool = False
    items_csv: bool = False
    scale: tuple[float, float] = (1.0, 5.0)
    users_file: str | None = None  # demographics (`features.USER_LAYOUTS` names its layout)


GROUPLENS = "https://files.grouplens.org/datasets/movielens"
HALF_STARS = (0.5, 5.0)

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
            users_file="u.user",
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
            users_file="users.dat",
        ),
        DatasetSpec(
            name="ml-10m",
            url=f"{GROUPLENS}/ml-10m.zip",
            md5="ce571fd55effeba0271552578f2648bd",
            folder="ml-10M100K",
            ratings_file="ratings.dat",
            ratings_sep="::",
            items_file="movies.dat",
            items_sep="::",
            scale=HALF_STARS,
        ),
        *(DatasetSpec(
            name=name,
            url=f"{GROUPLENS}/{name}.zip",
            md5=md5,
            folder=name,
            ratings_file="ratings.csv",
            ratings_sep=",",
            items_file="movies.csv",
            items_sep=",",
            ratings_header=True,
            items_csv=True,
            scale=HALF_STARS,
        ) for name, md5 in (("ml-20m", "cd245b17a1ae2cc31bb14903e1204af3"),
                            ("ml-25m", "6b51fb2759a8657d3bfcbfc42b592ada"),
                            ("ml-latest-small", None))),
    )
}
