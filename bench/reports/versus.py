"""Every variant of a run folder against named references (`report DIR --versus ease slim
ials`): per (dataset, split) table of the folder, each variant's mean over seeds beside each
reference's, the mean per-user difference paired by (seed, user), and the Wilcoxon signed-rank
p-value, Holm-corrected over every comparison of the table, so that "above every reference"
is a claim the family of tests supports. Written to `versus.md`."""

from __future__ import annotations

import math
from pathlib import Path

from aebench.bench.evaluation import stats
from aebench.bench.reports import report
from aebench.bench.runs import records
from tabulate import tabulate

FILE = "versus.md"


def rows(run_dir: Path, cells: dict[str, list[records.Record]], references: list[str],
         metric: str, higher: bool, alpha: float = stats.ALPHA) -> list[dict]:
    """One row per (variant, reference) of one table, with Holm over all of them."""
    out = []
    for ref in references:
        if ref not in cells:
            continue
        for model, recs in cells.items():
            if model == ref:
                continue
            a, b = stats.pooled_pairs(run_dir, recs, cells[ref], metric)
            t = stats.paired(a, b) if len(a) else {"n": 0, "mean_diff": math.nan,
                                                   "wilcoxon_p": math.nan}
            mine = stats.mean_ci([r.metrics.get(metric) for r in recs])["mean"]
            theirs = stats.mean_ci([r.metrics.get(metric) for r in cells[ref]])["mean"]
            out.append({"model": model, "reference": ref, "mean": mine, "ref_mean": theirs,
                        "pairs": t["n"], "mean_diff": t["mean_diff"], "p": t["wilcoxon_p"]})
    adjusted = stats.holm([r["p"] for r in out])
    for r, p in zip(out, adjusted):
        r["p_holm"] = float(p)
        better = r["mean_diff"] > 0 if higher else r["mean_diff"] < 0
        r["verdict"] = ("—" if not math.isfinite(p) else
                        ("above" if better else "below") if p < alpha else "level")
    return out


def markdown(run_dir: Path, recs: list[records.Record], references: list[str],
             alpha: float = stats.ALPHA) -> str:
    """Every table of the folder (ranking, and rating where its variants rate)."""
    parts = [f"# Against {', '.join(references)}", "",
             "Each variant against each reference of its table (same dataset, split, device, "
             "mode and recipe): means over seeds, the mean per-user difference (variant − "
             "reference) paired by (seed, user), and the Wilcoxon signed-rank p-value, "
             f"Holm-corrected over every comparison of the table; \"above\" / \"below\" at "
             f"{alpha:g}, else \"level\". A variant above every reference has an \"above\" "
             "on each of its rows.", ""]
    for key, cells in report.groups(recs).items():
        # strong generalisation reads Liang et al.'s NDCG@100, as its README block does
        ranking = report.STRONG if key[1] == "heldout-users" else report.RANKING
        for spec in (report.RATING, ranking):
            table = rows(run_dir, report.table_cells(cells, spec), references,
                         spec["metric"], spec["higher"], alpha)
            if not table:
                continue
            order = sorted(table, key=lambda r: (-r["mean"] if spec["higher"] else r["mean"],
                                                 r["reference"]))
            body = [[r["model"], r["reference"], report.fmt(r["mean"]),
                     report.fmt(r["ref_mean"]), report.fmt(r["mean_diff"], "+.4f"),
                     r["pairs"], report.fmt_p(r["p_holm"]), r["verdict"]] for r in order]
            metric = spec["columns"][0][0]
            parts += [f"## {report.title(key, spec)}", "",
                      tabulate(body, headers=["model", "reference", metric, f"{metric}, "
                                              "reference", f"Δ {spec['unit']}", "pairs",
                                              "p Wilcoxon (Holm)", "verdict"],
                               tablefmt="github", disable_numparse=True), ""]
            above = _above_all(order, references)
            if above is not None:
                parts += [f"Above every reference present: {above or 'none'}.", ""]
    return "\n".join(parts)


def _above_all(table: list[dict], references: list[str]) -> str | None:
    """The variants with an "above" against every reference of the table ("" for none)."""
    present = {r["reference"] for r in table}
    if not present:
        return None
    verdicts: dict[str, dict[str, str]] = {}
    for r in table:
        verdicts.setdefault(r["model"], {})[r["reference"]] = r["verdict"]
    winners = [m for m, v in verdicts.items()
               if all(v.get(ref) == "above" for ref in present if ref != m)
               and m not in present]
    return ", ".join(sorted(winners))


def write(run_dir: Path, references: list[str]) -> Path:
    run_dir = Path(run_dir)
    path = run_dir / FILE
    path.write_text(markdown(run_dir, records.read(run_dir), references) + "\n",
                    encoding="utf-8")
    return path

