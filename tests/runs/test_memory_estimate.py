"""The dry run's memory estimate (`plan.peak_mb`) against the peak a fresh process measures
running the same cell: within 25% on two shapes for five families of different make (the
rest: results/memory, by the same child), and a plan that cannot fit is refused before any
work, naming the cell."""

import pytest
from aebench.bench.cli import main
from aebench.bench.speed import memory

# a closed form whose items x items state dominates (EASE), a trained autoencoder (Mult-VAE),
# the kernel machine whose users x users kernel dominates (inf-ae), a neighbourhood model
# built by pruning (ItemKNN) and the float64 ADMM of higher-order EASE
FAMILIES = ["ease", "mult-vae", "inf-ae", "itemknn", "ease-higher"]


@pytest.mark.parametrize("model", FAMILIES)
@pytest.mark.parametrize("shape", memory.SHAPES)
def test_estimate_within_a_quarter_of_the_measured_peak(model, shape):
    """The child (bench/speed/memory.py) runs the cell as on a fresh machine: its own
    process, one thread, an empty numba cache (the compiler's memory is part of a first
    run's peak, whatever the tests before it left compiled)."""
    got = memory.measure(model, shape)
    if got["kind"] != "cpu-rss":
        pytest.skip("this kernel cannot reset a process's high-water mark")
    assert abs(got["estimate_mb"] - got["measured_mb"]) <= memory.WITHIN * got["measured_mb"], got


def test_the_memory_table_flags_what_is_off(tmp_path):
    rows = [{"model": "ease", "dataset": "a", "estimate_mb": 1000.0, "measured_mb": 900.0},
            {"model": "ease", "dataset": "b", "estimate_mb": 500.0, "measured_mb": 1000.0}]
    memory.write(tmp_path, rows)
    text = (tmp_path / "README.md").read_text()
    assert "| ease    | 1,000 / 900 (1.11) | 500 / 1,000 (0.50) ** |" in text
    assert "1 of 2 cells within 25%: outside, ease on b." in text


def test_a_plan_that_cannot_fit_is_refused_before_any_work(tmp_path, capsys):
    """EASE on 200,000 items holds several 160 GB copies of its items x items state."""
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exc:
        main(["run", "-m", "ease", "popularity", "-d", "synthetic-500x200000", "--out",
              str(out), "--dry-run"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "does not fit this machine's memory: ease on synthetic-500x200000 (seed 0)" in err
    assert "popularity" not in err.split("memory:")[1]  # the small cell is not blamed
    assert "--ignore-memory" in err and not out.exists()


def test_the_dry_run_prints_each_cells_estimated_peak(capsys):
    assert main(["run", "-m", "ease", "mult-vae", "-d", "synthetic", "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "est. peak MB" in text and "the largest peak about" in text
