"""Planning a grid: which cells run, which a variant cannot run (and why), which a resumed
folder already holds, and what the rest will cost in time and disk. The CLI's `run` builds a
`Plan` and hands it to `grid.run_plan`; `--dry-run` prints it instead."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from aebench.bench.runs import records
from aebench.bench.runs.runner import (
    RunConfig,
    missing_features,
    model_config,
    not_cold_items,
    not_inductive,
    pending,
)

from aebench import datasets, models

RECORD_BYTES = 64 * 1024  # one runs.jsonl line, its history included, at most about this


@dataclass(frozen=True)
class Cost:
    """What a cell is expected to cost: the published run's seconds for it (None where that
    run has no such cell) and the estimated peak resident memory of the process that runs it
    (`peak_mb`)."""

    seconds: float | None
    peak_mb: float
    values: int = 0  # numbers in the cell's saved weights


@dataclass(frozen=True)
class Plan:
    """What a `run` will do."""

    cells: tuple[RunConfig, ...]  # the cells to train, in order
    skipped: tuple[str, ...]      # why a variant cannot run a cell it was asked for
    done: int                     # cells of the grid already ok in `out` (a resume)
    out: Path
    costs: tuple[Cost, ...] = ()  # one per cell, where `with_costs` set them


def applicable(cells: list[RunConfig], cache) -> tuple[list[RunConfig], list[str]]:
    """The cells a variant can run, and why the others are skipped: a rating model on an
    implicit dataset or under a protocol that keeps interactions only (no ratings to learn),
    a model that is not inductive under a held-out-users protocol, one that reads no item
    features under a protocol that holds out whole items, and one that reads a kind of
    features the dataset lacks."""
    keep, skipped = [], {}
    for c in cells:
        split, cfg = c.split_name, models.config(c.model)
        if cfg.feedback == "explicit" and cache.dataset(c.dataset).implicit:
            skipped[c.model, c.dataset] = (f"{c.model} learns from ratings; {c.dataset} is "
                                           f"implicit (no ratings)")
        elif cfg.feedback == "explicit" and split in datasets.splits.INTERACTIONS:
            skipped[c.model, c.dataset] = (f"{c.model} learns from ratings; {split} keeps "
                                           f"interactions only")
        elif split in datasets.splits.HELDOUT_USERS and not cfg.inductive:
            skipped[c.model, c.dataset] = not_inductive(c.model, split)
        elif split in datasets.splits.COLD_ITEMS and "item" not in cfg.features:
            skipped[c.model, c.dataset] = not_cold_items(c.model, split)
        elif lacking := missing_features(cfg, c.dataset, {
                k: getattr(cache.dataset(c.dataset), f"{k}_features") is not None
                for k in cfg.features}, c.model):
            skipped[c.model, c.dataset] = lacking
        else:
            keep.append(c)
    return keep, list(dict(sorted(skipped.items())).values())


def with_experiment(cells: list[RunConfig], exp) -> list[RunConfig]:
    """Cells as the experiment file sets them: a model table's config overrides (recipe
    `custom`), and the definition of a user's dataset, which a worker registers itself."""
    out = []
    for c in cells:
        if exp is not None and c.model in exp.overrides:
            merged = {**dict(c.overrides), **exp.overrides[c.model]}
            c = dataclasses.replace(c, overrides=tuple(sorted(merged.items())),
                                    recipe="custom" if c.recipe == "default" else c.recipe)
        out.append(dataclasses.replace(c, dataset_file=datasets.registered(c.dataset)))
    return out


def with_recipes(cells: list[RunConfig], recipes: dict) -> list[RunConfig]:
    """Cells with a tuned recipe for their (model, dataset) in `recipes` use it."""
    out = []
    for c in cells:
        tuned = recipes.get(c.model, {}).get(c.dataset)
        out.append(c if tuned is None else dataclasses.replace(
            c, overrides=tuple(sorted(tuned["overrides"].items())), recipe="tuned",
            study=tuned["study"]))
    return out


def plan(cells: list[RunConfig], out: Path, done: list[records.Record], cache) -> Plan:
    """The plan of `cells` into `out`, given the records `done` already there."""
    todo = pending(cells, done)
    already = len(cells) - len(todo)
    todo, skipped = applicable(todo, cache)
    return Plan(tuple(todo), tuple(skipped), already, Path(out))


def _on_meta(cell: RunConfig, cache):
    """The cell's variant built on torch's meta device (no memory is allocated), its config
    and its (rows, columns)."""
    import torch

    split = cache.split(cell.dataset, cell.split_name, cell.seed)
    mcfg = model_config(cell)
    rows, cols = (split.n_users, split.n_items) if mcfg.rows == "user" else (
        split.n_items, split.n_users)
    with torch.device("meta"):
        module = models.get(cell.model).make(
            rows, cols, mcfg, mcfg.side(split.user_side, split.item_side))
    return module, mcfg, (rows, cols)


# a batch's scores (masked in place) and what was made on the way (the column blocks' parts
# of an item-item model's scores) or is made after (top-k's workspace), float32
SCORE_COPIES = 2
# What a fresh process grew by beyond the terms `peak_mb` names, measured on synthetic
# 3000 x 6000 and 6000 x 12000 for 13 families (`tests/runs/test_memory_estimate.py` checks
# two): the engines' own working memory (autograd, dense batches, compiled kernels) by kind
# of trainer, and a share of the data again (evaluation's and validation's index arrays)
ENGINE_MB = {"epochs": 300.0, "closed-form": 50.0}
FULL_BATCH_COPIES = 3  # rows x columns float32 arrays a full-batch L-BFGS step holds
DATA_AGAIN = 0.25


def peak_mb(cell: RunConfig, cache, base_mb: float) -> float:
    """The estimated peak resident memory of a process running `cell` (see `_footprint`)."""
    return _footprint(cell, cache, base_mb)[1]


def _footprint(cell: RunConfig, cache, base_mb: float) -> tuple[int, float]:
    """(The numbers in the cell's saved weights, the estimated peak resident memory of a
    process running it), from one build on the meta device. The peak: `base_mb` (the
    process with its libraries imported, measured by the caller), what loading the cell's
    dataset and splits grew this process by (measured: `SplitCache.resident_mb`), the fit's
    state (`working_copies` float32 copies of the saved weights, the family's own figure) and
    the scores evaluation holds at once (a batch of rows; every row for a family that scores
    the whole matrix, and for one whose rows are items, whose scores are turned into users'
    rows whole), and the engines' measured overheads (`ENGINE_MB`, `DATA_AGAIN`); or, where
    more, the most that loading the data held at once (measured too)."""
    from aebench.bench.engines.batched import LBFGS_MEMORY
    from aebench.bench.engines.train import recipe_for
    from aebench.bench.evaluation.evaluate import rows_per_batch

    module, mcfg, (rows, cols) = _on_meta(cell, cache)
    values = sum(t.numel() for t in module.state_dict().values())
    copies, batch = module.working_copies, 0
    recipe = recipe_for(mcfg, cell.mode) if module.trainer == "epochs" else None
    if recipe is not None and recipe.optimizer == "lbfgs":
        # its history of steps and gradient changes (2 x 10 copies), and the kernel
        # autoencoders' full batch: every row's dense input, outputs and their gradients
        copies = max(copies, 2 * LBFGS_MEMORY + 4)
        batch = 4 * FULL_BATCH_COPIES * rows * cols
    state = 4 * values * copies + batch
    held = rows if mcfg.rows == "item" else min(rows, rows_per_batch(module, (rows, cols)))
    scores = 4 * SCORE_COPIES * held * cols
    data = cache.resident_mb.get(cell.dataset, 0.0)
    running = (base_mb + (1 + DATA_AGAIN) * data + ENGINE_MB.get(module.trainer, 300.0)
               + (state + scores) / 2**20)
    return values, max(running, base_mb + cache.loading_mb.get(cell.dataset, 0.0))


def with_costs(p: Plan, cache, base_mb: float, published: list[records.Record]) -> Plan:
    """`p` with each cell's `Cost`."""
    costs = []
    for c in p.cells:
        values, peak = _footprint(c, cache, base_mb)
        costs.append(Cost(published_seconds(c, published), peak, values))
    return dataclasses.replace(p, costs=tuple(costs))


def too_big(p: Plan, available_mb: float | None) -> list[str]:
    """Why cells of `p` cannot fit this machine's memory (each alone: the executors never
    start a cell beside others that it does not fit with)."""
    if available_mb is None:
        return []
    return [f"{c.model} on {c.dataset} (seed {c.seed}) needs about {cost.peak_mb:,.0f} MB; "
            f"this machine has {available_mb:,.0f} MB available"
            for c, cost in zip(p.cells, p.costs) if cost.peak_mb > available_mb]


def output_bytes(p: Plan, cache) -> int:
    """What a plan `with_costs` writes, by estimate: per cell its record, its float32
    weights (`Cost.values`) and its per-user values (a few float64 metrics per user)."""
    total = 0
    for c, cost in zip(p.cells, p.costs, strict=True):
        split = cache.split(c.dataset, c.split_name, c.seed)
        total += RECORD_BYTES + 4 * cost.values + 8 * 24 * split.n_users
    return total


def published_seconds(cell: RunConfig, published: list[records.Record]) -> float | None:
    """Seconds a cell took in the published run (median over seeds; the whole cell where the
    record timed it, else fit plus evaluation), if it ran."""
    from aebench.bench.reports.budget import cell_parts

    same = [r for r in published if r.model == cell.model and r.dataset == cell.dataset
            and r.ok and r.mode == cell.mode]
    if not same:
        return None
    # the code that ran last: a family sped up since its first published seeds is timed by
    # its newest records
    newest = max(same, key=lambda r: r.started).env.get("git_commit")
    times = sorted(cell_parts(r)["cell_s"] for r in same if r.env.get("git_commit") == newest)
    return times[len(times) // 2]


TIMED = (Path("results/published"), Path("results/budget"))  # the runs the costs read


def published_records(roots=TIMED) -> list[records.Record]:
    """The published runs' records, where this checkout has them (the dry run's costs):
    the published grid and the budget grid (a whole `run --all`)."""
    roots = [roots] if isinstance(roots, Path) else roots
    return [r for root in roots if (Path(root) / "runs.jsonl").is_file()
            for r in records.read(Path(root))]
