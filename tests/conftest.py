"""Shared fixtures: small GroupLens-format datasets, zips of them, a local HTTP server."""

from __future__ import annotations

import hashlib
import http.server
import os
import shutil
import threading
import zipfile
from pathlib import Path

import pytest

from aebench import datasets

ROOT = Path(__file__).resolve().parent.parent

# ml-100k layout: u.data (tab), u.item (|, latin-1), u.genre, u1.base/u1.test
UDATA = [(1, 1, 5, 874965758), (1, 2, 3, 876893171), (1, 3, 4, 878542960),
         (2, 1, 4, 888551193), (2, 3, 2, 888551207), (3, 2, 1, 889237004),
         (3, 4, 5, 889237269), (4, 1, 3, 892003888), (4, 4, 4, 892003912)]
GENRES = ["unknown", "Action", "Comedy"]
UITEM = ["1|Toy Story (1995)|01-Jan-1995||http://x|0|0|1",
         "2|GoldenEye (1995)|01-Jan-1995||http://x|0|1|0",
         "3|Four Rooms (1995)|01-Jan-1995||http://x|0|0|0",
         "4|Cin\xe9ma Paradiso (1988)|01-Jan-1988||http://x|0|1|1"]
UUSER = ["1|24|M|technician|85711", "2|53|F|other|94043", "3|23|M|writer|32067",
         "4|24|M|technician|T8H1N"]
# ml-1m layout: ratings.dat (::, timestamps may be empty), movies.dat (latin-1)
RATINGS_DAT = ["1::10::5::978300760", "1::20::3::978302109", "2::10::4::", "2::30::2::978298709",
               "3::20::1::978297000", "3::30::5::"]
USERS_DAT = ["1::F::1::10::48067", "2::M::56::16::70072", "3::M::25::15::55117"]
MOVIES_DAT = ["10::Heat (1995)::Action|Crime|Thriller", "20::Sabrina (1995)::Comedy|Romance",
              "30::Caf\xe9 Society (1995)::Drama"]


def record(folder: Path | None = None, **fields):
    """A hand-built `records.Record` for report tests: the fields a test names, the rest the
    plainest values a real record could hold (a split of that name, fp32, the default
    recipe). `folder` is where its per-user file lies."""
    from aebench.bench.runs.records import Record

    split = fields.pop("split", {"name": "s"})
    data = {"model": "m", "dataset": "d", "mode": "batched", "device": "cpu", "seed": 0,
            "status": "ok", "started": "", **fields}
    if split is not None:
        data["split"] = {"dataset": data["dataset"], "seed": data["seed"], "fingerprint": "f",
                         "n_users": 0, "n_items": 0, "n_train": 0, "n_test": 0, **split}
    return Record.from_json(data, folder=folder)


def write_ml100k(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["\t".join(map(str, r)) for r in UDATA]
    (folder / "u.data").write_text("\n".join(lines) + "\n")
    (folder / "u1.base").write_text("\n".join(lines[::2]) + "\n")
    (folder / "u1.test").write_text("\n".join(lines[1::2]) + "\n")
    (folder / "u.genre").write_text("".join(f"{g}|{i}\n" for i, g in enumerate(GENRES)) + "\n")
    (folder / "u.item").write_bytes(("\n".join(UITEM) + "\n").encode("latin-1"))
    (folder / "u.user").write_text("\n".join(UUSER) + "\n")
    return folder


def write_ml1m(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.dat").write_text("\n".join(RATINGS_DAT) + "\n")
    (folder / "movies.dat").write_bytes(("\n".join(MOVIES_DAT) + "\n").encode("latin-1"))
    (folder / "users.dat").write_text("\n".join(USERS_DAT) + "\n")
    return folder


def zip_folder(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(folder.iterdir()):
            zf.write(f, f"{folder.name}/{f.name}")
    return archive


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def fixture_dir(tmp_path) -> Path:
    """A data dir holding small ml-100k/ and ml-1m/ folders in GroupLens formats."""
    write_ml100k(tmp_path / "data" / "ml-100k")
    write_ml1m(tmp_path / "data" / "ml-1m")
    return tmp_path / "data"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """No test reads or writes the user's real cache."""
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(autouse=True)
def _isolated_files(monkeypatch):
    """Users' datasets registered by one test (`-d PATH` registers its file by its stem) are
    not seen by the next."""
    monkeypatch.setattr(datasets.dataset, "FILES", {})


@pytest.fixture
def http_server(tmp_path):
    """A real HTTP server on 127.0.0.1 serving files from a folder; yields (folder, base URL)."""
    root = tmp_path / "www"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


REAL_DATA = Path(os.environ.get("BENCH_DATA_DIR", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    if not (REAL_DATA / "ml-100k" / "u.data").is_file():
        pytest.skip(f"real MovieLens data not found in {REAL_DATA} (set BENCH_DATA_DIR)")
    return REAL_DATA


@pytest.fixture(scope="session")
def ml100k(real_data_dir):
    return datasets.load("ml-100k", real_data_dir, download=False)


@pytest.fixture(scope="session")
def ml1m(real_data_dir):
    return datasets.load("ml-1m", real_data_dir, download=False)


# folders and files whose tests form a set one can select or leave out (`-m "not ray"`)
MARKED = {"published": "published", "test_ray.py": "ray", "test_ray_cluster.py": "ray",
          "test_cuda.py": "cuda",
          "test_realdata.py": "realdata"}


def pytest_collection_modifyitems(items):
    """Mark each test by where it lives (tests/ mirrors the packages; see MARKED)."""
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        for part in parts:
            if part in MARKED:
                item.add_marker(getattr(pytest.mark, MARKED[part]))


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser():
    """Headless Debian Chromium driven by Selenium through Debian's chromedriver (nothing is
    downloaded); skipped where either is absent, unless AEBENCH_BROWSER_REQUIRED=1 (CI
    installs them, so there it fails instead). Its console log is kept (`get_log`)."""
    webdriver = pytest.importorskip("selenium.webdriver",
                                    reason="selenium is not installed (the dev extra)")
    from selenium.webdriver.chrome.service import Service

    if not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("AEBENCH_BROWSER_REQUIRED") == "1":
            pytest.fail("AEBENCH_BROWSER_REQUIRED=1, but chromium or chromedriver is not on "
                        "PATH")
        pytest.skip("Debian's chromium and chromium-driver are not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1300,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
