"""Model plugins: entry points of a real distribution found by `importlib.metadata` (a
dist-info on sys.path), `--plugin` modules and files, every failure mode, records that say
where a variant came from, and run-time contract violations as failed records."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from aebench.bench.cli import main
from aebench.bench.runs import records
from aebench.models import plugins, registry

from aebench import models
from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "tiny-ae"

MODULE = '''
from dataclasses import dataclass, field

import torch

from aebench.models import register
from aebench.models.base import LogUniform, ModelConfig, Recipe, Recommender, Space


@dataclass(frozen=True)
class ToyConfig(ModelConfig):
    feedback: str = "implicit"
    batched: Recipe | None = field(default_factory=lambda: Recipe(
        optimizer="adam", lr=0.01, weight_decay=0.0, epochs=3, batch_size=16))


class Toy(Recommender):
    def __init__(self, n_items, cfg):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.zeros(n_items))

    def loss(self, batch):
        log_p = torch.log_softmax(self.logits, 0)
        return -log_p[batch.pattern.cols].sum() / batch.size

    def score(self, batch):
        {score}


register({name!r}, lambda r, c, cfg: Toy(c, cfg), ToyConfig(), "a test plugin",
         space=Space({{"batched.lr": LogUniform(1e-3, 0.1)}}))
'''
GOOD_SCORE = "return self.logits.expand(batch.size, -1).clone()"


def module_source(name="toy-pop", score=GOOD_SCORE):
    return MODULE.format(name=name, score=score)


@pytest.fixture(autouse=True)
def clean_registry(monkeypatch):
    """Each test sees the built-in variants only, and leaves them so."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(plugins, "_LOADED", {})
    monkeypatch.setattr(plugins, "_BROKEN", {})
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith(("aebench_", "toy_")):
            del sys.modules[name]


def install(site: Path, dist: str, version: str, module: str, source: str,
            entry: str) -> Path:
    """A real installed distribution: its module and dist-info (METADATA, entry_points.txt)
    in a folder on sys.path, which `importlib.metadata` reads like site-packages."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(source)
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[{plugins.GROUP}]\n{entry} = {module}\n")
    (info / "RECORD").write_text("")
    sys.path.insert(0, str(site))
    return site


def test_an_installed_entry_point_registers_variants_and_records_say_so(tmp_path, capsys):
    install(tmp_path / "site", "aebench-toy", "1.2.3", "toy_plugin", module_source(), "toy")
    out = tmp_path / "run"
    assert main(["run", "-m", "toy-pop", "ease", "-d", "synthetic", "--out", str(out)]) == 0
    assert models.get("toy-pop").plugin == "toy"
    recs = {r["model"]: r for r in records.load(out)}
    assert recs["toy-pop"]["status"] == "ok"
    assert recs["toy-pop"]["plugin"] == {
        "name": "toy", "module": "toy_plugin", "entry_point": "toy = toy_plugin",
        "distribution": "aebench-toy", "version": "1.2.3"}
    assert recs["ease"]["plugin"] is None
    assert {"name": "toy", "module": "toy_plugin", "distribution": "aebench-toy",
            "version": "1.2.3"} in recs["ease"]["env"]["plugins"]
    tables = (out / "tables.md").read_text()
    assert "toy-pop ‡" in tables and "‡ plugin: toy-pop (aebench-toy 1.2.3)" in tables
    capsys.readouterr()
    assert main(["list"]) == 0
    assert "toy-pop" in capsys.readouterr().out


def test_a_broken_installed_plugin_is_reported_once_and_built_ins_still_run(tmp_path, capsys):
    install(tmp_path / "site", "aebench-bad", "0.1", "toy_bad", "raise ImportError('no gpu')",
            "bad")
    out = tmp_path / "run"
    assert main(["run", "-m", "popularity", "-d", "synthetic", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert err.count("plugin 'bad' (entry point 'bad = toy_bad'): ImportError: no gpu") == 1
    assert main(["list"]) == 0
    assert "plugin 'bad'" not in capsys.readouterr().err  # reported once per process
    with pytest.raises(SystemExit) as exc:
        main(["run", "-m", "toy-*", "-d", "synthetic"])
    assert exc.value.code == 2
    assert "broken plugins: plugin 'bad'" in capsys.readouterr().err
    # named explicitly, the same plugin stops the command
    with pytest.raises(SystemExit) as exc:
        main(["list", "--plugin", "bad"])
    assert exc.value.code == 2 and "no gpu" in capsys.readouterr().err


def test_a_plugin_file_is_loaded_by_path(tmp_path, capsys):
    path = tmp_path / "my_model.py"
    path.write_text(module_source("file-pop"))
    out = tmp_path / "run"
    assert main(["run", "--plugin", str(path), "-m", "file-pop", "-d", "synthetic",
                 "--out", str(out)]) == 0
    (rec,) = records.load(out)
    assert rec["status"] == "ok" and rec["plugin"]["module"] == "aebench_plugin_my_model"
    assert rec["run_config"]["plugins"] == [str(path)]


@pytest.mark.parametrize("source, message", [
    ("raise RuntimeError('boom')", "RuntimeError: boom"),
    (module_source("ease"), "model 'ease' is already registered"),
    (module_source().replace('"batched.lr"', '"batched.nope"'),
     "search-space key 'batched.nope' is not an option of its config"),
    (module_source().replace('feedback: str = "implicit"', 'feedback: str = "both"'),
     "feedback 'both' unknown"),
    ("x = 1", "registered no variant"),
])
def test_every_plugin_failure_stops_the_command_naming_it(tmp_path, capsys, source, message):
    path = tmp_path / "broken_plugin.py"
    path.write_text(source)
    plugins.load_installed()  # an installed plugin (the example, in CI) is not this test's
    before = models.list()
    with pytest.raises(SystemExit) as exc:
        main(["run", "--plugin", str(path), "-m", "ease", "-d", "synthetic",
              "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert "argument --plugin" in err and str(path.resolve()) in err and message in err
    assert models.list() == before  # nothing half-registered
    assert not (tmp_path / "run").exists()  # before any work


def test_an_unknown_plugin_is_named(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["list", "--plugin", "no_such_module_anywhere"])
    assert exc.value.code == 2
    assert "plugin 'no_such_module_anywhere': no module, .py file or installed entry point" \
        in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["list", "--plugin", "missing.py"])
    assert "plugin 'missing.py': no such file" in capsys.readouterr().err


@pytest.mark.parametrize("score, rule", [
    ("return self.logits.expand(batch.size + 1, -1).clone()",
     "must return (batch rows, n_cols)"),
    ("return torch.full((batch.size, self.logits.numel()), float('nan'))",
     "returned non-finite"),
    ("return [0.0]", "must return a torch.Tensor"),
])
def test_a_contract_breach_is_a_failed_record_and_the_grid_goes_on(tmp_path, score, rule):
    path = tmp_path / "breach.py"
    path.write_text(module_source("breach", score))
    out = tmp_path / "run"
    assert main(["run", "--plugin", str(path), "-m", "breach", "popularity", "-d", "synthetic",
                 "--out", str(out)]) == 1
    recs = {r["model"]: r for r in records.load(out)}
    assert recs["popularity"]["status"] == "ok"
    assert recs["breach"]["status"] == "failed"
    assert recs["breach"]["error"].startswith("ContractError: contract: Toy.score()")
    assert rule in recs["breach"]["error"]


def test_a_model_without_the_method_its_trainer_needs_is_a_failed_record(tmp_path):
    path = tmp_path / "no_loss.py"
    path.write_text(module_source("no-loss").replace("def loss(", "def not_loss("))
    out = tmp_path / "run"
    assert main(["run", "--plugin", str(path), "-m", "no-loss", "-d", "synthetic",
                 "--out", str(out)]) == 1
    (rec,) = records.load(out)
    assert rec["error"] == ("ContractError: contract: Toy trains by 'epochs' but does not "
                            "implement loss()")


def test_a_plugin_variant_tunes_like_any_other(tmp_path):
    path = tmp_path / "tunable.py"
    path.write_text(module_source("tunable"))
    assert main(["tune", "--plugin", str(path), "-m", "tunable", "-d", "synthetic",
                 "--trials", "3", "--out", str(tmp_path / "tuning")]) == 0
    assert "tunable" in (tmp_path / "tuning" / "recipes.json").read_text()


def _example_installed() -> bool:
    from importlib import metadata

    try:
        metadata.distribution("aebench-tiny-ae")
    except metadata.PackageNotFoundError:
        return False
    return True


def test_the_example_plugin_runs_end_to_end_on_the_example_dataset(tmp_path):
    """README's path, as CI runs it: the example distribution installed (`.ci/run` installs
    it and sets AEBENCH_EXAMPLE_REQUIRED, so there it cannot be skipped), a dry run, then a
    run next to mult-vae and ease on the example CSV, in a fresh process."""
    if not _example_installed():
        if os.environ.get("AEBENCH_EXAMPLE_REQUIRED"):
            pytest.fail("the example plugin is not installed: pip install ./examples/tiny-ae")
        pytest.skip("the example plugin is not installed (pip install ./examples/tiny-ae)")
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    data = EXAMPLE / "ratings.csv"
    argv = [sys.executable, "-m", "bench", "run", "-m", "tiny-ae", "mult-vae", "ease",
            "-d", str(data), "--epochs", "5", "--out", str(out)]
    dry = subprocess.run(argv + ["--dry-run"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert dry.returncode == 0, dry.stderr
    assert "tiny-ae" in dry.stdout and not out.exists()
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    recs = {r["model"]: r for r in records.load(out)}
    assert set(recs) == {"tiny-ae", "mult-vae", "ease"}
    assert all(r["status"] == "ok" for r in recs.values())
    assert recs["tiny-ae"]["plugin"]["distribution"] == "aebench-tiny-ae"
    assert recs["tiny-ae"]["metrics"]["ndcg@10"] > 0
