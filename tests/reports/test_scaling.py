"""The scaling page: slopes worked by hand, and the page of a real (small) grid."""

import pytest
from aebench.bench.cli import main
from aebench.bench.reports import scaling


def test_slopes_by_hand():
    assert scaling.slope([(1, 3.0), (2, 6.0), (4, 12.0)]) == pytest.approx(1.0)
    assert scaling.slope([(10, 1.0), (20, 4.0)]) == pytest.approx(2.0)
    assert scaling.slope([(10, 5.0), (20, 5.0)]) == pytest.approx(0.0)
    assert scaling.slope([(10, 5.0)]) is None
    assert scaling.slope([(10, 5.0), (20, None)]) is None


def test_the_page_of_a_grid(tmp_path):
    out = tmp_path / "scaling"
    for shape in ("synthetic-200x300", "synthetic-800x300"):
        assert main(["run", "-m", "popularity", "ease", "mult-vae", "-d", shape,
                     "--epochs", "2", "--threads", "1", "--out", str(out), "-q"]) == 0
    written = scaling.write(out, ("synthetic-200x300", "synthetic-800x300"),
                            ("synthetic-200x300", "synthetic-800x300"))
    text = written[0].read_text()
    assert written[1].is_file()
    assert "| synthetic-200x300 | 200 | " in text and "| synthetic-800x300 | 800 | 300 |" in text
    for model in ("popularity", "ease", "mult-vae"):
        assert f"| {model} " in text
    assert "## Against the floor" in text and "achieved GFLOP/s" in text
    assert text.count("slope in users") == 3
