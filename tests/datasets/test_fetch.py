"""Dataset resolution and downloads, against a real HTTP server on 127.0.0.1."""

import dataclasses

import pytest
from aebench.datasets import settings

from aebench import datasets
from tests.conftest import md5, write_ml100k, zip_folder


@pytest.fixture
def served_zip(tmp_path, http_server):
    root, base = http_server
    archive = zip_folder(write_ml100k(tmp_path / "src" / "ml-100k"), root / "ml-100k.zip")
    spec = dataclasses.replace(datasets.SPECS["ml-100k"], url=f"{base}/ml-100k.zip",
                               md5=md5(archive))
    return spec, archive


def test_download_verifies_and_lands_in_cache(served_zip, monkeypatch):
    monkeypatch.delenv("BENCH_DATA_DIR", raising=False)
    spec, _ = served_zip
    folder = datasets.locate(spec)
    cache = settings.cache_dir()
    assert folder == cache / "ml-100k"
    assert (cache / "ml-100k.zip").is_file()
    assert (folder / "u.data").read_text().count("\n") == 9
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no temp leftovers
    # second call is served from the cache, even with the server's file gone
    served_zip[1].unlink()
    assert datasets.locate(spec) == folder


def test_checksum_mismatch_keeps_nothing(served_zip, monkeypatch):
    monkeypatch.delenv("BENCH_DATA_DIR", raising=False)
    spec, _ = served_zip
    bad = dataclasses.replace(spec, md5="0" * 32)
    with pytest.raises(datasets.DatasetError, match="checksum mismatch .* expected 0{32}"):
        datasets.locate(bad)
    cache = settings.cache_dir()
    assert not cache.exists() or list(cache.iterdir()) == []


def test_truncated_download_is_rejected(served_zip, monkeypatch):
    monkeypatch.delenv("BENCH_DATA_DIR", raising=False)
    spec, archive = served_zip
    good_md5 = spec.md5
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(datasets.DatasetError, match="checksum mismatch"):
        datasets.locate(dataclasses.replace(spec, md5=good_md5))
    assert not (settings.cache_dir() / "ml-100k.zip").exists()


def test_unreachable_server_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("BENCH_DATA_DIR", raising=False)
    spec = dataclasses.replace(datasets.SPECS["ml-100k"], url="http://127.0.0.1:9/ml-100k.zip")
    with pytest.raises(datasets.DatasetError, match="download of http://127.0.0.1:9"):
        datasets.locate(spec)
    assert not (settings.cache_dir() / "ml-100k.zip").exists()


def test_truncated_local_zip_names_the_file(tmp_path):
    archive = zip_folder(write_ml100k(tmp_path / "src" / "ml-100k"), tmp_path / "ml-100k.zip")
    data = tmp_path / "data"
    data.mkdir()
    (data / "ml-100k.zip").write_bytes(archive.read_bytes()[:200])
    with pytest.raises(datasets.DatasetError, match=r"ml-100k.zip: not a valid zip"):
        datasets.locate(datasets.SPECS["ml-100k"], data, download=False)
    assert not (data / "ml-100k").exists()


def test_data_dir_zip_is_extracted_and_used(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    zip_folder(write_ml100k(tmp_path / "src" / "ml-100k"), data / "ml-100k.zip")
    ds = datasets.load("ml-100k", data, download=False)
    assert ds.n_ratings == 9
    assert ds.folder == data / "ml-100k"


def test_env_var_is_the_default_data_dir(fixture_dir, monkeypatch):
    monkeypatch.setenv("BENCH_DATA_DIR", str(fixture_dir))
    assert datasets.load("ml-1m", download=False).n_ratings == 6


def test_missing_data_dir_is_named(tmp_path):
    with pytest.raises(datasets.DatasetError, match="nowhere does not exist"):
        datasets.load("ml-100k", tmp_path / "nowhere")


def test_downloads_off_and_nothing_found(tmp_path, monkeypatch):
    monkeypatch.delenv("BENCH_DATA_DIR", raising=False)
    with pytest.raises(datasets.DatasetError, match="not found .* downloads are off"):
        datasets.load("ml-1m", download=False)


LARGER = {  # the later releases' layouts: (folder, {file: content})
    "ml-10m": ("ml-10M100K", {
        "ratings.dat": "1::122::5::838985046\n1::185::4.5::838983525\n2::122::0.5::868245777\n",
        "movies.dat": "122::Boomerang (1992)::Comedy|Romance\n185::Net, The (1995)::Action\n"}),
    **{name: (name, {
        "ratings.csv": "userId,movieId,rating,timestamp\n1,122,5.0,838985046\n"
                       "1,185,4.5,838983525\n2,122,0.5,868245777\n",
        "movies.csv": 'movieId,title,genres\n122,Boomerang (1992),Comedy|Romance\n'
                      '185,"Net, The (1995)",Action\n'})
       for name in ("ml-20m", "ml-25m", "ml-latest-small")},
}


@pytest.mark.parametrize("name", sorted(LARGER))
def test_the_larger_releases_download_and_load_in_their_layouts(name, tmp_path, http_server,
                                                                 monkeypatch):
    monkeypatch.delenv("BENCH_DATA_DIR", raising=False)
    root, base = http_server
    folder, files = LARGER[name]
    src = tmp_path / "src" / folder
    src.mkdir(parents=True)
    for file, text in files.items():
        (src / file).write_text(text)
    archive = zip_folder(src, root / f"{folder}.zip")
    spec = datasets.SPECS[name]
    assert spec.url.endswith(f"/{name}.zip") and spec.scale == (0.5, 5.0)
    served = dataclasses.replace(spec, url=f"{base}/{folder}.zip",
                                 md5=None if spec.md5 is None else md5(archive))
    monkeypatch.setitem(datasets.SPECS, name, served)
    ds = datasets.load(name)
    assert ds.folder == settings.cache_dir() / folder
    assert ds.ratings["rating"].tolist() == [5.0, 4.5, 0.5] and ds.scale == (0.5, 5.0)
    assert ds.items.set_index("item")["title"].to_dict() == {122: "Boomerang (1992)",
                                                             185: "Net, The (1995)"}
    split = datasets.make_split(ds, "random-75-25", seed=0)
    assert split.scale == (0.5, 5.0) and split.train.nnz + split.test.nnz == 3


def test_a_release_without_a_checksum_still_refuses_a_broken_zip(tmp_path, http_server,
                                                                monkeypatch):
    monkeypatch.delenv("BENCH_DATA_DIR", raising=False)
    root, base = http_server
    (root / "ml-latest-small.zip").write_bytes(b"PK\x03\x04 not really a zip")
    spec = dataclasses.replace(datasets.SPECS["ml-latest-small"],
                               url=f"{base}/ml-latest-small.zip")
    with pytest.raises(datasets.DatasetError, match="not a valid zip archive; nothing was kept|"
                                                    "not a valid zip archive"):
        datasets.locate(spec)
    assert not list(settings.cache_dir().glob("ml-latest-small*"))


def test_half_stars_off_their_step_or_scale_are_named(tmp_path):
    from aebench.datasets.parse import read_ratings

    path = tmp_path / "ratings.csv"
    path.write_text("userId,movieId,rating,timestamp\n1,2,4.5,1\n1,3,4.25,2\n")
    with pytest.raises(datasets.DatasetError, match=r"ratings.csv:3: rating '4.25' is not a "
                                                    "multiple of 0.5"):
        read_ratings(path, ",", header=True, scale=(0.5, 5.0))
    path.write_text("userId,movieId,rating,timestamp\n1,2,0,1\n")
    with pytest.raises(datasets.DatasetError, match=r"ratings.csv:2: rating 0 outside 0.5..5"):
        read_ratings(path, ",", header=True, scale=(0.5, 5.0))
