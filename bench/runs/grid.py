"""Running a `Plan`: each cell as an executor's task, each record saved as it finishes, so
that an interrupted grid keeps every finished cell and `--resume` runs only the rest."""

from __future__ import annotations

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


def run_plan(p: Plan, executor, display=None) -> list[Record]:
    """Run every cell of `p` on `executor` and save each record into `p.out` as it comes
    back (a cell whose worker died is recorded as failed; the rest go on). Returns the saved
    records; Ctrl-C raises `Interrupted` with those saved so far."""
    display = display or Quiet()
    finished: list[Record] = []
    try:
        running = {executor.submit(cell_task, (c, display.epoch_hook(c)),
                                   gpus=int(c.device == "cuda")): c for c in p.cells}
        while running:  # the oldest unfinished cell is the one the local executor runs
            display.running(next(iter(running.values())))
            (ref, result), _ = executor.wait_one(list(running))
            cell = running.pop(ref)
            if isinstance(result, TaskLost):  # its worker died: this cell fails, not all
                result = lost_record(cell, result), {}
            finished.append(save(*result, p.out))
            display.finished(cell, finished[-1])
    except KeyboardInterrupt:
        raise Interrupted(finished) from None
    finally:
        executor.close()
    return finished
