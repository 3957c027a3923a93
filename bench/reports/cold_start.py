"""The cold-start study's page (`results/cold-start/README.md` and `cold_users.png`), from
the records of its grids alone:

- cold items (`results/cold-start/items`): per dataset the rating and ranking comparisons of
  every variant that reads item features (the report's own tables: mean over seeds, 95%
  interval, paired tests against the best, Holm), and the claim the study asks for, the best
  hybrid autoencoder against the best reference, with its paired test;
- cold users (`results/cold-start/users-N`): each variant's figure against the ratings a
  new user has given (0, 1, 5, 10), a table and a plot;
- the warm cost (the warm figures in `results/published`): each hybrid against its plain
  parent on the published split, the difference and its paired test;
- the same with tuned recipes (`items-tuned`, `users-N-tuned`): every variant, hybrid and
  reference, with the recipe its study chose on the protocol's validation part at the common
  budget (`tuning-items`, `tuning-users`), which the verdict is drawn from.

    python -m aebench.bench.reports.cold_start [results/cold-start] [results/published]
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
from aebench.bench.evaluation import stats
from aebench.bench.reports import report
from aebench.bench.runs import records
from aebench.bench.runs.records import Record
from tabulate import tabulate

BUDGETS = (0, 1, 5, 10)
DATASETS = ("ml-100k", "ml-1m")
# a hybrid and the variant it adds side information to (a parent that reads none)
PARENTS = {"cfn-i-side": "cfn-i", "dropoutnet-i": "cfn-i", "cfn-u-side": "cfn-u",
           "dropoutnet-u": "cfn-u", "mult-vae-side": "mult-vae", "side-mf": "mf"}
WARM_BAND = 0.002  # "no warm cost": within this much RMSE / NDCG@10 of the parent


def _read(folder: Path) -> list[Record]:
    path = folder / "runs.jsonl"
    return report.ok(records.read(path)) if path.is_file() else []


def _cells(recs: list[Record], dataset: str) -> dict[str, list[Record]]:
    for key, cells in report.groups(recs).items():
        if key[0] == dataset:
            return cells
    return {}


def _best(cells: dict[str, list[Record]], spec: dict, kind: str) -> str | None:
    """The variant of `kind` (autoencoder / reference) with the best mean of `spec`."""
    means = {m: float(np.mean([r.metrics[spec["metric"]] for r in rs]))
             for m, rs in report.table_cells(cells, spec).items() if rs[0].kind == kind}
    if not means:
        return None
    pick = max if spec["higher"] else min
    return pick(means, key=means.get)


def _test(run_dir: Path, a: list[Record], b: list[Record], metric: str) -> dict:
    x, y = stats.pooled_pairs(run_dir, a, b, metric)
    if not len(x):
        return {"n": 0, "mean_diff": math.nan, "wilcoxon_p": math.nan}
    return stats.paired(x, y)


def _mean(recs: list[Record], metric: str) -> float:
    return float(np.mean([r.metrics[metric] for r in recs]))


def claims(folders: list[tuple[str, Path, list[Record]]]) -> tuple[str, list[dict]]:
    """Per grid (a label, its folder, its records), dataset and metric, the best
    autoencoder (under cold-items every one that runs is a hybrid) against the best
    reference: means over seeds, the mean per-user difference, the Wilcoxon p-value
    Holm-corrected over the table's claims."""
    rows = []
    for label, run_dir, recs in folders:
        for dataset, spec in ((d, s) for d in DATASETS for s in (report.RATING, report.RANKING)):
            cells = _cells(recs, dataset)
            ae, ref = _best(cells, spec, "autoencoder"), _best(cells, spec, "reference")
            if ae is None or ref is None:
                continue
            t = _test(run_dir, cells[ae], cells[ref], spec["metric"])
            rows.append({"grid": label, "dataset": dataset, "metric": spec["metric"],
                         "ae": ae, "ref": ref,
                         "ae_mean": _mean(cells[ae], spec["metric"]),
                         "ref_mean": _mean(cells[ref], spec["metric"]),
                         "diff": t["mean_diff"], "p": t["wilcoxon_p"], "n": t["n"],
                         "seeds": min(len(cells[ae]), len(cells[ref])),
                         "higher": spec["higher"]})
    for row, p in zip(rows, stats.holm([r["p"] for r in rows])):
        better = (row["ae_mean"] > row["ref_mean"]) == row["higher"]
        row["p_holm"] = p
        row["verdict"] = ("the autoencoder is better" if better and p < stats.ALPHA else
                          "the reference is better" if not better and p < stats.ALPHA else
                          "no difference shown")
    table = tabulate(
        [[r["grid"], r["dataset"], r["metric"].upper(), f"{r['ae']} {report.fmt(r['ae_mean'])}",
          f"{r['ref']}{report.REFERENCE_MARK} {report.fmt(r['ref_mean'])}",
          report.fmt(r["diff"], "+.4f"), report.fmt_p(r["p_holm"]), r["seeds"], r["verdict"]]
         for r in rows],
        headers=["grid", "dataset", "metric", "best autoencoder", "best reference",
                 "Δ per user (autoencoder − reference)", "p Wilcoxon (Holm)", "seeds", "verdict"],
        tablefmt="github", disable_numparse=True)
    return table, rows


TUNED = "-tuned"  # the folder suffix of the grids that run tuned recipes


def users(root: Path, suffix: str = "") -> dict[int, list[Record]]:
    """Each budget's records (`root/users-N` + `suffix`), read once for the page and the
    plot."""
    return {b: _read(root / f"users-{b}{suffix}") for b in BUDGETS}


def curves(by_budget: dict[int, list[Record]]) -> dict[str, dict[str, dict[int, list[Record]]]]:
    """dataset -> variant -> budget -> its records."""
    out: dict[str, dict[str, dict[int, list[Record]]]] = {}
    for b, recs in by_budget.items():
        for r in recs:
            out.setdefault(r.dataset, {}).setdefault(r.model, {}).setdefault(b, []).append(r)
    return out


def curve_table(data: dict[str, dict[int, list[Record]]], metric: str) -> str:
    rows = []
    for model in sorted(data):
        by_budget = data[model]
        first = next(iter(by_budget.values()))[0]
        if metric not in first.metrics or first.metrics.get(metric) is None:
            continue
        cells = []
        for b in BUDGETS:
            recs = by_budget.get(b, [])
            if not recs:
                cells.append("—")
                continue
            s = stats.mean_ci([r.metrics[metric] for r in recs])
            cells.append(f"{report.fmt(s['mean'])} ± {report.fmt(s['std'])} ({len(recs)})"
                         if len(recs) > 1 else report.fmt(s["mean"]))
        mark = report.REFERENCE_MARK if first.kind == "reference" else ""
        rows.append([model + mark, *cells])
    return tabulate(rows, headers=["variant", *(f"{b} rating{'s' * (b != 1)}" for b in BUDGETS)],
                    tablefmt="github", disable_numparse=True)


def warm_cost(warm: Path) -> str:
    """Each hybrid against its parent on the published (warm) split, per dataset."""
    recs = _read(warm)
    rows = []
    for dataset in DATASETS:
        cells = {}
        for key, c in report.groups(recs).items():
            if key[0] == dataset and key[4] == "default":
                cells = c
        for hybrid, parent in PARENTS.items():
            if hybrid not in cells or parent not in cells:
                continue
            spec = report.RATING if cells[hybrid][0].rates else report.RANKING
            metric = spec["metric"]
            diff = _mean(cells[hybrid], metric) - _mean(cells[parent], metric)
            rows.append({"dataset": dataset, "pair": f"{hybrid} / {parent}", "metric": metric,
                         "hybrid": _mean(cells[hybrid], metric),
                         "parent": _mean(cells[parent], metric), "diff": diff,
                         "cost": -diff if spec["higher"] else diff,  # > 0: worse when warm
                         "p": _test(warm, cells[hybrid], cells[parent], metric)["wilcoxon_p"],
                         "seeds": min(len(cells[hybrid]), len(cells[parent]))})
    ps = stats.holm([r["p"] for r in rows])
    return tabulate(
        [[r["dataset"], r["pair"], r["metric"].upper(), report.fmt(r["hybrid"]),
          report.fmt(r["parent"]), report.fmt(r["diff"], "+.4f"), report.fmt_p(p),
          "none (within 0.002)" if r["cost"] <= WARM_BAND else f"{r['cost']:.4f}",
          r["seeds"]] for r, p in zip(rows, ps)],
        headers=["dataset", "hybrid / parent", "metric", "hybrid", "parent",
                 "Δ (hybrid − parent)", "p Wilcoxon (Holm)", "warm cost", "seeds"],
        tablefmt="github", disable_numparse=True)


def plot(data: dict[str, dict[str, dict[int, list[Record]]]], out: Path,
         name: str = "cold_users.png", recipes: str = "default recipes") -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [d for d in DATASETS if d in data]
    if not shown:
        return None
    fig, axes = plt.subplots(1, len(shown), figsize=(6 * len(shown), 4.2), squeeze=False)
    for ax, dataset in zip(axes[0], shown):
        for model in sorted(data[dataset]):
            by = data[dataset][model]
            xs = [b for b in BUDGETS if b in by]
            ys = [_mean(by[b], "ndcg@10") for b in xs]
            style = "--" if by[xs[0]][0].kind == "reference" else "-"
            ax.plot(xs, ys, style, marker="o", label=model)
        ax.set_xticks(BUDGETS)
        ax.set_xlabel("ratings the new user has given")
        ax.set_ylabel("NDCG@10 (mean over seeds)")
        ax.set_title(f"{dataset}: cold users, {recipes}")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc="best")
    fig.tight_layout()
    path = out / name
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return path


def tuned_part(root: Path, by_budget: dict[int, list[Record]]) -> list[str]:
    """The tuned grids' section: the claims, the cold-items tables and the cold-users
    curves, every variant with the recipe its study chose."""
    items = _read(root / f"items{TUNED}")
    if not items and not any(by_budget.values()):
        return []
    parts = [
        "## Tuned recipes: the verdict",
        "",
        "Every variant that can score a cold row, hybrid autoencoders and references alike, "
        "with the recipe its study chose on the protocol's own validation part, at the "
        "budget every published study gets (30 trials on ml-100k, 10 on ml-1m, seed 0; "
        "`tuning-items/` on cold-items' validation films, `tuning-users/` on the validation "
        "users given 5 ratings, whose recipes every budget's grid reads; popularity has "
        "nothing to tune). Grids: `items-tuned/`, `users-N-tuned/`.",
        "",
        "**Best autoencoder against best reference, tuned** (Wilcoxon over per-user values "
        "paired by seed and user, Holm over this table)",
        "",
        claims([(f"cold-items{TUNED}", root / f"items{TUNED}", items)]
               + [(f"cold-users-{b}{TUNED}", root / f"users-{b}{TUNED}", by_budget[b])
                  for b in BUDGETS if by_budget[b]])[0],
        "",
    ]
    parts += items_tables(root / f"items{TUNED}", items, ", tuned")
    data = curves(by_budget)
    if data:
        parts += ["![NDCG@10 against ratings given, tuned](cold_users_tuned.png)", ""]
    return parts + curve_tables(data, ", cold users, tuned")


def items_tables(run_dir: Path, items: list[Record], tag: str = "") -> list[str]:
    """The cold-items grid's rating and ranking comparisons, per dataset."""
    parts = []
    for dataset in DATASETS:
        cells = _cells(items, dataset)
        for spec in (report.RATING, report.RANKING):
            _, md = report.comparison(run_dir, cells, spec) if cells else (None, "")
            if md:
                parts += [f"**{spec['title']}, {dataset} cold-items{tag}**", "", md, ""]
    return parts


def curve_tables(data: dict[str, dict[str, dict[int, list[Record]]]], tag: str = "",
                 rmse_note: str = "") -> list[str]:
    """The cold-users curves as tables, NDCG@10 and RMSE per dataset."""
    parts = []
    for dataset in DATASETS:
        if dataset in data:
            parts += [f"**NDCG@10, {dataset}{tag}**", "", curve_table(data[dataset], "ndcg@10"),
                      "", f"**RMSE, {dataset}{tag}**{rmse_note}", "",
                      curve_table(data[dataset], "rmse"), ""]
    return parts


def markdown(root: Path, warm: Path, by_budget: dict[int, list[Record]] | None = None,
             tuned: dict[int, list[Record]] | None = None) -> str:
    items = _read(root / "items")
    by_budget = users(root) if by_budget is None else by_budget
    tuned = users(root, TUNED) if tuned is None else tuned
    parts = [
        "# Cold start: films and people nobody has rated yet",
        "",
        "Generated from the records by `python -m aebench.bench.reports.cold_start`; the grids "
        "and their experiment files are the folders beside this page (`items/`, `users-0/`, "
        "`users-1/`, `users-5/`, `users-10/`, and their `-tuned` twins), the warm figures "
        "those of `results/published`. Protocols, variants and how to read them: "
        "`docs/cold-start.md`. " + report.REFERENCE_MARK.strip() + " marks a reference.",
        "",
        *tuned_part(root, tuned),
        "## Default recipes",
        "",
        "Each variant's registered recipe (chosen on validation by hand, see its note).",
        "",
        "### Cold items (`cold-items`)",
        "",
        "A seeded 10% of the films, stratified by popularity, have every rating held out (5% "
        "validation, 5% test); a held-out film is scored from its genres and year alone and "
        "ranked among the held-out films (NDCG@10 over users with a relevant one). Only "
        "variants that read item features can run; the others are skipped with the reason "
        "(`items/run.log`).",
        "",
        "**The claim: best hybrid autoencoder against best reference**",
        "",
        claims([("cold-items", root / "items", items)])[0] if items else "not run yet",
        "",
    ]
    parts += items_tables(root / "items", items)
    data = curves(by_budget)
    parts += [
        "### Cold users (`cold-users-0`, `-1`, `-5`, `-10`)",
        "",
        "10% of the users with more than 10 ratings held out for validation and 10% for test, "
        "the same users and the same scored ratings at every budget; a held-out user gives "
        "the model 0, 1, 5 or 10 ratings (and their demographics). Mean ± std over seeds "
        "(seeds in brackets). Only variants that score a user they never trained on run.",
        "",
        "![NDCG@10 against ratings given](cold_users.png)",
        "",
        "**At each budget: the best autoencoder against the best reference** (Wilcoxon over "
        "per-user values paired by seed and user, Holm over this table)",
        "",
        claims([(f"cold-users-{b}", root / f"users-{b}", by_budget[b])
                for b in BUDGETS])[0],
        "",
    ]
    parts += curve_tables(data, rmse_note=" (variants that predict ratings)")
    parts += [
        "## Warm cost (`results/published`: ml-100k u1, ml-1m random-90-10)",
        "",
        "Each hybrid against the variant it adds side information to, on warm data: the "
        "difference of the means over seeds, and the Wilcoxon test on per-user values paired "
        "by (seed, user), Holm-corrected over this table. A warm cost within 0.002 is none.",
        "",
        warm_cost(warm),
        "",
    ]
    return "\n".join(parts)


def write(root: Path, warm: Path) -> list[Path]:
    page = root / "README.md"
    by_budget, tuned = users(root), users(root, TUNED)
    page.write_text(markdown(root, warm, by_budget, tuned), encoding="utf-8")
    pngs = [plot(curves(by_budget), root),
            plot(curves(tuned), root, "cold_users_tuned.png", "tuned recipes")]
    return [page] + [p for p in pngs if p]


if __name__ == "__main__":  # pragma: no cover - the command line
    args = sys.argv[1:]
    root = Path(args[0] if args else "results/cold-start")
    warm = Path(args[1] if len(args) > 1 else "results/published")
    for p in write(root, warm):
        print(f"wrote {p}")
