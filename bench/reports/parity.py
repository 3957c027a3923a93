"""Precision parity: does a family lose accuracy when its training loss runs in bfloat16?

Per (family, dataset, split): the default-recipe cells in fp32 (one run folder) and in a low
precision (another, or the same), paired by (seed, user) over the seeds both hold; the mean
difference of the family's headline metric (RMSE for a rating model, NDCG@10 for a ranker),
the Wilcoxon signed-rank test on per-user values, Holm-corrected across the table, and the
epoch-time ratio of the two precisions measured in one `bench speed` run. Parity holds where
the low precision is not significantly worse at `alpha` after Holm and the difference is
within `TOLERANCE`; a family's default may become the low precision only where parity holds
on every dataset it ran and the low precision is faster by a margin beyond same-run noise
(`decisions`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

from bench.evaluation import stats
from bench.runs import records

TOLERANCE = 0.002                     # the issue's |difference| bound
MIN_SPEEDUP = 1.1                     # an epoch this much faster, beyond same-run noise
START, END = "<!-- parity:start -->", "<!-- parity:end -->"


def precision_of(record: dict) -> str:
    return record.get("run_config", {}).get("precision", "fp32")


def metric_of(record: dict) -> tuple[str, bool]:
    """The headline metric of a record's family and whether higher is better."""
    from bench.reports.report import rates

    return ("rmse", False) if rates(record) else ("ndcg@10", True)


def cells(recs: list[dict]) -> dict[tuple, dict[str, dict[int, dict]]]:
    """(model, dataset, split) -> precision -> seed -> record, over the successful
    default-recipe, batched, not refitted records (the last of a seed wins)."""
    out: dict[tuple, dict[str, dict[int, dict]]] = {}
    for r in recs:
        if (r.get("status") != "ok" or r.get("mode") != "batched" or records.refitted(r)
                or r.get("recipe", {}).get("name", "default") != "default"):
            continue
        key = (r["model"], r["dataset"], r["split"]["name"])
        out.setdefault(key, {}).setdefault(precision_of(r), {})[r["seed"]] = r
    return out


def epoch_ratios(speed: dict | None) -> dict[str, dict]:
    """model -> {fp32 epoch s, low epoch s, speedup} from a `bench speed --precisions fp32
    bf16 --out` file (the batched path, one run)."""
    out: dict[str, dict] = {}
    for row in (speed or {}).get("rows", []):
        if row.get("path") == "batched":
            out.setdefault(row["model"], {})[row["precision"]] = row["epoch_s"]
    return {m: {**v, "speedup": v["fp32"] / v["bf16"]} for m, v in out.items()
            if "fp32" in v and "bf16" in v}


def analyse(recs: list[dict], low: str = "bf16", speed: dict | None = None,
            alpha: float = stats.ALPHA, tolerance: float = TOLERANCE) -> pd.DataFrame:
    """One row per (family, dataset, split) holding both precisions on a common seed."""
    ratios = epoch_ratios(speed)
    rows = []
    for (model, dataset, split), by in sorted(cells(recs).items()):
        if "fp32" not in by or low not in by:
            continue
        seeds = sorted(set(by["fp32"]) & set(by[low]))
        if not seeds:
            continue
        base = [by["fp32"][s] for s in seeds]
        other = [by[low][s] for s in seeds]
        metric, higher = metric_of(base[0])
        a, b = stats.pooled_pairs(Path("."), other, base, metric)
        test = stats.paired(a, b)
        mean32 = float(np.mean([r["metrics"][metric] for r in base]))
        mean_low = float(np.mean([r["metrics"][metric] for r in other]))
        diff = mean_low - mean32
        ratio = ratios.get(model, {})
        rows.append({"model": model, "dataset": dataset, "split": split, "metric": metric,
                     "seeds": len(seeds), "fp32": mean32, low: mean_low, "diff": diff,
                     "worse": diff < 0 if higher else diff > 0, "pairs": test["n"],
                     "wilcoxon_p": test["wilcoxon_p"],
                     "epoch_fp32_s": ratio.get("fp32"), f"epoch_{low}_s": ratio.get(low),
                     "speedup": ratio.get("speedup")})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["wilcoxon_p_holm"] = stats.holm(table["wilcoxon_p"])
    table["significant_loss"] = table["worse"] & (table["wilcoxon_p_holm"] < alpha)
    table["parity"] = ~table["significant_loss"] & (table["diff"].abs() <= tolerance)
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
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return format(value, spec)


def markdown(table: pd.DataFrame, low: str = "bf16", tolerance: float = TOLERANCE) -> str:
    if table.empty:
        return f"No family holds both fp32 and {low} cells on a common seed yet."
    chosen = decisions(table, low)
    body = tabulate(
        [[r["model"], f"{r['dataset']} {r['split']}",
          "RMSE" if r["metric"] == "rmse" else "NDCG@10", r["seeds"], _f(r["fp32"]),
          _f(r[low]), f"{r['diff']:+.4f}",
          "<0.0001" if r["wilcoxon_p_holm"] < 1e-4 else _f(r["wilcoxon_p_holm"]),
          "yes" if r["parity"] else ("no: significant loss" if r["significant_loss"]
                                     else f"no: |difference| > {tolerance:g}"),
          "—" if pd.isna(r["speedup"]) else f"{r['speedup']:.2f}x", chosen[r["model"]]]
         for _, r in table.iterrows()],
        headers=["model", "dataset", "metric", "seeds", "fp32", low, f"{low} - fp32",
                 "p Wilcoxon (Holm)", "parity", f"epoch speedup in {low}", "default"],
        tablefmt="github", disable_numparse=True)
    return body


def write(run_dir: Path, base_dirs: list[Path], low: str = "bf16",
          readme: Path | None = None) -> list[Path]:
    """`run_dir/parity.md` from the records of `run_dir` and `base_dirs` (each read from its
    own folder) and `run_dir/speed-cpu.json` where it exists; with `readme`, its block."""
    recs = [{**r, "_dir": str(d)} for d in (run_dir, *base_dirs) for r in records.load(d)]
    speed_file = run_dir / "speed-cpu.json"
    speed = json.loads(speed_file.read_text()) if speed_file.is_file() else None
    body = markdown(analyse(recs, low, speed), low)
    out = run_dir / "parity.md"
    out.write_text(f"# Precision parity: {low} against fp32\n\n"
                   f"Parity: no significant loss (Wilcoxon on per-user values paired by seed "
                   f"and user, Holm across the table, 0.05) and |difference| <= {TOLERANCE}. "
                   f"Epoch speedup: fp32 / {low} epoch seconds of the batched path, one "
                   f"`bench speed` run (speed-cpu.json). Default: {low} only where parity "
                   f"holds on every dataset and {low}'s epoch is at least {MIN_SPEEDUP:g}x "
                   f"faster.\n\n" + body + "\n",
                   encoding="utf-8")
    written = [out]
    if readme is not None:
        from bench.reports.report import replace_block

        readme.write_text(replace_block(readme.read_text(encoding="utf-8"), START, END, body),
                          encoding="utf-8")
        written.append(readme)
    return written
