"""The scaling page: slopes worked by hand, and the page of a real (small) grid."""

import pytest
from aebench.bench.cli import main
from aebench.bench.reports import report, scaling
from aebench.bench.runs import records


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


def test_a_figure_from_another_machine_is_marked_and_left_out_of_the_slope(tmp_path):
    """Sessions do not always get the same machine: the page names each shape's machine,
    marks a figure from a machine other than the table's main one, and fits a slope to the
    points of one machine only."""
    import json

    out = tmp_path / "scaling"
    shapes = ("synthetic-200x300", "synthetic-400x300", "synthetic-800x300")
    for shape in shapes:
        assert main(["run", "-m", "popularity", "-d", shape, "--threads", "1",
                     "--out", str(out), "-q"]) == 0
    path = out / "runs.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    for rec in lines:
        rec["env"]["cpu"] = rec["env"]["device_name"] = (
            "Other CPU" if rec["dataset"] == "synthetic-800x300" else "Main CPU")
    path.write_text("".join(json.dumps(rec) + "\n" for rec in lines))
    text = scaling.write(out, shapes, shapes)[0].read_text()
    machines = {line.split(" | ")[0][2:]: line.split(" | ")[-1].rstrip(" |")
                for line in text.splitlines() if line.startswith("| synthetic-")}
    assert machines == {"synthetic-200x300": "Main CPU", "synthetic-400x300": "Main CPU",
                        "synthetic-800x300": "Other CPU"}
    assert "Most cells ran on Main CPU; a figure marked † ran on Other CPU" in text
    evaluation = text.split("## test evaluation")[1]
    row = next(line for line in evaluation.splitlines() if line.startswith("| popularity"))
    assert "†" in row.split("|")[4]  # the 800-user figure
    # the slope of the two Main CPU points, not of all three
    recs = {r.dataset: r for r in report.ok(records.read(path))}
    want = scaling.slope([(recs[s].split.n_users, scaling.measures(recs[s])["eval_s"])
                          for s in shapes[:2]])
    assert row.rstrip(" |").endswith(f"{want:.2f}")
