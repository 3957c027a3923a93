"""Installing aebench shadows no other distribution's top-level package: its code is
`aebench.bench`, `aebench.models` and `aebench.datasets`, while the repository keeps the
folders `bench/`, `models/` and `datasets/` at its top."""

import importlib.metadata
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

try:  # Hugging Face's distribution (aebench's own is `aebench`)
    HF = importlib.metadata.version("datasets") is not None
except importlib.metadata.PackageNotFoundError:
    HF = False


def python(code: str, cwd) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.skipif(not HF and not os.environ.get("AEBENCH_HF_REQUIRED"),
                    reason="Hugging Face `datasets` is not installed here (CI installs it)")
@pytest.mark.parametrize("where", ["elsewhere", "clone"])
def test_hugging_face_datasets_and_aebench_side_by_side(where, tmp_path):
    cwd = ROOT if where == "clone" else tmp_path
    proc = python(
        "import datasets; from datasets import load_dataset; "
        "assert 'site-packages' in datasets.__file__, datasets.__file__; "
        "from aebench import datasets as ours; from aebench.bench.cli import main; "
        "assert ours.load and main(['list']) == 0; "
        "import sys; print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('bench', 'models')))", cwd)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip().endswith("[]")  # no bare bench or models module was loaded


def test_a_users_own_models_module_is_left_alone(tmp_path):
    (tmp_path / "models.py").write_text("MINE = True\n")
    proc = python("import models; assert models.MINE; from aebench import models as ours; "
                  "assert 'ease' in ours.list(); import models as again; assert again.MINE",
                  tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_python_m_bench_from_the_clone_loads_each_module_once(tmp_path):
    code = ("import runpy, sys\nsys.argv = ['bench', 'list']\n"
            "try:\n    runpy.run_module('bench', run_name='__main__')\n"
            "except SystemExit as e:\n    assert not e.code, e.code\n"
            "bare = [m for m in sys.modules if m.split('.')[0] in ('models', 'datasets') "
            "or (m.startswith('bench.') and m != 'bench.__main__')]\n"
            "assert not bare, bare")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
