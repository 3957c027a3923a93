"""Timing benchmarks (pytest-benchmark). Plain `pytest` runs each once as a smoke test
(`--benchmark-disable` is in the default options); `tox -e bench` times them for real."""

from __future__ import annotations

import pytest
import torch

from aebench import datasets


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["torch"] = torch.__version__
    machine_info["torch_threads"] = torch.get_num_threads()
    if torch.cuda.is_available():
        machine_info["cuda_device"] = torch.cuda.get_device_name(0)
        machine_info["cuda_version"] = torch.version.cuda


@pytest.fixture(scope="session")
def ml1m_shaped() -> datasets.Split:
    """`synthetic-ml1m` (ML-1M's shape and density, fixed seed), split 90/10."""
    return datasets.make_split(datasets.load("synthetic-ml1m"), "random-90-10", seed=0)
