"""The CLI end to end on synthetic and fixture data."""

import json
import subprocess
import sys

import pytest
import torch

from bench import records
from bench.__main__ import main
from tests.conftest import ROOT

REQUIRED = {"model", "dataset", "split", "device", "mode", "seed", "epochs", "config", "env",
            "history", "metrics", "timings", "status"}


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
        assert all("rmse" in h and "epoch_s" in h and "train_loss" in h for h in r["history"])
        assert {"rmse", "mae", "rmse_raw", "legacy_loss", "train_rmse"} <= r["metrics"].keys()
        assert {"epoch_s_median", "fit_s", "eval_s", "peak_mem_mb"} <= r["timings"].keys()
        assert (out / r["weights"]).is_file()
    assert recs[0]["split"]["fingerprint"] == recs[1]["split"]["fingerprint"]
    for name in ("tables.md", "tables.csv", "rmse_by_epoch.png", "final_rmse.png",
                 "epoch_seconds.png"):
        assert (out / name).stat().st_size > 0
    table = (out / "tables.md").read_text()
    assert "sae-dropout" in table and f"{recs[1]['metrics']['rmse']:.4f}" in table
    # report regenerates the same tables from the records alone
    (out / "tables.md").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "tables.md").read_text() == table


def test_failed_cell_is_recorded_and_grid_goes_on(tmp_path, fixture_dir):
    out = tmp_path / "run"
    code = main(["run", "-m", "sae-20-10-20", "-d", "synthetic", "ml-100k", "--split", "u1",
                 "--epochs", "2", "--data-dir", str(fixture_dir), "--out", str(out)])
    assert code == 1
    recs = records.load(out)
    assert [r["status"] for r in recs] == ["failed", "ok"]
    assert "official files" in recs[0]["error"]
    assert "Failed runs" in (out / "tables.md").read_text()


def test_per_user_mode_and_overrides(tmp_path):
    out = tmp_path / "run"
    assert main(["run", "-m", "sae-20-10-20", "-d", "synthetic-40x30", "--mode", "per-user",
                 "--epochs", "2", "--lr", "0.02", "--seed", "3", "--out", str(out)]) == 0
    r = records.load(out)[0]
    assert r["mode"] == "per-user" and r["seed"] == 3 and r["split"]["seed"] == 3
    assert r["config"]["per_user"]["lr"] == 0.02 and r["config"]["per_user"]["epochs"] == 2


@pytest.mark.parametrize("argv, message", [
    (["run", "-m", "nope*", "-d", "synthetic"], "no registered model matches"),
    (["run", "-d", "synthetic"], "give -m/--models"),
    (["run", "-m", "sae-20-10-20", "--devices", "tpu"], "unknown device 'tpu'"),
])
def test_bad_options_are_named(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert message in str(exc.value)


def test_list_shows_variants(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "sae-200-100-200" in out and "random-90-10" in out


def test_foreign_datasets_package_is_refused(tmp_path):
    fake = tmp_path / "fake" / "datasets"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    code = (f"import sys; sys.path.insert(0, {str(tmp_path / 'fake')!r}); "
            f"sys.path.insert(1, {str(ROOT)!r}); from bench.__main__ import main; main(['list'])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "not aebench's datasets package" in proc.stderr
    assert str(fake) in proc.stderr


def test_records_round_trip_nan_as_null(tmp_path):
    records.append(tmp_path / "runs.jsonl", {"x": float("nan"), "y": [1.0, float("inf")]})
    assert json.loads((tmp_path / "runs.jsonl").read_text()) == {"x": None, "y": [1.0, None]}


def test_speed_reports_ratios_flops_and_both_ceilings(tmp_path, capsys):
    out = tmp_path / "speed.json"
    assert main(["speed", "-m", "sae-20-10-20", "-d", "synthetic-200x300", "--repeats", "1",
                 "--out", str(out)]) == 0
    got = json.loads(out.read_text())
    assert got["matmul_peak_gflops"] > 0 and got["gather_ceiling_gflops"]["20"] > 0
    rows = {r["path"]: r for r in got["rows"]}
    assert set(rows) == {"classic", "per-user", "batched"}
    assert rows["classic"]["speedup_vs_classic"] == 1.0
    # the sparse paths do the same work, less than the dense classic loop
    assert rows["per-user"]["gflop_per_epoch"] == rows["batched"]["gflop_per_epoch"]
    assert rows["batched"]["gflop_per_epoch"] < rows["classic"]["gflop_per_epoch"]
    for r in rows.values():
        assert r["pct_of_gather_ceiling"] == pytest.approx(
            100 * r["gflops"] / got["gather_ceiling_gflops"]["20"])
    assert "% of gather ceiling" in capsys.readouterr().out


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_speed_on_cuda_without_a_gpu_names_the_option():
    with pytest.raises(SystemExit) as exc:
        main(["speed", "--device", "cuda", "-d", "synthetic-200x300"])
    assert "--device cuda" in str(exc.value) and "no CUDA device" in str(exc.value)
