"""Users' own rating files: every malformed line named by file:line and rule, the duplicate
rule, implicit datasets, named and positional columns, items files with titles, and a run on
`-d PATH.csv` through the same protocols, carving and records as MovieLens."""

import numpy as np
import pytest
from aebench.bench.cli import main
from aebench.bench.runs import records
from aebench.datasets.user import FileSpec, read_file

from aebench import datasets


def ratings_csv(path, n_users=40, n_items=25, header="user,item,rating,timestamp", seed=0):
    """A small dense-ish rating file in the `-d PATH.csv` layout."""
    rng = np.random.default_rng(seed)
    lines = [header] if header else []
    for u in range(1, n_users + 1):
        for i in rng.choice(np.arange(1, n_items + 1), size=12, replace=False):
            lines.append(f"{u},{i},{rng.integers(1, 6)},{880000000 + u * 100 + int(i)}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(autouse=True)
def no_leftover_files(monkeypatch):
    monkeypatch.setattr(datasets.dataset, "FILES", {})


@pytest.mark.parametrize("content, message", [
    ("user,item,rating\n1,1,4\n1,2\n", "f.csv:3: missing column 'rating' (2 fields"),
    ("user,item,rating\n1,1,4\nu2,2,5\n", "f.csv:3: user 'u2' is not an integer id"),
    ("user,item,rating\n1,1,4\n2,x,5\n", "f.csv:3: item 'x' is not an integer id"),
    ("user,item,rating\n1,1,four\n", "f.csv:2: rating 'four' is not a number"),
    ("user,item,rating\n1,1,4\n1,2,6\n", "f.csv:3: rating 6 off the scale 1..5"),
    ("user,item,rating\n1,1,4\n2,1,3\n1,1,5\n",
     "f.csv:4: duplicate (user 1, item 1), first at line 2"),
    ("user,item,rating,timestamp\n1,1,4,noon\n", "f.csv:2: timestamp 'noon' is not an integer"),
    ("customer,item,rating\n1,1,4\n", "f.csv:1: no column 'user' (the user column); its "
                                      "header: customer, item, rating"),
    ("user,item,rating\n", "f.csv: no ratings"),
])
def test_every_malformed_line_is_named_with_its_rule(tmp_path, content, message):
    path = tmp_path / "f.csv"
    path.write_text(content)
    with pytest.raises(datasets.DatasetError) as exc:
        datasets.load(str(path))
    assert message in str(exc.value)


def test_duplicates_last_keeps_the_later_line(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("user,item,rating\n1,1,4\n2,1,3\n1,1,2\n")
    ratings, _, _ = read_file(FileSpec("d", str(path), duplicates="last"))
    assert ratings[["user", "item", "rating"]].values.tolist() == [[2, 1, 3], [1, 1, 2]]


def test_positional_columns_without_header_and_a_half_star_scale(tmp_path):
    path = tmp_path / "r.tsv"
    path.write_text("9\t1\t7\t3.5\n9\t2\t8\t0.5\n")  # ts, user, item, rating
    spec = FileSpec("r", str(path), delimiter="\t", header=False, user=1, item=2, rating=3,
                    timestamp=0, scale=(0.5, 5.0))
    ratings, _, _ = read_file(spec)
    assert ratings["rating"].tolist() == [3.5, 0.5]
    assert ratings["timestamp"].tolist() == [9, 9]
    with pytest.raises(datasets.DatasetError, match="names a column, but the file has no header"):
        read_file(FileSpec("r", str(path), header=False))


def test_an_implicit_file_reads_interactions_and_titles(tmp_path):
    path = tmp_path / "clicks.csv"
    path.write_text("who,what\n1,10\n1,11\n2,10\n")
    items = tmp_path / "items.csv"
    items.write_text('id,name\n10,"Widget, large"\n11,Gadget\n')
    spec = FileSpec("clicks", str(path), user="who", item="what", scale="implicit",
                    items=str(items), items_item="id", items_title="name")
    datasets.register_file(spec)
    ds = datasets.load("clicks")
    assert ds.implicit and ds.ratings["rating"].tolist() == [1.0, 1.0, 1.0]
    assert ds.items.set_index("item")["title"].to_dict() == {10: "Widget, large", 11: "Gadget"}
    split = datasets.make_split(ds, "random-90-10", seed=0)
    assert split.scale is None


def test_a_run_on_a_csv_path_uses_the_same_protocols_and_records(tmp_path, capsys):
    path = ratings_csv(tmp_path / "mine.csv")
    out = tmp_path / "run"
    assert main(["run", "-m", "ease", "mf", "-d", str(path), "--seeds", "2", "--epochs", "3",
                 "--out", str(out)]) == 0
    recs = records.load(out)
    assert {(r["model"], r["seed"]) for r in recs} == {("ease", 0), ("ease", 1), ("mf", 0),
                                                      ("mf", 1)}
    assert all(r["status"] == "ok" and r["dataset"] == "mine" for r in recs)  # its stem
    for seed in (0, 1):  # every variant saw the identical split and carving
        same = [r for r in recs if r["seed"] == seed]
        assert len({r["split"]["fingerprint"] for r in same}) == 1
        assert len({r["validation"]["fingerprint"] for r in same}) == 1
    assert recs[0]["split"]["name"] == "random-90-10"
    assert "rmse" in next(r for r in recs if r["model"] == "mf")["metrics"]


def test_rating_models_are_skipped_on_an_implicit_dataset(tmp_path, capsys):
    path = ratings_csv(tmp_path / "clicks.csv")
    datasets.register_file(FileSpec("clicks", str(path), scale="implicit"))
    out = tmp_path / "run"
    assert main(["run", "-m", "ease", "mf", "-d", "clicks", "--epochs", "2",
                 "--out", str(out)]) == 0
    assert "skipped: mf learns from ratings; clicks is implicit" in capsys.readouterr().out
    (rec,) = records.load(out)
    assert rec["model"] == "ease" and rec["metrics"]["ndcg@10"] > 0


def test_a_missing_file_is_named_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "-m", "ease", "-d", str(tmp_path / "nope.csv"), "--out",
              str(tmp_path / "run")])
    assert exc.value.code == 2
    assert "nope.csv: file not found" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_half_star_ratings_hash_apart_from_whole_ones():
    from aebench.datasets.splits import rating_codes

    assert rating_codes(np.array([1.0, 4.0, 3.5, 0.5])).tolist() == [1, 4, 1007, 1001]


def test_predictions_clamp_to_the_datasets_own_scale():
    import scipy.sparse as sp
    from aebench.bench.evaluation.evaluate import rating_errors

    target = sp.csr_matrix(np.array([[0.5, 5.0]], dtype=np.float32))
    pred = np.array([0.0, 6.0])
    assert rating_errors(pred, target, (0.5, 5.0))["rmse"] == 0.0
    # on MovieLens' 1-5 scale, 0 clamps to 1: an error of 0.5 on one of two ratings
    assert rating_errors(pred, target)["rmse"] == pytest.approx(np.sqrt(0.125))
