"""`bench site`: static pages from records that open from disk, link only to what exists, and
come out byte-identical from the same records."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aebench.bench.cli import main

pytest.importorskip("plotly", reason="the site extra is not installed")
pytest.importorskip("markdown", reason="the site extra is not installed")


def links(page: Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    return re.findall(r'(?:href|src)="([^"]+)"', text)


def broken_links(site: Path) -> list[str]:
    """Internal links and scripts of every page that name no file of the site; any link or
    script off the site (http, a CDN) counts as broken too: the site opens offline."""
    bad = []
    for page in site.rglob("*.html"):
        for target in links(page):
            if target.startswith("data:") or target.startswith("#"):
                continue
            if re.match(r"^[a-z]+:", target):
                bad.append(f"{page.relative_to(site)} -> {target}")
                continue
            if not (page.parent / target.split("#")[0]).resolve().is_file():
                bad.append(f"{page.relative_to(site)} -> {target}")
    return bad


@pytest.fixture
def small_run(tmp_path, real_data_dir):
    out = tmp_path / "run"
    assert main(["run", "-m", "ease", "bias", "popularity", "-d", "ml-100k", "--seeds", "2",
                 "--data-dir", str(real_data_dir), "--out", str(out), "-q"]) == 0
    return out


def test_a_site_of_a_run_has_its_boards_variants_and_reports(small_run, tmp_path, capsys):
    site = tmp_path / "site"
    assert main(["site", str(small_run), "--out", str(site)]) == 0
    assert "open" in capsys.readouterr().out
    boards = sorted(p.name for p in (site / "boards").iterdir())
    assert boards == ["ml-100k-u1-ranking-default.html", "ml-100k-u1-rating-default.html"]
    assert sorted(p.stem for p in (site / "variants").iterdir()) == ["bias", "ease",
                                                                     "popularity"]
    assert (site / "reports" / "run-budget.html").is_file()
    ranking = (site / "boards" / boards[0]).read_text()
    assert ranking.count("<tr><td") == 3 and "popularity</a> †" in ranking
    assert 'id="bars-ml-100k-u1-ranking-default"' in ranking
    assert broken_links(site) == []


def test_the_same_records_give_the_same_bytes(small_run, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["site", str(small_run), "--out", str(a)]) == 0
    assert main(["site", str(small_run), "--out", str(b)]) == 0
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)


def test_a_folder_that_is_not_there_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["site", str(tmp_path / "nowhere"), "--out", str(tmp_path / "s")])
    assert "no folder" in capsys.readouterr().err and not (tmp_path / "s").exists()
