"""Where grid cells and tuning trials run: in this process (`local`), or as Ray tasks on a
local or existing Ray cluster (`ray`, the optional extra `pip install -e .[ray]`).

Either way a task is a plain function of picklable arguments that returns plain data; the
driver alone writes records and files. Each task asks for the resources it needs (`threads`
CPUs, one GPU on CUDA) and sets torch's and numba's thread counts to `threads`, so that
concurrent tasks do not oversubscribe the cores (the per-user engine collapses under
oversubscription).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

EXECUTORS = ("local", "ray")


def set_threads(threads: int | None) -> None:
    """torch's and numba's thread counts, where `threads` is given."""
    if not threads:
        return
    import numba
    import torch

    torch.set_num_threads(threads)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


class _Queued:
    """A task that LocalExecutor runs when it is waited on."""

    def __init__(self, fn: Callable, args: tuple):
        self.fn, self.args = fn, args


class LocalExecutor:
    """Tasks one after another in this process: `submit` queues a task and `wait_one` runs
    the oldest, so that the driver loops of `run` and `tune` serve both executors."""

    name = "local"
    parallel = 1

    def __init__(self, threads: int | None = None):
        self.threads = threads
        set_threads(threads)

    def submit(self, fn: Callable, args: tuple, gpus: float = 0) -> _Queued:
        """One task, run by the `wait_one` that first reaches it."""
        return _Queued(fn, args)

    def wait_one(self, pending: list) -> tuple[tuple[Any, Any], list]:
        """((the oldest task, its result), the tasks still queued)."""
        task, rest = pending[0], pending[1:]
        return (task, task.fn(*task.args)), rest

    def close(self) -> None:
        pass


class TaskLost(Exception):
    """A task whose worker died under it (killed, out of memory): `wait_one` returns this as
    its result, so the caller records that one task as failed and the rest go on."""


def _call(fn: Callable, threads: int | None, args: tuple) -> Any:  # runs in a Ray worker
    set_threads(threads)
    return fn(*args)


class RayExecutor:
    """Tasks as Ray tasks: on the cluster at `address`, or on a local one started here (with
    `num_cpus` CPUs, default all). Results come back in completion order."""

    name = "ray"

    def __init__(self, address: str | None = None, threads: int = 1,
                 num_cpus: int | None = None):
        try:
            import ray
        except ImportError as exc:
            raise RuntimeError("--executor ray needs Ray: pip install -e .[ray]") from exc
        self.ray, self.threads = ray, threads
        self.started = not ray.is_initialized()
        if self.started:
            ray.init(address=address, num_cpus=None if address else num_cpus,
                     include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        self.remote = ray.remote(_call)

    def submit(self, fn: Callable, args: tuple, gpus: float = 0):
        """One task; its result later through `wait`."""
        return self.remote.options(num_cpus=self.threads, num_gpus=gpus,
                                   max_retries=0).remote(fn, self.threads, args)

    def wait_one(self, pending: list) -> tuple[tuple[Any, Any], list]:
        """((the finished task, its result), the tasks still running). A task whose worker
        died comes back with a `TaskLost` as its result."""
        done, rest = self.ray.wait(pending, num_returns=1)
        try:
            result = self.ray.get(done[0])
        except self.ray.exceptions.RayError as exc:
            result = TaskLost(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
        return (done[0], result), rest

    @property
    def parallel(self) -> int:
        """How many tasks of `threads` CPUs the cluster runs at once."""
        cpus = self.ray.cluster_resources().get("CPU", 1)
        return max(1, int(cpus // self.threads))

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


def make(name: str, address: str | None = None, threads: int | None = None,
         num_cpus: int | None = None):
    if name == "local":
        return LocalExecutor(threads)
    if name == "ray":
        return RayExecutor(address, threads or 1, num_cpus)
    raise ValueError(f"executor {name!r} unknown; choose from {', '.join(EXECUTORS)}")
