"""The CLI end to end on synthetic and fixture data."""

import json
import subprocess
import sys

import pytest
from aebench.bench.cli import main
from aebench.bench.runs import records

from tests.conftest import ROOT

REQUIRED = {"model", "dataset", "split", "device", "mode", "seed", "epochs", "config", "env",
            "history", "metrics", "timings", "status", "validation", "recipe", "variant"}


def test_run_writes_records_tables_and_plots(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["run", "-m", "sae-20-10-20", "sae-dropout", "-d", "synthetic", "--epochs", "3",
                 "--eval-every", "1", "--out", str(out)])
    assert code == 0
    recs = records.load(out / "runs.jsonl")
    assert [r["model"] for r in recs] == ["sae-20-10-20", "sae-dropout"]
    for r in recs:
        assert REQUIRED <= r.keys() and r["status"] == "ok"
        assert r["epochs"] == 3 and r["config"]["batched"]["epochs"] == 3
        assert set(r["split"]) >= {"name", "seed", "fingerprint"}
        assert r["split"]["name"] == "random-90-10" and len(r["split"]["fingerprint"]) == 64
        env_keys = {"git_commit", "python", "torch", "numpy", "device_name", "torch_threads"}
        assert env_keys <= r["env"].keys()
        assert [h["epoch"] for h in r["history"]] == [1, 2, 3]
        assert all("valid" in h and "epoch_s" in h and "train_loss" in h for h in r["history"])
        v = r["validation"]
        assert v["metric"] == "rmse" and v["fraction"] == 0.05 and len(v["fingerprint"]) == 64
        assert v["best"] == min(h["valid"] for h in r["history"])
        assert r["history"][v["best_epoch"] - 1]["valid"] == v["best"]
        assert {"rmse", "mae", "rmse_raw", "legacy_loss", "train_rmse"} <= r["metrics"].keys()
        assert {"epoch_s_median", "fit_s", "eval_s", "peak_mem_mb", "peak_mem_kind"} <= \
            r["timings"].keys()
        t = r["timings"]  # the cell's parts (budget.md): three reads, all inside the cell
        assert t["valid_reads"] == 3 and t["valid_s"] > 0 and t["setup_s"] > 0
        assert t["cell_s"] > t["fit_s"] + t["valid_s"] + t["eval_s"] + t["setup_s"]
        assert (out / r["weights"]).is_file()
    assert recs[0]["split"]["fingerprint"] == recs[1]["split"]["fingerprint"]
    for name in ("tables.md", "tables.csv", "final_rmse.png", "epoch_seconds.png", "budget.md"):
        assert (out / name).stat().st_size > 0
    grid, = records.load_grids(out)  # this invocation's time outside its cells
    assert (grid["cells"], grid["failed"], grid["executor"]) == (2, 0, "local")
    assert grid["startup_s"] > 0 and grid["report_s"] > 0
    assert grid["cells_s"] >= sum(r["timings"]["cell_s"] for r in recs)
    budget = (out / "budget.md").read_text()
    assert "sae-dropout" in budget and "over 1 `run` invocations" in budget
    table = (out / "tables.md").read_text()
    assert "sae-dropout" in table and f"{recs[1]['metrics']['rmse']:.4f}" in table
    # report regenerates the same tables from the records alone
    (out / "tables.md").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "tables.md").read_text() == table


def test_failed_cell_is_recorded_and_grid_goes_on(tmp_path):
    """A cell that diverges is a failed record with its error; the grid goes on (the lr
    override applies to the SAE's recipe; EASE is closed-form and has none)."""
    out = tmp_path / "run"
    code = main(["run", "-m", "sae-20-10-20", "ease", "-d", "synthetic", "--lr", "1e30",
                 "--epochs", "2", "--out", str(out)])
    assert code == 1
    recs = records.load(out)
    assert [(r["model"], r["status"]) for r in recs] == [("ease", "ok"),
                                                         ("sae-20-10-20", "failed")]
    assert "training loss is nan" in recs[1]["error"]
    assert "Failed runs" in (out / "tables.md").read_text()


def test_per_user_mode_and_overrides(tmp_path):
    out = tmp_path / "run"
    assert main(["run", "-m", "sae-20-10-20", "-d", "synthetic-40x30", "--mode", "per-user",
                 "--epochs", "2", "--lr", "0.02", "--seed", "3", "--out", str(out)]) == 0
    r = records.load(out)[0]
    assert r["mode"] == "per-user" and r["seed"] == 3 and r["split"]["seed"] == 3
    assert r["config"]["per_user"]["lr"] == 0.02 and r["config"]["per_user"]["epochs"] == 2


def test_list_shows_variants(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "sae-200-100-200" in out and "random-90-10" in out
    assert "filtered-80-10-10" in out
    # a staged L-BFGS recipe shows its stages; a dataset's own defaults are listed
    assert "lbfgs, pretrain 20 rounds of 50, then finetune 30 rounds of 10" in out
    assert "glocal-k on ml-100k: lambda_2=20.0" in out


def test_a_foreign_datasets_package_first_on_the_path_changes_nothing(tmp_path):
    """aebench's packages live under `aebench`: another `datasets` (Hugging Face's) ahead of
    it on sys.path is what `import datasets` finds, and aebench still works."""
    fake = tmp_path / "fake" / "datasets"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("FOREIGN = True\n")
    code = (f"import sys; sys.path.insert(0, {str(tmp_path / 'fake')!r}); "
            f"sys.path.insert(1, {str(ROOT)!r}); from aebench.bench.cli import main; "
            "rc = main(['list']); import datasets; assert datasets.FOREIGN; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "random-90-10" in proc.stdout


def test_records_round_trip_nan_as_null(tmp_path):
    records.append(tmp_path / "runs.jsonl", {"x": float("nan"), "y": [1.0, float("inf")]})
    assert json.loads((tmp_path / "runs.jsonl").read_text()) == {"x": None, "y": [1.0, None]}


def test_speed_reports_ratios_flops_and_both_ceilings(tmp_path, capsys):
    out = tmp_path / "speed.json"
    assert main(["speed", "-m", "sae-20-10-20", "mult-vae", "ease", "-d", "synthetic-200x300",
                 "--repeats", "1", "--out", str(out)]) == 0
    got = json.loads(out.read_text())
    assert got["matmul_peak_gflops"] > 0
    (ceiling,) = got["gather_ceiling_gflops"].values()  # the SAE's, at width 20
    rows = {(r["model"], r["path"]): r for r in got["rows"]}
    assert set(rows) == {("sae-20-10-20", p) for p in ("classic", "per-user", "batched")} | {
        ("mult-vae", "batched"), ("ease", "fit")}
    sae = {p: rows[("sae-20-10-20", p)] for p in ("classic", "per-user", "batched")}
    assert sae["classic"]["speedup_vs_classic"] == 1.0
    # the sparse paths do the same work, less than the dense classic loop
    assert sae["per-user"]["gflop_per_epoch"] == sae["batched"]["gflop_per_epoch"]
    assert sae["batched"]["gflop_per_epoch"] < sae["classic"]["gflop_per_epoch"]
    assert sae["batched"]["bound"] == "gather"
    assert sae["batched"]["pct_of_gather_ceiling"] == pytest.approx(
        100 * sae["batched"]["gflops"] / ceiling)
    vae = rows[("mult-vae", "batched")]
    assert vae["bound"] == "matmul" and vae["pct_of_peak"] == pytest.approx(
        100 * vae["gflops"] / got["matmul_peak_gflops"])
    assert rows[("ease", "fit")]["epoch_s"] > 0 and rows[("ease", "fit")]["gflops"] is None
    assert "% of gather ceiling" in capsys.readouterr().out


def test_a_command_whose_extra_is_missing_names_it_and_the_install():
    from aebench.bench.cli.checks import require_extra

    with pytest.raises(SystemExit, match=r"`site` needs the site extra \(no_such_pkg_x is "
                                         r"missing\): pip install 'aebench\[site\]'"):
        require_extra("site", "site", "json", "no_such_pkg_x")
    require_extra("site", "site", "json")  # present: nothing happens
