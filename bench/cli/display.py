"""What `run` shows while a grid trains: progress bars on a terminal, one plain line per
finished cell in a log (no bar characters in files), nothing with `--quiet`."""

from __future__ import annotations

import sys


def label(cell) -> str:
    return f"{cell.model} {cell.dataset} {cell.device} {cell.mode} s{cell.seed}"


def summary(rec) -> str:
    """One line of a finished cell's figures (a `records.Record`)."""
    m, v = rec.metrics, rec.validation
    parts = [f"rmse {m['rmse']:.4f}" if "rmse" in m else "rmse —",
             f"ndcg@10 {m['ndcg@10']:.4f}" if m.get("ndcg@10") is not None else "ndcg —"]
    if v and v.best is not None:
        parts.append(f"valid {v.metric} {v.best:.4f} @ epoch {v.best_epoch}")
    parts.append(f"epoch {rec.timings.epoch_s_median:.3f}s")
    return "  ".join(parts)


class Display:
    """The `run_plan` display of one grid (a context manager that closes its bars)."""

    def __init__(self, total: int, quiet: bool = False, local: bool = True, stream=None,
                 eta: Eta | None = None):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.bars = not quiet and self.stream.isatty()
        self.total, self.done = total, 0
        self.grid = self.epochs = None
        self.local = local
        self.current = None
        self.eta = eta

    def __enter__(self):
        if self.bars:
            from tqdm.auto import tqdm

            self.grid = tqdm(total=self.total, desc="grid", unit="run", file=self.stream)
            self.epochs = tqdm(unit="epoch", leave=False, disable=not self.local,
                               file=self.stream)
        return self

    def __exit__(self, *exc):
        for bar in (self.epochs, self.grid):
            if bar is not None:
                bar.close()
        return False

    def epoch_hook(self, cell):
        """Epoch progress of a cell that runs in this process (None on Ray, whose workers
        print nothing, and without bars)."""
        if not self.bars or not self.local:
            return None

        def on_epoch(row):
            if self.current is not cell:  # the first epoch of this cell
                self.current = cell
                self.epochs.reset()
                self.epochs.set_description_str(label(cell))
            self.epochs.update(1)
            self.epochs.set_postfix(**{k: f"{row[k]:.4f}" for k in ("train_loss", "valid")
                                       if row.get(k) is not None})
        return on_epoch

    def running(self, cell) -> None:
        if self.grid is not None:
            self.grid.set_postfix_str(label(cell))

    def finished(self, cell, rec) -> None:
        self.done += 1
        text = (f"{label(cell)}: {summary(rec)}" if rec.ok
                else f"{label(cell)}: FAILED {rec.error}")
        if self.eta is not None:
            self.eta.finished(cell, rec)
            if self.done < self.total and (left := self.eta.left_s()) is not None:
                text += f"  (about {minutes(left)} left)"
        if self.quiet:
            if not rec.ok:
                print(text, file=sys.stderr, flush=True)
            return
        if self.grid is not None:
            self.grid.write(text, file=sys.stdout)
            self.grid.update(1)
        else:
            print(f"[{self.done}/{self.total}] {text}", flush=True)


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


class Eta:
    """The grid's time left, from the published run's cell times (`Cost.seconds`) shared
    over the workers (never less than the longest cell left), scaled by how long the
    finished cells took against their estimates, so the figure stays honest on a slower or
    busier machine. Cells the published run lacks count at the median of those it has, and
    set no pace."""

    def __init__(self, cells, costs, parallel: int):
        known = sorted(c.seconds for c in costs if c.seconds is not None)
        fill = known[len(known) // 2] if known else None
        self.left = {id(cell): (c.seconds if c.seconds is not None else fill)
                     for cell, c in zip(cells, costs)}
        self.measured = {id(cell) for cell, c in zip(cells, costs) if c.seconds is not None}
        self.parallel = max(1, parallel)
        self.took = self.expected = 0.0

    def total_s(self) -> float | None:
        """The whole grid's estimate, before any cell ran."""
        if not self.left or None in self.left.values():
            return None
        return self._span(self.left.values())

    def _span(self, seconds) -> float:
        """The time `seconds` of cells take on the workers: their sum shared out, or the
        longest cell where it alone is longer (a cell runs on one worker)."""
        seconds = list(seconds)
        return max(sum(seconds) / self.parallel, max(seconds, default=0.0))

    def finished(self, cell, rec) -> None:
        expected = self.left.pop(id(cell), None)
        cell_s = rec.timings.cell_s if rec.ok and rec.timings else None
        if expected and cell_s and id(cell) in self.measured:  # a guess sets no pace
            self.took += cell_s
            self.expected += expected

    def left_s(self) -> float | None:
        if None in self.left.values():
            return None
        pace = self.took / self.expected if self.expected else 1.0
        return pace * self._span(self.left.values())
