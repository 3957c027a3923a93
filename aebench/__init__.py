"""aebench: a benchmark suite comparing autoencoder recommenders on MovieLens.

The installed distribution ships one top-level package, `aebench`, so that it shadows no other
distribution's `bench`, `models` or `datasets` (Hugging Face ships a `datasets`):

    aebench.bench     engines, evaluation, runs, reports, speed and the CLI (`bench/`)
    aebench.models    the model contract, the registry and one file per family (`models/`)
    aebench.datasets  MovieLens, users' files, synthetic data and the split protocols (`datasets/`)

The repository keeps those three folders at its top. An install maps them under this package
(pyproject.toml's `package-dir`); in a clone that is not installed, this package's path also
reaches the clone's top, so `python -m bench` run there finds the same modules under the same
names.
"""

from pathlib import Path as _Path

_HERE = _Path(__file__).resolve().parent
_CLONE = _HERE.parent
if not (_HERE / "bench").is_dir() and (_CLONE / "bench" / "__main__.py").is_file() and (
        _CLONE / "models" / "registry.py").is_file():
    __path__.append(str(_CLONE))  # noqa: F821 (a package's own __path__)

__version__ = "0.1.0"
