"""Where a grid's time goes (`budget.md` of a run folder): per cell, the training epochs, the
validation reads (and keeping the best state), the one test evaluation and the rest (reading
the data and carving, building the model and its engine, copying the weights out), and outside
the cells the start-up and the report that `grids.jsonl` holds: the parts say where a grid's
time goes and what to remove to meet a budget.

Records written before these timings existed have only `fit_s` and `eval_s`: their other
parts read "—" and their cell time is the sum of those two (marked "≥").
"""

from __future__ import annotations

from pathlib import Path

from aebench.bench.runs import records
from tabulate import tabulate

PARTS = ("fit_s", "valid_s", "eval_s", "other_s")


def cell_parts(record: records.Record) -> dict:
    """The seconds of one ok record by part. `fit_s` adds a refitted cell's selection fit when
    the cell trained it itself; `exact` is False for records without `cell_s`."""
    t, refit = record.timings, record.refit
    selection = 0.0 if refit is None or refit.selected_in else refit.selection_fit_s or 0.0
    fit = t.fit_s + selection
    cell, valid = t.cell_s, t.valid_s
    exact = cell is not None and valid is not None
    return {"fit_s": fit, "valid_s": valid, "valid_reads": t.valid_reads,
            "eval_s": t.eval_s, "setup_s": t.setup_s,
            "other_s": cell - fit - valid - t.eval_s if exact else None,
            "cell_s": cell if exact else fit + t.eval_s, "exact": exact,
            "threads": record.env.get("torch_threads")}


def breakdown(recs: list[records.Record]) -> list[dict]:
    """One row per cell (its latest ok record), the most expensive first."""
    from aebench.bench.runs.runner import record_key

    latest = {record_key(r): r for r in recs if r.ok}
    rows = [{"model": r.model, "dataset": r.dataset, "seed": r.seed,
             "label": r.label, **cell_parts(r)} for r in latest.values()]
    return sorted(rows, key=lambda row: -row["cell_s"])


def per_variant(rows: list[dict]) -> list[dict]:
    """Per (model, dataset, recipe): the median over seeds of each part, the cost of one seed
    of that cell (what `run --all` pays for it)."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["model"], row["dataset"], row["label"]), []).append(row)
    out = []
    for (model, dataset, label), group in groups.items():
        med = {part: _median([g[part] for g in group]) for part in (*PARTS, "cell_s")}
        out.append({"model": model, "dataset": dataset, "label": label, "seeds": len(group),
                    "exact": all(g["exact"] for g in group), **med})
    return sorted(out, key=lambda row: -row["cell_s"])


def _median(values: list) -> float | None:
    known = sorted(v for v in values if v is not None)
    return known[len(known) // 2] if known else None


def totals(rows: list[dict], grids: list[dict]) -> dict:
    """Seconds per part over all cells (None for a part no record timed), and the time
    outside them over all grid lines."""
    out = {part: (sum(row[part] for row in rows if row[part] is not None)
                  if any(row[part] is not None for row in rows) else None) for part in PARTS}
    out["cells_s"] = sum(row["cell_s"] for row in rows)
    out["startup_s"] = sum(g.get("startup_s") or 0.0 for g in grids)
    out["report_s"] = sum(g.get("report_s") or 0.0 for g in grids)
    out["wall_s"] = sum((g.get("startup_s") or 0.0) + (g.get("cells_s") or 0.0)
                        + (g.get("report_s") or 0.0) for g in grids)
    return out


def _s(value: float | None, approx: bool = False) -> str:
    return "—" if value is None else ("≥ " if approx else "") + f"{value:.1f}"


def markdown(recs: list[records.Record], grids: list[dict]) -> str:
    rows = breakdown(recs)
    if not rows:
        return "# Time budget\n\nNo ok records.\n"
    total = totals(rows, grids)
    variants = per_variant(rows)
    one_seed = sum(v["cell_s"] for v in variants)
    summary = [[v["model"], v["dataset"], v["label"], v["seeds"], _s(v["fit_s"]),
                _s(v["valid_s"]), _s(v["eval_s"]), _s(v["other_s"]),
                _s(v["cell_s"], not v["exact"]), f"{100 * v['cell_s'] / one_seed:.1f}"]
               for v in variants]
    table = [[r["model"], r["dataset"], r["seed"], r["label"], r["threads"] or "—",
              _s(r["fit_s"]), _s(r["valid_s"]) + ("" if r["valid_reads"] is None
                                                 else f" ({r['valid_reads']})"),
              _s(r["eval_s"]), _s(r["setup_s"]), _s(r["other_s"]),
              _s(r["cell_s"], not r["exact"]), f"{100 * r['cell_s'] / total['cells_s']:.1f}"]
             for r in rows]
    lines = ["# Time budget", "",
             "Seconds per cell, from the records (`python -m bench report DIR` writes this "
             "file): training epochs (fit), validation reads and keeping the best state "
             "(reads in brackets), the one test evaluation, reading the data and carving "
             "(setup; cached after a dataset's first cell), and the rest of the cell "
             "(setup, building the model and engine, copying the weights). Cells ran at "
             "the threads shown, possibly beside other jobs: a budget, not a speed claim.", "",
             "## One seed of each cell (median over seeds)", "",
             tabulate(summary, headers=["model", "dataset", "recipe", "seeds", "fit",
                                        "validation", "test eval", "other", "cell",
                                        "% of one seed"],
                      tablefmt="github", disable_numparse=True), "",
             f"One seed of each of these {len(variants)} cells: {one_seed / 60:.1f} min"
             + ("" if all(v["exact"] for v in variants) else
                " (at least: cells marked ≥ count fit and evaluation only)") + ".", "",
             "## Every cell", "",
             tabulate(table, headers=["model", "dataset", "seed", "recipe", "threads", "fit",
                                      "validation (reads)", "test eval", "setup", "other",
                                      "cell", "% of cells"],
                      tablefmt="github", disable_numparse=True), ""]
    inexact = sum(not r["exact"] for r in rows)
    parts = ", ".join(f"{name} " + ("not timed" if total[part] is None
                                    else f"{total[part] / 60:.1f}")
                      for name, part in zip(("fit", "validation", "test evaluation", "other"),
                                            PARTS))
    lines.append(f"All {len(rows)} cells: {total['cells_s'] / 60:.1f} min ({parts})"
                 + (f"; {inexact} cells recorded before the parts were timed count fit and "
                    f"evaluation only" if inexact else "") + ".")
    if grids:
        lines.append(f"Outside the cells, over {len(grids)} `run` invocations "
                     f"(`grids.jsonl`): start-up {total['startup_s']:.1f} s, report "
                     f"{total['report_s']:.1f} s; their wall time {total['wall_s'] / 60:.1f} "
                     f"min.")
    return "\n".join(lines) + "\n"


def write(run_dir: Path) -> Path:
    run_dir = Path(run_dir)
    path = run_dir / "budget.md"
    path.write_text(markdown(records.read(run_dir), records.load_grids(run_dir)),
                    encoding="utf-8")
    return path
