import pandas as pd
import pytest
from aebench.datasets.parse import read_items, read_ratings

from aebench import datasets


def test_ml100k_fixture_loads(fixture_dir):
    ds = datasets.load("ml-100k", fixture_dir, download=False)
    assert ds.n_ratings == 9
    assert ds.ratings["timestamp"].notna().all()
    assert ds.ratings.dtypes["rating"] == "float32"
    row = ds.items.set_index("item").loc[4]
    assert row.title == "Cin\xe9ma Paradiso (1988)"
    assert row.genres == "Action|Comedy"


def test_ml1m_missing_timestamp_is_stored_as_missing(fixture_dir):
    ds = datasets.load("ml-1m", fixture_dir, download=False)
    assert ds.n_ratings == 6
    assert ds.ratings["timestamp"].isna().sum() == 2
    assert list(ds.ratings["user"]) == [1, 1, 2, 2, 3, 3]
    assert ds.items.set_index("item").loc[30].title == "Caf\xe9 Society (1995)"


def write(tmp_path, text, name="ratings.dat"):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("text, sep, message", [
    ("1\t2\t5\t0\n", "::", r"ratings.dat:1: tab found"),
    ("1::2::5::0\n", "\t", r"ratings.dat:1: .*not an integer"),
    ("1::2::5::0\n3::4::7::0\n", "::", r"ratings.dat:2: rating 7.* outside 1..5"),
    ("1::2::5::0\n3::4::0::0\n", "::", r"ratings.dat:2: rating 0"),
    ("1::2::5::0\n1::3::4::0\n1::2::3::0\n", "::",
     r"ratings.dat:3: duplicate rating for user 1, item 2"),
    ("1::2::5::0\nx::3::4::0\n", "::", r"ratings.dat:2: user 'x' is not an integer"),
    ("1::2::4.5::0\n", "::", r"ratings.dat:1: rating '4.5' is not an integer"),
    ("1::2::5::0\n1::3::4::abc\n", "::", r"ratings.dat:2: timestamp 'abc'"),
])
def test_bad_rating_files_name_file_and_line(tmp_path, text, sep, message):
    with pytest.raises(datasets.DatasetError, match=message):
        read_ratings(write(tmp_path, text), sep)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(datasets.DatasetError, match="nope.dat: file not found"):
        read_ratings(tmp_path / "nope.dat", "::")


def test_item_file_error_names_line(tmp_path):
    p = tmp_path / "movies.dat"
    p.write_text("1::A (1990)::Drama\nfoo\n")
    with pytest.raises(datasets.DatasetError, match="movies.dat:2"):
        read_items(p, "::")


def test_timestamps_kept_when_present(tmp_path):
    df = read_ratings(write(tmp_path, "1::2::5::978300760\n2::2::3::\n"), "::")
    assert df["timestamp"].iloc[0] == 978300760
    assert df["timestamp"].iloc[1] is pd.NA
