"""`load-test` against a real service: bounded, stops by itself, counts every answer."""

from __future__ import annotations

import json

from aebench.bench.cli import main


def test_levels_of_each_kind_and_a_soak(base_url, tmp_path, capsys):
    out = tmp_path / "load.json"
    assert main(["load-test", base_url, "--models", "ease", "mf", "--clients", "1", "4",
                 "--requests", "40", "--soak-s", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    levels = [(x["model"], x["kind"], x["clients"]) for x in result["levels"]]
    # MF cannot fold a new user in: it is measured on known users only
    assert levels == [("ease", "known", 1), ("ease", "known", 4), ("ease", "fold-in", 1),
                      ("ease", "fold-in", 4), ("mf", "known", 1), ("mf", "known", 4)]
    for x in result["levels"]:
        assert x["requests"] == 40 and x["errors"] == 0 and x["p99_ms"] >= x["p50_ms"] > 0
    soak = result["soak"]
    assert soak["requests"] > 0 and soak["samples"] and soak["rss_first_mb"] > 100
    page = out.with_suffix(".md").read_text()
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in page.splitlines()
            if line.startswith("| ease")]
    assert [r[:5] for r in rows] == [["ease", kind, n, "40", "0"] for kind in ("known", "fold-in")
                                     for n in ("1", "4")]
    assert "Soak:" in page
    assert "requests/s" in capsys.readouterr().out


def test_a_model_the_service_does_not_serve_is_named(base_url):
    try:
        main(["load-test", base_url, "--models", "vae", "--requests", "1"])
    except SystemExit as exc:
        assert "does not serve vae; it serves" in str(exc.code)
    else:
        raise AssertionError("load-test of an unserved model did not fail")
