"""The published results site (results/site) is what `bench site` writes from the published
records, and works in a real browser, from a local HTTP server and from disk."""

from __future__ import annotations

import functools
import http.server
import threading

import pytest
from aebench.bench.cli import main

from tests.conftest import ROOT
from tests.reports.test_site import broken_links

SITE = ROOT / "results" / "site"
REGENERATE = "regenerate with `python -m bench site` (the published folders, into results/site)"
pytest.importorskip("plotly", reason="the site extra is not installed")


def test_the_published_site_is_its_records(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the default folders are the published ones, relative
    out = tmp_path / "site"
    assert main(["site", "--out", str(out)]) == 0
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == sorted(str(p.relative_to(SITE)) for p in SITE.rglob("*") if p.is_file()), \
        REGENERATE
    bundle = "assets/plotly.min.js"  # Plotly's own file: the installed version's bytes
    for f in files:
        if f != bundle:
            assert (out / f).read_bytes() == (SITE / f).read_bytes(), f"{f}: {REGENERATE}"
    size = sum((SITE / f).stat().st_size for f in files)
    assert size <= 20 * 2**20
    assert broken_links(SITE) == []


@pytest.fixture(scope="module")
def served_site():
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(SITE))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def severe(browser) -> list:
    return [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def test_every_page_opens_without_a_console_error(browser, served_site):
    """Each page from the HTTP server, and the index and a board from disk; every plot of a
    page is drawn (Plotly's svg)."""
    from selenium.webdriver.common.by import By

    pages = sorted(SITE.rglob("*.html"))
    assert len(pages) > 40
    for page in pages:
        browser.get(f"{served_site}/{page.relative_to(SITE)}")
        plots = browser.find_elements(By.CSS_SELECTOR, "div.plot")
        drawn = browser.find_elements(By.CSS_SELECTOR, "div.plot svg.main-svg")
        assert len(drawn) >= len(plots), page
        assert severe(browser) == [], page
    for page in (SITE / "index.html", SITE / "boards" / "ml-1m-random-90-10-ranking-default.html"):
        browser.get(page.as_uri())
        assert browser.find_elements(By.CSS_SELECTOR, "table")
        assert severe(browser) == [], page


def test_a_board_sorts_by_a_clicked_column_and_filters_rows(browser, served_site):
    from selenium.webdriver.common.by import By

    browser.get(f"{served_site}/boards/ml-1m-random-90-10-ranking-default.html")

    def column(i):
        return [r.find_elements(By.TAG_NAME, "td")[i].text
                for r in browser.find_elements(By.CSS_SELECTOR, "table.sortable tbody tr")
                if r.is_displayed()]

    variants = column(1)
    heads = browser.find_elements(By.CSS_SELECTOR, "table.sortable th")
    heads[1].click()  # by variant, a to z
    assert column(1) == sorted(variants, key=str.lower)
    heads[10].click()  # by fit seconds, fastest first
    seconds = [float(s) for s in column(10) if s != "—"]
    assert seconds == sorted(seconds) and column(1) != sorted(variants, key=str.lower)
    heads[10].click()
    assert [float(s) for s in column(10) if s != "—"] == sorted(seconds, reverse=True)
    box = browser.find_element(By.CSS_SELECTOR, "input.filter")
    box.send_keys("ease")
    assert sorted(column(1)) == sorted(v for v in variants if "ease" in v)
    assert severe(browser) == []
