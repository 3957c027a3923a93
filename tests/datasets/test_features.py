"""Side information: the MovieLens users and items files read into typed tables, checked
against their first lines worked by hand, and the encoding a model reads."""

import math

import numpy as np
import pytest
from aebench.datasets.features import Column, FeatureTable, item_table, read_users, year_of

from aebench import datasets
from tests.conftest import write_ml1m, write_ml100k


def test_ml100k_users_file_first_lines(tmp_path):
    """u.user `1|24|M|technician|85711`: age 24 (numeric), gender M, occupation technician,
    zip region 8; `4|24|M|technician|T8H1N` (a Canadian code) has region T."""
    t = read_users(write_ml100k(tmp_path / "ml-100k") / "u.user", "ml-100k")
    assert list(t.ids) == [1, 2, 3, 4]
    cols = {c.name: c for c in t.columns}
    assert cols["age"].kind == "numeric" and cols["age"].values[:2] == (24.0, 53.0)
    assert cols["gender"].values == ("M", "F", "M", "M")
    assert cols["occupation"].values[0] == "technician"
    assert cols["zip"].values == ("8", "9", "3", "T")
    enc = t.encode(np.array([2, 1]))
    names = t.names()
    # ages 24, 53, 23, 24: mean 31, population sd sqrt(((7^2) + 22^2 + 8^2 + 7^2) / 4)
    sd = math.sqrt((49 + 484 + 64 + 49) / 4)
    assert enc[1, names.index("age")] == pytest.approx((24 - 31) / sd)
    assert enc[0, names.index("gender=F")] == 1 and enc[0, names.index("gender=M")] == 0
    assert enc[1, names.index("zip=8")] == 1 and enc[1, names.index("occupation=other")] == 0


def test_ml1m_users_file_first_lines(tmp_path):
    """users.dat `1::F::1::10::48067`: gender F, age group 1 (under 18, a category),
    occupation 10, zip region 4."""
    t = read_users(write_ml1m(tmp_path / "ml-1m") / "users.dat", "ml-1m")
    cols = {c.name: c for c in t.columns}
    assert [c.kind for c in t.columns] == ["categorical"] * 4
    assert (cols["gender"].values[0], cols["age"].values[0], cols["occupation"].values[0],
            cols["zip"].values[0]) == ("F", "1", "10", "4")
    assert t.names()[:2] == ["gender=F", "gender=M"]
    assert "age=56" in t.names() and "occupation=16" in t.names()


def test_items_genres_and_year_from_the_real_first_lines(tmp_path):
    """movies.dat `10::Heat (1995)::Action|Crime|Thriller`: three genres, year 1995; u.item
    flags read through u.genre (`unknown` is no genre)."""
    ds = datasets.load("ml-1m", write_ml1m(tmp_path / "ml-1m").parent, download=False)
    t = ds.item_features
    enc = t.encode(np.array([10, 30, 999]))
    names = t.names()
    for g in ("Action", "Crime", "Thriller"):
        assert enc[0, names.index(f"genre={g}")] == 1
    assert enc[0, names.index("genre=Drama")] == 0 and enc[1, names.index("genre=Drama")] == 1
    assert not enc[2].any()  # an id the table lacks reads zeros
    assert year_of("Toy Story (1995)") == 1995 and math.isnan(year_of("unknown"))
    ds100 = datasets.load("ml-100k", write_ml100k(tmp_path / "ml-100k").parent, download=False)
    names = ds100.item_features.names()
    assert "genre=unknown" not in names and {"genre=Action", "genre=Comedy"} <= set(names)
    assert ds100.user_features is not None and ds.user_features is not None


def test_a_malformed_users_line_names_file_and_line(tmp_path):
    f = tmp_path / "u.user"
    f.write_text("1|24|M|technician|85711\n2|fifty|F|other|94043\n")
    with pytest.raises(datasets.DatasetError, match=r"u\.user:2: age 'fifty' is not a number"):
        read_users(f, "ml-100k")
    f.write_text("1::F::1::10::48067\n2::M::56\n")
    with pytest.raises(datasets.DatasetError, match=r"u\.user:2: expected 5 fields"):
        read_users(f, "ml-1m")
    f.write_text("1|24|M|technician|85711\n1|25|F|other|94043\n")
    with pytest.raises(datasets.DatasetError, match="user 1 is listed twice"):
        read_users(f, "ml-100k")


def test_a_missing_year_gets_an_indicator_and_no_feature_data_gives_no_table():
    import pandas as pd

    items = pd.DataFrame({"item": [1, 2], "title": ["A (2000)", "B"], "genres": ["", ""]})
    t = item_table(items, "x")
    assert t.names() == ["year", "year?missing"]
    assert t.encode(np.array([1, 2])).tolist() == [[0.0, 0.0], [0.0, 1.0]]
    none = pd.DataFrame({"item": [1], "title": ["Synthetic item 1"], "genres": [""]})
    assert item_table(none, "x") is None
    with pytest.raises(ValueError, match="sorted and unique"):
        FeatureTable("item", np.array([2, 1]), (Column("g", "categorical", ("a", "b")),), "x")


@pytest.mark.realdata
def test_real_movielens_features(ml100k, ml1m):
    for ds, n_users, user_width in ((ml100k, 943, 43), (ml1m, 6040, 40)):
        assert len(ds.user_features.ids) == n_users
        assert ds.user_features.encode(ds.user_features.ids).shape[1] == user_width
        assert {c.name for c in ds.item_features.columns} == {"genre", "year"}


def shop(tmp_path, users_text=None, items_text=None):
    """A user's dataset with string ids, an items file with tags and a price, a users file
    with a region and an age."""
    (tmp_path / "r.csv").write_text(
        "customer,product,stars\nu1,p1,5\nu1,p2,3\nu2,p2,4\nu2,p3,1\nu3,p1,2\n")
    (tmp_path / "items.csv").write_text(items_text or (
        "product,name,tags,brand,price\np1,One,a|b,x,9.5\np2,Two,b,y,\np3,Three,,x,20\n"
        "p9,Unrated,a,z,1\n"))
    (tmp_path / "users.tsv").write_text(users_text or (
        "id\tregion\tage\nu1\tnorth\t30\nu2\tsouth\t41\nu3\tnorth\t\n"))
    (tmp_path / "exp.toml").write_text(
        'datasets = ["shop"]\n[dataset.shop]\npath = "r.csv"\nuser = "customer"\n'
        'item = "product"\nrating = "stars"\nitems = "items.csv"\nitems_item = "product"\n'
        'items_title = "name"\nitems_genres = "tags"\nitems_categorical = ["brand"]\n'
        'items_numeric = ["price"]\nusers = "users.tsv"\nusers_delimiter = "\\t"\n'
        'users_user = "id"\nusers_categorical = ["region"]\nusers_numeric = ["age"]\n')
    from aebench.bench.cli import parser
    from aebench.bench.runs import experiment

    exp = experiment.load(tmp_path / "exp.toml", parser()[1]["run"])
    (spec,) = exp.datasets
    datasets.register_file(spec)
    return datasets.load("shop")


def test_a_users_dataset_declares_its_side_information(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.dataset, "FILES", {})
    ds = shop(tmp_path)
    items, users = ds.item_features, ds.user_features
    # string ids coded in sorted order: p1 -> 1, p2 -> 2, p3 -> 3 (p9 is rated by no one)
    assert list(items.ids) == [1, 2, 3] and list(users.ids) == [1, 2, 3]
    assert [(c.name, c.kind) for c in items.columns] == [
        ("tags", "multi-hot"), ("brand", "categorical"), ("price", "numeric")]
    assert items.columns[0].values == (("a", "b"), ("b",), ())
    assert np.isnan(items.columns[2].values[1])
    assert "price?missing" in items.names()
    assert users.columns[0].values == ("north", "south", "north")
    enc = items.encode(np.array([1, 3]))
    assert enc[:, items.names().index("tags=a")].tolist() == [1.0, 0.0]


@pytest.mark.parametrize("users_text, items_text, message", [
    ("id\tregion\tage\nu1\tnorth\tthirty\n", None, r"users\.tsv:2: age 'thirty' is not a "
                                                   r"number"),
    ("id\tregion\nu1\tnorth\n", None, r"users\.tsv:1: no column 'age'"),
    (None, "product,name,tags,brand,price\np1,One,a,x,9\np1,Uno,b,x,9\n",
     "items.csv: item 1 is listed twice"),
])
def test_a_bad_side_information_file_is_named_with_file_and_line(tmp_path, monkeypatch,
                                                                 users_text, items_text,
                                                                 message):
    monkeypatch.setattr(datasets.dataset, "FILES", {})
    with pytest.raises(datasets.DatasetError, match=message):
        shop(tmp_path, users_text, items_text)


def test_a_new_entity_encodes_as_the_table_encodes_its_rows():
    """A visitor with the values of the table's row 2 encodes as row 2 does; a column left
    out is unknown (its ?missing indicator, or zeros); unknown names and values are named."""
    table = FeatureTable("user", np.array([1, 2, 3]), (
        Column("g", "categorical", ("a", "b", "a")),
        Column("age", "numeric", (20.0, 40.0, float("nan"))),
        Column("tags", "multi-hot", (("x",), ("x", "y"), ()))), "hand")
    row = table.encode(np.array([2]))
    got = table.encode_values({"g": "b", "age": 40, "tags": ["x", "y"]})
    assert np.allclose(got, row)
    # by hand: g=a g=b | age z-score over 20, 40 (mean 30, sd 10), age?missing | x y
    assert np.allclose(got, [[0, 1, 1, 0, 1, 1]])
    assert np.allclose(table.encode_values({}), [[0, 0, 0, 1, 0, 0]])
    with pytest.raises(ValueError, match="g: 'c' is not one of a, b"):
        table.encode_values({"g": "c"})
    with pytest.raises(ValueError, match="height: not a user feature of hand"):
        table.encode_values({"height": 1})
    with pytest.raises(ValueError, match="age: 'old' is not a number"):
        table.encode_values({"age": "old"})
