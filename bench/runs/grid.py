"""Running a `Plan`: each cell as an executor's task, each record saved as it finishes, so
that an interrupted grid keeps every finished cell and `--resume` runs only the rest."""

from __future__ import annotations

import dataclasses

from aebench.bench.runs.executors import TaskLost
from aebench.bench.runs.plan import Plan
from aebench.bench.runs.records import Record
from aebench.bench.runs.runner import cell_task, lost_record, save


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a grid: `finished` holds the records saved before it."""

    def __init__(self, finished: list[Record]):
        super().__init__()
        self.finished = finished


class Quiet:
    """A display that shows nothing (the interface `run_plan` calls)."""

    def epoch_hook(self, cell):
        return None

    def running(self, cell) -> None:
        pass

    def finished(self, cell, record: Record) -> None:
        pass


def order(p: Plan, parallel: int) -> list[int]:
    """The order cells start in: as planned for one worker; longest first (by the published
    run's seconds; cells it did not run first of all, their cost unknown) when several
    workers share the grid, so that no long cell starts last while the others sit idle."""
    if parallel <= 1 or not p.costs:
        return list(range(len(p.cells)))
    return sorted(range(len(p.cells)), key=lambda i: (
        p.costs[i].seconds is not None, -(p.costs[i].seconds or 0.0)))


def run_plan(p: Plan, executor, display=None, memory_mb: float | None = None
             ) -> list[Record]:
    """Run every cell of `p` on `executor` and save each record into `p.out` as it comes
    back (a cell whose worker died is recorded as failed; the rest go on). With several
    workers, cells start longest first, and a cell starts beside the running ones only while
    their estimated peaks (`p.costs`) fit in `memory_mb`; each record says how many workers
    shared the machine. Returns the saved records; Ctrl-C raises `Interrupted` with those
    saved so far."""
    display = display or Quiet()
    finished: list[Record] = []
    queue = order(p, executor.parallel)
    peak = (lambda i: p.costs[i].peak_mb) if p.costs else (lambda i: 0.0)
    shared = {"workers": executor.parallel, "executor": executor.name}
    running: dict = {}

    def start() -> None:
        while queue and len(running) < executor.parallel:
            held = sum(peak(i) for i in running.values())
            fits = [i for i in queue if not running or memory_mb is None
                    or held + peak(i) <= memory_mb]
            if not fits:
                return  # the next cells wait for memory to be freed
            i = fits[0]
            queue.remove(i)
            cell = p.cells[i]
            ref = executor.submit(cell_task, (cell, display.epoch_hook(cell)),
                                  gpus=int(cell.device == "cuda"),
                                  memory_mb=peak(i) or None)
            running[ref] = i
            display.running(cell)

    try:
        start()
        while running:
            (ref, result), _ = executor.wait_one(list(running))
            cell = p.cells[running.pop(ref)]
            if isinstance(result, TaskLost):  # its worker died: this cell fails, not all
                result = lost_record(cell, result), {}
            record, artifacts = result
            if executor.parallel > 1:
                record = dataclasses.replace(record, env={**record.env, **shared})
            finished.append(save(record, artifacts, p.out))
            # the cell's weights and per-user values go before the next cell starts (the
            # local executor runs it in `wait_one`, while these names would still hold them)
            del result, record, artifacts
            display.finished(cell, finished[-1])
            start()
    except KeyboardInterrupt:
        raise Interrupted(finished) from None
    finally:
        executor.close()
    return finished
