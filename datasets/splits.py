"""Named, seeded, fingerprinted train/test protocols, and the validation carving.

Every variant in a comparison sees the identical split: a split is determined by
(dataset, protocol name, seed), and its fingerprint, the sha256 of its sorted
(user, item, rating) triples in original ids, is stored with every result.

Model selection (early stopping, tuning) never sees the test ratings: it runs on the split's
*fitting view* (`carve_validation`), a `Split` whose `train` is the training ratings less a
seeded share of them and whose `test` is that share, the validation set. The view holds no
test rating at all. A protocol that supplies its own validation part (the literature's
train / validation / test splits) gives it to `Split.valid`, and the fitting view uses it
instead of a carving.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .dataset import Dataset
from .fetch import DatasetError
from .parse import read_ratings


@dataclass(frozen=True, eq=False)
class Split:
    """Train and test ratings as users x items CSR matrices over contiguous indices.

    `user_ids[u]` / `item_ids[i]` map an index back to the original MovieLens id. The index
    covers every user and item appearing in train or test, so test ratings of users or items
    absent from train are kept (and counted as cold) rather than silently dropped.
    """

    dataset: str
    name: str
    seed: int | None
    train: sp.csr_matrix
    test: sp.csr_matrix
    user_ids: np.ndarray
    item_ids: np.ndarray
    fingerprint: str
    scale: tuple[float, float] | None = (1.0, 5.0)  # the dataset's rating scale; None: implicit
    valid: sp.csr_matrix | None = None  # the protocol's own validation part, if it has one
    all_relevant: bool = False          # the protocol counts every held-out rating relevant
    fit_rows: np.ndarray | None = None  # users training may read (held-out users: the rest)
    carved: float | None = None         # a fitting view: the share carved from train as its
                                        # validation (None: the protocol's own part)
    valid_in_context: bool = False      # at test time the protocol's validation part is input
                                        # the model reads, not only items no one ranks
    cold_items: bool = False            # rank only held-out items no training rating has
    item_side: np.ndarray | None = None  # encoded item features (items x width), index order
    user_side: np.ndarray | None = None  # encoded user features (users x width), index order

    @property
    def n_users(self) -> int:
        return self.train.shape[0]

    @property
    def n_items(self) -> int:
        return self.train.shape[1]

    def describe(self) -> dict:
        out = {"dataset": self.dataset, "name": self.name, "seed": self.seed,
               "fingerprint": self.fingerprint, "n_users": self.n_users,
               "n_items": self.n_items, "n_train": int(self.train.nnz),
               "n_test": int(self.test.nnz)}
        if self.valid is not None:
            out["n_valid"] = int(self.valid.nnz)
        if self.fit_rows is not None:
            out["n_fit_users"] = int(self.fit_rows.sum())
        for kind, side in (("item", self.item_side), ("user", self.user_side)):
            if side is not None:
                out[f"{kind}_features"] = int(side.shape[1])
        return out

    def without_test(self) -> Split:
        """The same split with its test ratings gone (an empty matrix of the same shape):
        what training and model selection are given, so they cannot read a test rating."""
        return dataclasses.replace(self, test=sp.csr_matrix(self.train.shape,
                                                            dtype=np.float32))

    def item_index(self, item_id: int) -> int:
        pos = int(np.searchsorted(self.item_ids, item_id))
        if pos >= len(self.item_ids) or self.item_ids[pos] != item_id:
            raise KeyError(f"item id {item_id} is not in {self.dataset}")
        return pos

    def user_index(self, user_id: int) -> int:
        pos = int(np.searchsorted(self.user_ids, user_id))
        if pos >= len(self.user_ids) or self.user_ids[pos] != user_id:
            raise KeyError(f"user id {user_id} is not in {self.dataset}")
        return pos


@dataclass(frozen=True)
class Parts:
    """What a protocol returns beyond (train, test): its own validation part, and the users
    training may read (`fit_users`, original ids: held-out users are the others; their rows
    in `train` are fold-in input only)."""

    train: pd.DataFrame
    test: pd.DataFrame
    valid: pd.DataFrame | None = None
    fit_users: np.ndarray | None = None


# A protocol maps (dataset, seed) to (train, test) ratings, (train, validation, test), or Parts
Protocol = Callable[[Dataset, int], "tuple[pd.DataFrame, ...] | Parts"]
PROTOCOLS: dict[str, Protocol] = {}
SEEDED: set[str] = set()
ALL_RELEVANT: set[str] = set()  # protocols that count every held-out rating relevant
INTERACTIONS: set[str] = set()  # protocols that keep interactions, not ratings (implicit)
HELDOUT_USERS: set[str] = set()  # protocols that test users no model trained on
VALID_IN_CONTEXT: set[str] = set()  # protocols whose test input is train plus validation
COLD_ITEMS: set[str] = set()  # protocols that hold out items whole: ranked among themselves
READS_FEATURES: set[str] = set()  # protocols whose fingerprint covers the side information


def protocol(name: str, seeded: bool, all_relevant: bool = False,
             interactions: bool = False, heldout_users: bool = False,
             valid_in_context: bool = False, cold_items: bool = False,
             reads_features: bool = False):
    def wrap(fn: Protocol) -> Protocol:
        PROTOCOLS[name] = fn
        for flag, names in ((seeded, SEEDED), (all_relevant, ALL_RELEVANT),
                            (interactions, INTERACTIONS), (heldout_users, HELDOUT_USERS),
                            (valid_in_context, VALID_IN_CONTEXT), (cold_items, COLD_ITEMS),
                            (reads_features, READS_FEATURES)):
            if flag:
                names.add(name)
        return fn
    return wrap


def _official(part: str) -> Protocol:
    def split(ds: Dataset, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        if ds.spec is None or part not in ds.spec.official_splits:
            raise DatasetError(f"split {part!r} is one of ml-100k's official files; "
                               f"{ds.name} has none (use random-90-10 or random-75-25)")
        sep = ds.spec.ratings_sep
        return (read_ratings(ds.folder / f"{part}.base", sep),
                read_ratings(ds.folder / f"{part}.test", sep))
    split.__doc__ = f"GroupLens' own {part}.base / {part}.test files (ml-100k only)."
    return split


for _part in ("u1", "u2", "u3", "u4", "u5", "ua", "ub"):
    protocol(_part, seeded=False)(_official(_part))


def _random(test_fraction: float) -> Protocol:
    def split(ds: Dataset, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        n = len(ds.ratings)
        order = np.random.default_rng(seed).permutation(n)
        n_test = int(round(n * test_fraction))
        test = np.zeros(n, dtype=bool)
        test[order[:n_test]] = True
        return ds.ratings[~test], ds.ratings[test]
    split.__doc__ = (f"A seeded uniform random {100 - 100 * test_fraction:.0f}/"
                     f"{100 * test_fraction:.0f} split of all ratings.")
    return split


protocol("random-90-10", seeded=True)(_random(0.10))  # AutoRec (Sedhain et al., 2015)
protocol("random-75-25", seeded=True)(_random(0.25))  # the ML-1M SAE notebook


@protocol("temporal-80-20", seeded=False)
def _temporal(ds: Dataset, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The earliest 80% of ratings by timestamp train, the latest 20% test."""
    ts = ds.ratings["timestamp"]
    missing = int(ts.isna().sum())
    if missing:
        raise DatasetError(f"split 'temporal-80-20' needs a timestamp on every rating; "
                           f"{ds.name} has {missing:,} ratings without one "
                           f"(use random-90-10 or random-75-25)")
    order = np.argsort(ts.to_numpy(np.int64), kind="stable")
    cut = int(round(len(order) * 0.8))
    return ds.ratings.iloc[order[:cut]], ds.ratings.iloc[order[cut:]]


@protocol("diffrec-temporal", seeded=False, all_relevant=True, interactions=True)
def _diffrec_temporal(ds: Dataset, seed: int) -> tuple[pd.DataFrame, pd.DataFrame,
                                                       pd.DataFrame]:
    """DiffRec's clean-training protocol (Wang et al., SIGIR 2023): ratings >= 4 as
    interactions, users and items with >= 10 of them (iteratively: on ML-1M exactly the
    paper's 5,949 users, 2,810 items and 571,531 interactions), all ordered by time and cut
    7:1:2 into train, validation and test (the earliest 70% train). Needs a timestamp on every
    kept rating (this ml-1m mirror lacks some, all of them ratings of 3)."""
    if ds.scale is None:
        raise DatasetError(f"split 'diffrec-temporal' keeps ratings >= 4; {ds.name} is "
                           f"implicit (use random-90-10)")
    liked = k_core(ds.ratings[ds.ratings["rating"] >= 4], 10)
    missing = int(liked["timestamp"].isna().sum())
    if missing:
        raise DatasetError(f"split 'diffrec-temporal' orders interactions by time; {missing:,} "
                           f"of {ds.name}'s {len(liked):,} ratings >= 4 have no timestamp "
                           f"(use random-90-10)")
    order = np.argsort(liked["timestamp"].to_numpy(np.int64), kind="stable")
    n = len(order)
    a, b = int(round(0.7 * n)), int(round(0.8 * n))
    return (liked.iloc[order[:a]], liked.iloc[order[a:b]], liked.iloc[order[b:]])


def k_core(ratings: pd.DataFrame, k: int) -> pd.DataFrame:
    """The ratings of users and items with >= k ratings each, filtered again until both
    hold (RecBole's `user_inter_num_interval` / `item_inter_num_interval` = [k, inf))."""
    while True:
        users = ratings["user"].map(ratings["user"].value_counts())
        items = ratings["item"].map(ratings["item"].value_counts())
        keep = (users >= k) & (items >= k)
        if keep.all():
            return ratings
        ratings = ratings[keep]


def per_user_shares(counts: np.ndarray, ratios: tuple[float, ...]) -> np.ndarray:
    """How many of each user's `counts` ratings go to each part (users x parts): RecBole's
    `_calcu_split_ids`, every part but the first int(ratio * n), the first the rest, and a
    part whose share is below one rating given one while the first keeps more than one."""
    counts = np.asarray(counts, np.int64)
    out = np.zeros((len(counts), len(ratios)), np.int64)
    for u, n in enumerate(counts):
        cnt = [int(r * n) for r in ratios]
        cnt[0] = n - sum(cnt[1:])
        for i in range(1, len(ratios)):
            if cnt[0] <= 1:
                break
            if 0 < ratios[-i] * n < 1:
                cnt[-i] += 1
                cnt[0] -= 1
        out[u] = cnt
    return out


def split_per_user(ratings: pd.DataFrame, ratios: tuple[float, ...],
                   seed: int) -> tuple[pd.DataFrame, ...]:
    """Each user's ratings shuffled (seeded) and cut into consecutive parts of `ratios`."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(ratings))
    shuffled = ratings.iloc[order]
    users = shuffled["user"].to_numpy(np.int64)
    by_user = np.argsort(users, kind="stable")  # each user's ratings, in shuffled order
    uniq, starts, counts = np.unique(users[by_user], return_index=True, return_counts=True)
    shares = per_user_shares(counts, ratios)
    rank = np.arange(len(by_user)) - np.repeat(starts, counts)  # position within the user
    bounds = np.cumsum(shares, axis=1)
    part = (rank[:, None] >= np.repeat(bounds, counts, axis=0)).sum(axis=1)
    rows = shuffled.iloc[by_user]
    return tuple(rows[part == p] for p in range(len(ratios)))


@protocol("filtered-80-10-10", seeded=True, all_relevant=True)
def _filtered(ds: Dataset, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """RecBole's ML-1M general benchmark: ratings >= 3 kept, users and items filtered to >= 10
    each (iteratively), each user's ratings split at random 80/10/10 into train, validation
    and test; every held-out rating relevant."""
    if ds.scale is None:
        raise DatasetError(f"split 'filtered-80-10-10' keeps ratings >= 3; {ds.name} is "
                           f"implicit (use random-90-10)")
    kept = k_core(ds.ratings[ds.ratings["rating"] >= 3], 10)
    if kept.empty:
        raise DatasetError(f"split 'filtered-80-10-10': no user and item of {ds.name} keep "
                           f"10 ratings >= 3")
    return split_per_user(kept, (0.8, 0.1, 0.1), seed)


HELDOUT_MAX = 10_000  # held-out users per part (Liang et al.'s n_heldout_users)


@protocol("heldout-users", seeded=True, interactions=True, heldout_users=True)
def _heldout_users(ds: Dataset, seed: int) -> Parts:
    """Strong generalisation (Liang et al., WWW 2018, Mult-VAE's protocol): ratings >= 4 as
    interactions (Liang's `rating > 3.5` on ML-20M's half stars: the same ratings on either
    scale), users with >= 5 of them; 10% of users held out for validation and 10% for test,
    at most 10,000 each (Liang's ML-20M and Netflix figure); each held-out user's
    interactions (items unseen among training users dropped) split 80/20 into a fold-in part
    the model reads and a part it is scored on. No model trains on a held-out user."""
    if ds.scale is None:
        raise DatasetError(f"split 'heldout-users' keeps ratings >= 4; {ds.name} is implicit "
                           f"(use random-90-10)")
    liked = ds.ratings[ds.ratings["rating"] >= 4]
    counts = liked["user"].value_counts()
    liked = liked[liked["user"].map(counts) >= 5]
    users = np.unique(liked["user"].to_numpy(np.int64))
    n_held = min(HELDOUT_MAX, int(round(0.1 * len(users))))
    if len(users) < 3 or n_held < 1:
        raise DatasetError(f"split 'heldout-users': {ds.name} has {len(users)} users with 5 "
                           f"ratings >= 4, too few to hold out 10% twice")
    rng = np.random.default_rng([int(seed), 0x5E1D])
    order = users[rng.permutation(len(users))]
    valid_users, test_users = order[:n_held], order[n_held:2 * n_held]
    fit_users = np.sort(order[2 * n_held:])
    train = liked[liked["user"].isin(fit_users)]
    seen = train["item"].unique()

    def fold(held: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
        rows = liked[liked["user"].isin(held) & liked["item"].isin(seen)]
        return holdout_share(rows, 0.2, rng)

    valid_in, valid = fold(valid_users)
    test_in, test = fold(test_users)
    return Parts(pd.concat([train, valid_in, test_in]), test, valid, fit_users)


@protocol("inf-ae-80-10-10", seeded=True, all_relevant=True, interactions=True,
          valid_in_context=True)
def _inf_ae(ds: Dataset, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The infinite-width autoencoder's protocol (Sachdeva et al., NeurIPS 2022;
    `noveens/infinite_ae_cf`, `preprocess.py`; SVD-AE's too): every rating an interaction,
    users with fewer than 3 dropped; each user's ratings shuffled (seeded), the first drawn
    forced into test, the rest of the first int(0.8 n) train, up to int(0.9 n) validation,
    the remainder test. At test time the model reads a user's train and validation items (the
    authors' `eval_context`); neither is a candidate."""
    counts = ds.ratings["user"].map(ds.ratings["user"].value_counts())
    kept = ds.ratings[counts >= 3]
    if kept.empty:
        raise DatasetError(f"split 'inf-ae-80-10-10': no user of {ds.name} has 3 ratings")
    return inf_ae_parts(kept, np.random.default_rng([int(seed), 0x1AE]))


COLD_SHARE = 0.05  # of items (cold-items) or users (cold-users), for validation and for test
STRATUM = 20       # items per popularity stratum: one to validation, one to test


@protocol("cold-items", seeded=True, cold_items=True, reads_features=True)
def _cold_items(ds: Dataset, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Films nobody has rated yet: a seeded 10% of items, stratified by popularity, have
    every rating held out, half of them (5% of items) for validation and half for test. The
    items are ordered by their number of ratings (ties in a seeded order) and cut into strata
    of 20; each stratum gives one item to validation and one to test (a last, shorter stratum
    5% each, rounded). Models train on the other items' ratings and score a held-out item
    from its features alone; ranking is among the held-out items (`Split.cold_items`)."""
    if ds.item_features is None:
        raise DatasetError(f"split 'cold-items' scores films from their features; {ds.name} "
                           f"has no item features (genres, year)")
    counts = ds.ratings["item"].value_counts()
    items = counts.index.to_numpy(np.int64)
    rng = np.random.default_rng([int(seed), 0xC01D])
    shuffled = rng.permutation(len(items))
    order = items[shuffled][np.argsort(counts.to_numpy()[shuffled], kind="stable")]
    valid, test = [], []
    for a in range(0, len(order), STRATUM):
        block = order[a:a + STRATUM][rng.permutation(len(order[a:a + STRATUM]))]
        take = 1 if len(block) == STRATUM else int(round(COLD_SHARE * len(block)))
        valid.extend(block[:take])
        test.extend(block[take:2 * take])
    if not valid or not test:
        raise DatasetError(f"split 'cold-items': {ds.name} has {len(items)} rated items, too "
                           f"few to hold out 5% twice")
    item = ds.ratings["item"]
    in_valid, in_test = item.isin(valid), item.isin(test)
    return (ds.ratings[~in_valid & ~in_test], ds.ratings[in_valid], ds.ratings[in_test])


COLD_BUDGETS = (0, 1, 5, 10)  # ratings a held-out user gives (cold-users-N)
COLD_POOL = 10                # a held-out user's first ratings, from which the budget is read


def _cold_users(budget: int) -> Protocol:
    def split(ds: Dataset, seed: int) -> Parts:
        users = ds.ratings["user"].value_counts()
        eligible = np.sort(users.index[users > COLD_POOL].to_numpy(np.int64))
        n_held = int(round(COLD_SHARE * 2 * len(eligible)))  # 10% of them, per part
        if n_held < 1:
            raise DatasetError(f"split 'cold-users-{budget}': {ds.name} has "
                               f"{len(eligible)} users with more than {COLD_POOL} ratings, "
                               f"too few to hold out 10% twice")
        rng = np.random.default_rng([int(seed), 0xC01D05])  # one draw for every budget
        order = eligible[rng.permutation(len(eligible))]
        held = {"valid": order[:n_held], "test": order[n_held:2 * n_held]}
        fit_users = np.sort(order[2 * n_held:])
        train = ds.ratings[ds.ratings["user"].isin(fit_users)]
        seen = train["item"].unique()
        parts = {}
        for part, who in held.items():
            rows = ds.ratings[ds.ratings["user"].isin(who) & ds.ratings["item"].isin(seen)]
            rows = rows.iloc[rng.permutation(len(rows))]  # each user's ratings in a seeded order
            rank = rows.groupby("user").cumcount().to_numpy()
            parts[part] = (rows[rank < budget], rows[rank >= COLD_POOL])
        return Parts(pd.concat([train, parts["valid"][0], parts["test"][0]]),
                     parts["test"][1], parts["valid"][1], fit_users)
    split.__doc__ = (
        f"New users given {budget} rating{'s' * (budget != 1)}: 10% of the users with more "
        f"than {COLD_POOL} ratings held out for validation and 10% for test (seeded, the "
        f"same users and the same scored ratings for every budget), no model training on "
        f"them; each held-out user's ratings (of items training users rated) in a seeded "
        f"order, the first {budget} read as the user's row, the ones after the first "
        f"{COLD_POOL} scored. Their demographics are the split's user features.")
    return split


for _budget in COLD_BUDGETS:
    protocol(f"cold-users-{_budget}", seeded=True, heldout_users=True,
             reads_features=True)(_cold_users(_budget))


def inf_ae_parts(ratings: pd.DataFrame, rng: np.random.Generator
                 ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(train, validation, test) of `_inf_ae`'s rule, users of >= 3 ratings only: per user
    of n ratings a random order; its first train-position goes to test; positions
    [1, int(0.8 n)) train, [int(0.8 n), int(0.9 n)) validation, the rest test."""
    part = np.empty(len(ratings), np.int8)
    for idx in ratings.groupby("user", sort=True).indices.values():
        n = len(idx)
        order = idx[rng.permutation(n)]
        first, second = int(0.8 * n), int(0.9 * n)
        part[order[:first]] = 0
        part[order[first:second]] = 1
        part[order[second:]] = 2
        part[order[0]] = 2  # forced: every user has a test item
    return tuple(ratings[part == p] for p in range(3))


def holdout_share(ratings: pd.DataFrame, share: float,
                  rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per user, int(share * n) ratings drawn at random held out, the rest fold-in; a user
    with fewer than 5 keeps all as fold-in (Liang's `split_train_test_proportion`)."""
    held = np.zeros(len(ratings), dtype=bool)
    for idx in ratings.groupby("user", sort=True).indices.values():
        if len(idx) >= 5:
            held[rng.choice(idx, size=int(share * len(idx)), replace=False)] = True
    return ratings[~held], ratings[held]


def rating_codes(ratings: np.ndarray) -> np.ndarray:
    """Ratings as the integers a fingerprint hashes: whole stars as themselves (the
    fingerprints of ml-100k and ml-1m splits stay what they were), and a scale with half stars
    (ML-10M and later) as 1000 + twice the rating, so 3.5 and 4 never hash alike."""
    r = np.asarray(ratings, np.float64)
    whole = r.round()
    return np.where(r == whole, whole, 1000 + (2 * r).round()).astype(np.int64)


def _triples(df: pd.DataFrame) -> np.ndarray:
    arr = np.stack([df["user"].to_numpy(np.int64), df["item"].to_numpy(np.int64),
                    rating_codes(df["rating"].to_numpy(np.float64))], axis=1)
    arr = arr[np.lexsort((arr[:, 1], arr[:, 0]))]
    return np.ascontiguousarray(arr.astype("<i8"))


def fingerprint(train: pd.DataFrame, test: pd.DataFrame,
                valid: pd.DataFrame | None = None, fit_users: np.ndarray | None = None) -> str:
    """sha256 over the sorted (user, item, rating) triples of train, then of test (then of
    the protocol's validation part and the sorted ids of the users training may read, if it
    has them)."""
    h = hashlib.sha256()
    parts = ((b"train", train), (b"test", test)) + (
        () if valid is None else ((b"valid", valid),))
    for tag, df in parts:
        h.update(tag)
        h.update(_triples(df).tobytes())
    if fit_users is not None:
        h.update(b"fit_users")
        h.update(np.sort(np.asarray(fit_users, "<i8")).tobytes())
    return h.hexdigest()


def check_split(dataset: str, name: str) -> None:
    """Raise DatasetError unless protocol `name` can apply to the dataset named `dataset`,
    as far as is known before loading it (whether timestamps are complete is not)."""
    from .specs import SPECS

    if name not in PROTOCOLS:
        raise DatasetError(f"unknown split {name!r}; choose from {', '.join(PROTOCOLS)}")
    spec = SPECS.get(dataset)
    official = {p for s in SPECS.values() for p in s.official_splits}
    if name in official and (spec is None or name not in spec.official_splits):
        valid = [p for p in PROTOCOLS if p not in official or (spec and p in spec.official_splits)]
        raise DatasetError(f"split {name!r} is one of ml-100k's official files; {dataset} "
                           f"has none (for {dataset} choose from {', '.join(valid)})")


def make_split(ds: Dataset, name: str, seed: int = 0) -> Split:
    """Apply protocol `name` to `ds`. `seed` only matters for seeded protocols."""
    if name not in PROTOCOLS:
        raise DatasetError(f"unknown split {name!r}; choose from {', '.join(PROTOCOLS)}")
    parts = PROTOCOLS[name](ds, seed)
    if not isinstance(parts, Parts):
        parts = Parts(parts[0], parts[-1], parts[1] if len(parts) == 3 else None)
    train, test, valid = parts.train, parts.test, parts.valid
    scale = ds.scale
    if name in INTERACTIONS:  # interactions of value 1, an implicit split
        train, test, valid = (None if df is None else df.assign(rating=1.0)
                              for df in (train, test, valid))
        scale = None
    present = [df for df in (train, valid, test) if df is not None]
    pairs = pd.concat([df[["user", "item"]].assign(part=k) for k, df in enumerate(present)])
    shared = int(pairs.drop_duplicates().duplicated(["user", "item"]).sum())
    if shared:
        raise DatasetError(f"split {name!r} of {ds.name}: {shared} (user, item) pairs are in "
                           f"two of its parts")
    both = pd.concat(present)
    user_ids = np.unique(both["user"].to_numpy(np.int64))
    item_ids = np.unique(both["item"].to_numpy(np.int64))

    def matrix(df: pd.DataFrame) -> sp.csr_matrix:
        rows = np.searchsorted(user_ids, df["user"].to_numpy(np.int64))
        cols = np.searchsorted(item_ids, df["item"].to_numpy(np.int64))
        m = sp.csr_matrix((df["rating"].to_numpy(np.float32), (rows, cols)),
                          shape=(len(user_ids), len(item_ids)), dtype=np.float32)
        m.sort_indices()
        return m

    fit_rows = (None if parts.fit_users is None
                else np.isin(user_ids, np.asarray(parts.fit_users, np.int64)))
    fp = fingerprint(train, test, valid, parts.fit_users)
    if ds.labels.digest():  # string ids: the codes' meaning is part of the split
        fp = hashlib.sha256(fp.encode() + ds.labels.digest()).hexdigest()
    if name in READS_FEATURES:  # what a cold row is scored from is part of the split
        h = hashlib.sha256(fp.encode())
        for table in (ds.item_features, ds.user_features):
            h.update(b"none" if table is None else table.digest())
        fp = h.hexdigest()
    return Split(ds.name, name, seed if name in SEEDED else None, matrix(train), matrix(test),
                 user_ids, item_ids, fp, scale,
                 None if valid is None else matrix(valid), name in ALL_RELEVANT, fit_rows,
                 valid_in_context=name in VALID_IN_CONTEXT, cold_items=name in COLD_ITEMS,
                 item_side=(None if ds.item_features is None
                            else ds.item_features.encode(item_ids)),
                 user_side=(None if ds.user_features is None
                            else ds.user_features.encode(user_ids)))


def csr_triples(m: sp.csr_matrix, user_ids: np.ndarray, item_ids: np.ndarray) -> np.ndarray:
    """(user, item, rating) in original ids, sorted by user then item, as little-endian int64
    (the order a CSR matrix with sorted indices already has, since the id maps are sorted)."""
    m = m.tocsr()
    m.sort_indices()
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    arr = np.stack([user_ids[rows], item_ids[m.indices], rating_codes(m.data)], axis=1)
    return np.ascontiguousarray(arr.astype("<i8"))


def carve_validation(split: Split, fraction: float, seed: int) -> Split:
    """The fitting view of `split`: `train` less a uniformly drawn, seeded `fraction` of its
    ratings, which become the view's `test` (the validation set). The test file of an
    official split is untouched; the same (split, fraction, seed) gives the same carving for
    every variant. Its fingerprint covers the parent split's and the validation ratings.
    A split whose protocol supplies a validation part gives that part instead (`fraction`
    and `seed` do not apply)."""
    if split.valid is not None:
        h = hashlib.sha256(split.fingerprint.encode())
        h.update(b"protocol-valid")
        return dataclasses.replace(split, name=f"{split.name}/protocol-valid",
                                   test=split.valid, fingerprint=h.hexdigest(), valid=None)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    train = split.train.tocsr()
    n = train.nnz
    n_valid = max(1, int(round(n * fraction)))
    if n_valid >= n:
        raise DatasetError(f"{split.dataset} {split.name}: {n} training ratings cannot give a "
                           f"validation share of {fraction}")
    # a stream of its own: the carving never repeats the draw of a seeded split
    order = np.random.default_rng([int(seed), 0x7A11D]).permutation(n)
    held = np.zeros(n, dtype=bool)
    held[order[:n_valid]] = True
    rows = np.repeat(np.arange(train.shape[0]), np.diff(train.indptr))

    def part(mask: np.ndarray) -> sp.csr_matrix:
        m = sp.csr_matrix((train.data[mask], (rows[mask], train.indices[mask])),
                          shape=train.shape, dtype=np.float32)
        m.sort_indices()
        return m

    fit, valid = part(~held), part(held)
    h = hashlib.sha256(split.fingerprint.encode())
    h.update(b"valid")
    h.update(csr_triples(valid, split.user_ids, split.item_ids).tobytes())
    return dataclasses.replace(split, name=f"{split.name}/valid", seed=seed, train=fit,
                               test=valid, fingerprint=h.hexdigest(), valid=None,
                               carved=fraction)
