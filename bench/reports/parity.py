"""Precision parity: does a family lose accuracy when its training loss runs in bfloat16?

Per (family, dataset, split): a run folder's default-recipe cells in fp32 and in a low
precision, run on one machine from the same code, paired by (seed, user) over the seeds both
hold; the mean difference of the family's headline metric (RMSE for a rating model, NDCG@10
for a ranker), the Wilcoxon signed-rank test on per-user values, Holm-corrected across the
table, and the epoch-time ratio of the two precisions measured in one `bench speed` run.
Parity holds where the low precision is not significantly worse at `alpha` after Holm and the
difference is within `TOLERANCE`; a family's default may become the low precision only where
parity holds on every dataset it ran and the low precision is faster by a margin beyond
same-run noise (`decisions`).

The control applies the same test to two fp32 runs of the same cells (this folder's and
another folder's, for example the published run on another CPU): what the test calls a
difference where no precision changed, which is the floor a parity verdict reads against.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from aebench.bench.evaluation import stats
from aebench.bench.runs import records
from tabulate import tabulate

TOLERANCE = 0.002                     # the issue's |difference| bound
# An epoch this much faster is a gain beyond noise: the same code's fp32 / bf16 epoch ratio
# varies by more than a tenth between two `bench speed` runs (docs/speed.md)
MIN_SPEEDUP = 1.25
START, END = "<!-- parity:start -->", "<!-- parity:end -->"
# (model, dataset, split) -> seed -> record
Cells = dict[tuple[str, str, str], dict[int, records.Record]]


def metric_of(record: records.Record) -> tuple[str, bool]:
    """The headline metric of a record's family and whether higher is better."""
    return ("rmse", False) if record.rates else ("ndcg@10", True)


def cells(recs: list[records.Record], precision: str) -> Cells:
    """The successful default-recipe, batched, not refitted records run in `precision`, by
    cell and seed (the last of a seed wins)."""
    out: Cells = {}
    for r in recs:
        if (not r.ok or r.mode != "batched" or r.refitted or r.recipe.name != "default"
                or r.cell_precision != precision):
            continue
        out.setdefault((r.model, r.dataset, r.split_name), {})[r.seed] = r
    return out


def paired_table(a: Cells, b: Cells, alpha: float = stats.ALPHA,
                 tolerance: float = TOLERANCE) -> pd.DataFrame:
    """b against a, one row per cell both hold on a common seed: the means, b - a, whether b
    is worse, the Wilcoxon p over per-user pairs (Holm across the rows) and the verdict."""
    rows = []
    for key in sorted(set(a) & set(b)):
        seeds = sorted(set(a[key]) & set(b[key]))
        if not seeds:
            continue
        ra, rb = [a[key][s] for s in seeds], [b[key][s] for s in seeds]
        metric, higher = metric_of(ra[0])
        test = stats.paired(*stats.pooled_pairs(Path("."), rb, ra, metric))
        mean_a = float(np.mean([r.metrics[metric] for r in ra]))
        mean_b = float(np.mean([r.metrics[metric] for r in rb]))
        diff = mean_b - mean_a
        rows.append({"model": key[0], "dataset": key[1], "split": key[2], "metric": metric,
                     "seeds": len(seeds), "a": mean_a, "b": mean_b, "diff": diff,
                     "worse": diff < 0 if higher else diff > 0, "pairs": test["n"],
                     "wilcoxon_p": test["wilcoxon_p"]})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["wilcoxon_p_holm"] = stats.holm(table["wilcoxon_p"])
    table["significant_loss"] = table["worse"] & (table["wilcoxon_p_holm"] < alpha)
    table["parity"] = ~table["significant_loss"] & (table["diff"].abs() <= tolerance)
    return table


def epoch_ratios(speed: dict | None, low: str = "bf16") -> dict[str, float]:
    """model -> fp32 / `low` epoch seconds of the batched path, from one `bench speed
    --precisions fp32 LOW --out` file."""
    seconds: dict[str, dict] = {}
    for row in (speed or {}).get("rows", []):
        if row.get("path") == "batched":
            seconds.setdefault(row["model"], {})[row["precision"]] = row["epoch_s"]
    return {m: v["fp32"] / v[low] for m, v in seconds.items() if "fp32" in v and low in v}


def analyse(recs: list[records.Record], low: str = "bf16", speed: dict | None = None,
            alpha: float = stats.ALPHA, tolerance: float = TOLERANCE) -> pd.DataFrame:
    """`low` against fp32 over `recs` (one folder's records), with the epoch speedups."""
    table = paired_table(cells(recs, "fp32"), cells(recs, low), alpha, tolerance)
    if not table.empty:
        table["speedup"] = table["model"].map(epoch_ratios(speed, low)).astype(float)
    return table


def decisions(table: pd.DataFrame, low: str = "bf16") -> dict[str, str]:
    """Family -> the precision its default should run in: `low` where parity holds on every
    dataset it ran and `low`'s epoch is at least `MIN_SPEEDUP` times faster, else fp32."""
    out = {}
    for model, rows in table.groupby("model", sort=True):
        speedup = rows["speedup"].iloc[0]
        faster = not pd.isna(speedup) and speedup >= MIN_SPEEDUP
        out[model] = low if bool(rows["parity"].all()) and faster else "fp32"
    return out


def _f(value, spec: str = ".4f") -> str:
    return "—" if value is None or pd.isna(value) else format(value, spec)


def _verdict(r, tolerance: float) -> str:
    if r["parity"]:
        return "yes"
    return "no: significant loss" if r["significant_loss"] else f"no: |difference| > {tolerance:g}"


def _p(p) -> str:
    return "<0.0001" if p < 1e-4 else _f(p)


def _row(r, tolerance: float) -> list[str]:
    """The columns both tables share: the cell, its metric and seeds, the two means, their
    difference, the corrected p and the parity verdict."""
    return [r["model"], f"{r['dataset']} {r['split']}",
            "RMSE" if r["metric"] == "rmse" else "NDCG@10", r["seeds"], _f(r["a"]), _f(r["b"]),
            f"{r['diff']:+.4f}", _p(r["wilcoxon_p_holm"]), _verdict(r, tolerance)]


HEADERS = ["model", "dataset", "metric", "seeds"]


def markdown(table: pd.DataFrame, low: str = "bf16", tolerance: float = TOLERANCE) -> str:
    if table.empty:
        return f"No family holds both fp32 and {low} cells on a common seed yet."
    chosen = decisions(table, low)
    return tabulate(
        [[*_row(r, tolerance), "—" if pd.isna(r["speedup"]) else f"{r['speedup']:.2f}x",
          chosen[r["model"]]] for _, r in table.iterrows()],
        headers=[*HEADERS, "fp32", low, f"{low} - fp32", "p Wilcoxon (Holm)", "parity",
                 f"epoch speedup in {low}", "default"],
        tablefmt="github", disable_numparse=True)


def control_markdown(table: pd.DataFrame, tolerance: float = TOLERANCE) -> str:
    """The same test on two fp32 runs: 'parity' here is what the criterion says where only
    the machine (and so the floating-point trajectory) changed."""
    if table.empty:
        return "No cell holds fp32 records in both folders on a common seed."
    return tabulate(
        [_row(r, tolerance) for _, r in table.iterrows()],
        headers=[*HEADERS, "fp32 there", "fp32 here", "here - there", "p Wilcoxon (Holm)",
                 "passes the parity criterion"],
        tablefmt="github", disable_numparse=True)


def _load(folder: Path) -> list[records.Record]:
    return records.read(folder)


def write(run_dir: Path, control_dirs: list[Path] = (), low: str = "bf16",
          readme: Path | None = None) -> list[Path]:
    """`run_dir/parity.md`: its `low` cells against its fp32 cells, with the epoch ratios of
    `run_dir/speed-cpu.json` where it exists, and its fp32 cells against those of
    `control_dirs`; with `readme`, the main table as its block, and the table of
    `run_dir/speed-cpu-peers.json` (the same machine's peers) where it exists as its."""
    recs = _load(run_dir)
    speed_file = run_dir / "speed-cpu.json"
    speed = json.loads(speed_file.read_text()) if speed_file.is_file() else None
    body = markdown(analyse(recs, low, speed), low)
    text = (f"# Precision parity: {low} against fp32\n\n"
            f"Both precisions ran from the same code on one machine. Parity: no significant "
            f"loss (Wilcoxon on per-user values paired by seed and user, Holm across the "
            f"table, 0.05) and |difference| <= {TOLERANCE:g}. Epoch speedup: fp32 / {low} "
            f"epoch seconds of the batched path in one `bench speed` run (speed-cpu.json). "
            f"Default: {low} only where parity holds on every dataset and {low}'s epoch is at "
            f"least {MIN_SPEEDUP:g}x faster.\n\n{body}\n")
    for folder in control_dirs:
        control = paired_table(cells(_load(folder), "fp32"), cells(recs, "fp32"))
        text += (f"\n## Control: this folder's fp32 against {folder}'s fp32\n\n"
                 f"The same test where no precision changed (the same variants, splits and "
                 f"seeds; another run, machine or commit): how often it calls two fp32 "
                 f"trainings different, and whether they would pass the parity "
                 f"criterion.\n\n{control_markdown(control)}\n")
    out = run_dir / "parity.md"
    out.write_text(text, encoding="utf-8")
    written = [out]
    if readme is not None:
        from aebench.bench.reports.blocks import Pages
        from aebench.bench.speed import peers

        pages = Pages(readme)
        pages.replace(START, END, body)
        peers_file = run_dir / "speed-cpu-peers.json"
        if peers_file.is_file():  # the same machine's peers, in both precisions
            pages.replace(peers.START, peers.END, peers.markdown(
                json.loads(peers_file.read_text())["rows"]))
        written += pages.save()
    return written
