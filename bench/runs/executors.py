"""Where grid cells and tuning trials run: in this process (`local`), in worker processes on
this machine (`processes`: one per core by default, so a 2-core machine runs two 1-thread
cells at once), or as Ray tasks on a local or existing Ray cluster (`ray`, the optional extra
`pip install -e .[ray]`).

Either way a task is a plain function of picklable arguments that returns plain data; the
driver alone writes records and files. Each task asks for the resources it needs (`threads`
CPUs, one GPU on CUDA) and sets torch's and numba's thread counts to `threads`, so that
concurrent tasks do not oversubscribe the cores (the per-user engine collapses under
oversubscription).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

EXECUTORS = ("local", "processes", "ray")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMBA_NUM_THREADS")


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

    def submit(self, fn: Callable, args: tuple, gpus: float = 0,
               memory_mb: float | None = None) -> _Queued:
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


def cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _serve(conn, threads: int) -> None:  # a worker process's loop
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    set_threads(threads)
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        fn, args = task
        try:
            reply = (True, fn(*args))
        except Exception as exc:  # noqa: BLE001 - the driver re-raises it
            reply = (False, exc)
        try:
            conn.send(reply)
        except Exception as exc:  # noqa: BLE001 - a result or error that does not pickle
            conn.send((False, RuntimeError(f"the task's {'result' if reply[0] else 'error'} "
                                           f"could not be sent back: {exc}")))
        del task, fn, args, reply  # sent: not held while the worker waits for, or runs, the next


class _Worker:
    """One worker process (spawned: a fresh interpreter, its BLAS and OpenMP pools sized to
    `threads` before they start) and the task it runs."""

    def __init__(self, threads: int):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        saved = {k: os.environ.get(k) for k in THREAD_VARIABLES}
        os.environ.update({k: str(threads) for k in THREAD_VARIABLES})
        try:
            self.process = ctx.Process(target=_serve, args=(child, threads), daemon=True)
            self.process.start()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        child.close()
        self.task = None

    def stop(self, now: bool = False) -> None:
        if now:
            self.process.kill()
        else:
            try:
                self.conn.send(None)
            except OSError:
                pass
        self.process.join(timeout=None if not now else 5)


class _Task:
    """A task handed to ProcessExecutor: run by a worker as soon as one is free."""

    def __init__(self, fn: Callable, args: tuple):
        self.fn, self.args = fn, args
        self.worker: _Worker | None = None


def process_workers(workers: int | None, threads: int | None) -> int:
    """How many worker processes `ProcessExecutor` starts: `workers`, else the cores divided
    by the threads each runs (so the cores are used and never oversubscribed)."""
    return workers or max(1, cores() // (threads or 1))


class ProcessExecutor:
    """Tasks in `workers` processes on this machine (default: one per core, at `threads`
    threads each, so the cores are used and never oversubscribed). Each worker loads a
    dataset and split once and keeps them for its later tasks, as the local executor does.
    Results come back in completion order; a worker that dies under a task (killed, out of
    memory) fails that task alone (`TaskLost`) and is replaced."""

    name = "processes"

    def __init__(self, workers: int | None = None, threads: int | None = None):
        self.threads = threads or 1
        self.parallel = process_workers(workers, threads)
        self.workers = [_Worker(self.threads) for _ in range(self.parallel)]
        self.idle = list(self.workers)
        self.queued: list[_Task] = []

    def submit(self, fn: Callable, args: tuple, gpus: float = 0,
               memory_mb: float | None = None) -> _Task:
        """One task, started now if a worker is free, else when one becomes free."""
        task = _Task(fn, args)
        self.queued.append(task)
        self._start()
        return task

    def _start(self) -> None:
        while self.idle and self.queued:
            task, worker = self.queued.pop(0), self.idle.pop()
            task.worker, worker.task = worker, task
            worker.conn.send((task.fn, task.args))

    def wait_one(self, pending: list) -> tuple[tuple[Any, Any], list]:
        """((a finished task, its result), the other tasks of `pending`). A task's exception
        is raised here, as the local executor raises it."""
        from multiprocessing.connection import wait

        busy = {t.worker.conn: t for t in pending if t.worker is not None}
        busy.update({t.worker.process.sentinel: t for t in pending if t.worker is not None})
        if not busy:
            raise RuntimeError("wait_one: none of these tasks was submitted here")
        ready = wait(list(busy))
        task = busy[ready[0]]
        worker, task.worker = task.worker, None
        worker.task = None
        try:
            done, result = worker.conn.recv()
        except (EOFError, OSError):  # the process died under the task
            worker.process.join(timeout=5)
            code = worker.process.exitcode
            done, result = True, TaskLost(
                f"worker process died (exit code {code}"
                + (", killed: out of memory?" if code == -9 else "") + ")")
            self.workers.remove(worker)
            worker = _Worker(self.threads)
            self.workers.append(worker)
        self.idle.append(worker)
        self._start()
        if not done:
            raise result
        return (task, result), [t for t in pending if t is not task]

    def close(self) -> None:
        """Stop the workers: politely when idle, at once when a task still runs (Ctrl-C)."""
        for worker in self.workers:
            worker.stop(now=worker.task is not None)
        self.workers, self.idle, self.queued = [], [], []


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

    def submit(self, fn: Callable, args: tuple, gpus: float = 0,
               memory_mb: float | None = None):
        """One task; its result later through `wait`. With `memory_mb` (the cell's estimated
        peak) the task asks Ray for that much memory, so that Ray places it on a node that
        has it and runs no more tasks on a node than its memory holds."""
        extra = {"memory": int(memory_mb * 2**20)} if memory_mb else {}
        largest = self.largest_node_mb() if memory_mb else None
        if largest is not None and memory_mb > largest:
            # Ray would hold an infeasible task forever: the cell fails now, saying why
            return self.ray.put(TaskLost(
                f"no node of the Ray cluster has the memory this cell needs (about "
                f"{memory_mb:,.0f} MB estimated; the largest node offers {largest:,.0f} MB)"))
        return self.remote.options(num_cpus=self.threads, num_gpus=gpus, max_retries=0,
                                   **extra).remote(fn, self.threads, args)

    def wait_one(self, pending: list) -> tuple[tuple[Any, Any], list]:
        """((the finished task, its result), the tasks still running). A task whose worker
        died comes back with a `TaskLost` as its result."""
        done, rest = self.ray.wait(pending, num_returns=1)
        try:
            result = self.ray.get(done[0])
        except self.ray.exceptions.RayError as exc:
            result = TaskLost(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
        return (done[0], result), rest

    def largest_node_mb(self) -> float | None:
        """The most memory one live node of the cluster offers its tasks (Ray's `memory`
        resource, MB); None where no node says."""
        offers = [n["Resources"].get("memory") for n in self.ray.nodes() if n.get("Alive")]
        offers = [m for m in offers if m]
        return max(offers) / 2**20 if offers else None

    @property
    def parallel(self) -> int:
        """How many tasks of `threads` CPUs the cluster runs at once."""
        cpus = self.ray.cluster_resources().get("CPU", 1)
        return max(1, int(cpus // self.threads))

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


def make(name: str, address: str | None = None, threads: int | None = None,
         num_cpus: int | None = None, workers: int | None = None):
    if name == "local":
        return LocalExecutor(threads)
    if name == "processes":
        return ProcessExecutor(workers, threads)
    if name == "ray":
        return RayExecutor(address, threads or 1, num_cpus)
    raise ValueError(f"executor {name!r} unknown; choose from {', '.join(EXECUTORS)}")
