"""A real service: models trained by `bench run`, served by uvicorn on 127.0.0.1 in a thread,
asked over HTTP."""

from __future__ import annotations

import threading
import time

import pytest
from aebench.bench.cli import main

uvicorn = pytest.importorskip("uvicorn", reason="the serve extra is not installed")
httpx = pytest.importorskip("httpx", reason="the dev extra is not installed")


def train(out, data_dir, dataset: str, models: list[str], *extra: str) -> None:
    assert main(["run", "-m", *models, "-d", dataset, "--data-dir", str(data_dir),
                 "--out", str(out), "--threads", "2", "-q", *extra]) == 0


@pytest.fixture(scope="session")
def trained():
    """`train(out, data_dir, dataset, models, *options)`: `bench run` into `out`."""
    return train


class Running:
    """An app served by uvicorn on a free port of 127.0.0.1, stopped on exit."""

    def __init__(self, app):
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="session")
def ml100k_run(tmp_path_factory, real_data_dir):
    """EASE and Mult-VAE (fold in), MF (a vector per user), I-AutoRec (item rows) on ml-100k
    u1, trained once for the session (about 20 s)."""
    out = tmp_path_factory.mktemp("served") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCH_CACHE_DIR", str(out.parent / "cache"))
        train(out, real_data_dir, "ml-100k", ["ease", "mult-vae", "mf", "autorec-i"])
    return out


@pytest.fixture(scope="session")
def catalogue(ml100k_run, real_data_dir):
    from aebench.bench.runs.runner import SplitCache
    from aebench.bench.service.served import load_run

    return load_run(ml100k_run, SplitCache(str(real_data_dir)))


@pytest.fixture(scope="session")
def base_url(catalogue):
    from aebench.bench.service.app import create_app

    with Running(create_app(catalogue)) as url:
        yield url


@pytest.fixture
def client(base_url):
    with httpx.Client(base_url=base_url, timeout=60) as c:
        yield c
