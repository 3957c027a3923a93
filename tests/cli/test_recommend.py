"""`python -m bench recommend`: reuse or train a model, map ids to titles, skip rated movies."""

import pytest
from aebench.bench.cli import main


def test_trains_when_no_model_exists_then_reuses_it(tmp_path, fixture_dir, capsys):
    runs = tmp_path / "runs"
    argv = ["recommend", "--model", "sae-20-10-20", "--dataset", "ml-1m", "--user", "1",
            "-k", "5", "--data-dir", str(fixture_dir), "--runs", str(runs)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "no saved sae-20-10-20 model for ml-1m" in out
    # user 1 rated movies 10 and 20: the only unrated one is 30, by its original id and title
    assert "Caf\xe9 Society (1995)" in out and "| Drama" in out
    assert "Heat (1995)" not in out and "Sabrina" not in out
    assert main(argv) == 0
    assert "using the saved model" in capsys.readouterr().out


def test_weights_of_another_layout_name_the_file(tmp_path, fixture_dir, capsys):
    """A checkpoint whose tensors no longer fit the model (an older layout) is refused by
    name, with the way out, instead of a bare size-mismatch traceback."""
    import torch

    runs = tmp_path / "runs"
    argv = ["recommend", "--model", "sae-20-10-20", "--dataset", "ml-1m", "--user", "1",
            "--data-dir", str(fixture_dir), "--runs", str(runs)]
    assert main(argv) == 0
    (path,) = runs.glob("**/weights/*.pt")
    ckpt = torch.load(path, weights_only=False)
    ckpt["state_dict"]["layers.0.weight"] = ckpt["state_dict"]["layers.0.weight"].t()
    torch.save(ckpt, path)
    with pytest.raises(SystemExit, match=rf"{path.name}: the saved weights do not fit "
                                         r"sae-20-10-20 .*rerun with --retrain"):
        main(argv)


def test_unknown_user_is_named(tmp_path, fixture_dir, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["recommend", "--model", "sae-20-10-20", "--dataset", "ml-1m", "--user", "99",
              "--data-dir", str(fixture_dir), "--runs", str(tmp_path / "runs")])
    assert exc.value.code == 2
    assert "argument --user: user id 99 is not in ml-1m" in capsys.readouterr().err


@pytest.mark.realdata
def test_ml1m_ids_map_to_titles(tmp_path, real_data_dir, capsys):
    """The ML-1M notebook printed titles off by one; here the id and the title agree."""
    import torch
    from aebench.bench import recommend

    from aebench import datasets, models

    ds = datasets.load("ml-1m", real_data_dir, download=False)
    split = datasets.make_split(ds, "random-90-10")
    torch.manual_seed(0)
    model, cfg = models.create("sae-20-10-20", split.n_users, split.n_items)
    table = recommend.recommend(model, cfg, split, ds.items, 8, 50)
    titles = ds.items.set_index("item")["title"]
    assert all(titles.loc[i] == t for i, t in zip(table["movie_id"], table["title"]))
    rated = set(ds.ratings.loc[ds.ratings["user"] == 8, "item"])
    assert not rated & set(table["movie_id"])


@pytest.mark.parametrize("name", ["autorec-i", "mf", "ease", "popularity", "mult-vae", "cdae",
                                  "bias"])
def test_every_kind_of_variant_recommends(name, tmp_path, fixture_dir, capsys):
    """Item-based, per-user parameters, closed form, ranking only: each trains, saves,
    reloads and ranks user 1's one unrated movie (30) by its original id and title."""
    argv = ["recommend", "--model", name, "--dataset", "ml-1m", "--user", "1", "-k", "3",
            "--data-dir", str(fixture_dir), "--runs", str(tmp_path / "runs")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Caf\xe9 Society (1995)" in out and "Heat (1995)" not in out
    assert main(argv) == 0
    assert "using the saved model" in capsys.readouterr().out
