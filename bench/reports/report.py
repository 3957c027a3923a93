"""Comparison tables (tabulate) and plots (seaborn), rendered from run records alone.

Two comparisons per (dataset, split, device, mode, recipe): rating prediction (the variants
that predict ratings) and ranking (every variant). Each row is a variant's mean over seeds
with its standard deviation, 95% interval and number of seeds, and the paired tests against
the table's best variant over per-user values (`bench/evaluation/stats.py`). Reference
baselines stay in every table, marked with a dagger. Tables are sorted by their metric.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from aebench.bench.evaluation import stats
from aebench.bench.reports.blocks import Pages, block, replace_block  # noqa: F401 (re-exported)
from aebench.bench.runs import records
from aebench.bench.runs.records import Record
from tabulate import tabulate

REFERENCE_MARK = " †"
CUSTOM_MARK = " *"  # a variant an experiment file overrode (the footnote lists the overrides)
PLUGIN_MARK = " ‡"  # a variant a plugin registered (the footnote names its distribution)
RATING = {"metric": "rmse", "higher": False, "title": "Rating prediction",
          "columns": [("RMSE", "rmse"), ("MAE", "mae"), ("legacy loss", "legacy_loss")],
          "unit": "per-user RMSE"}
RANKING = {"metric": "ndcg@10", "higher": True, "title": "Ranking",
           "columns": [("NDCG@10", "ndcg@10"), ("Recall@10", "recall@10"), ("Hit@10", "hit@10"),
                       ("MRR@10", "mrr@10")],
           "unit": "per-user NDCG@10"}
# strong generalisation (heldout-users): Liang et al.'s NDCG@100 and normalised recall first
STRONG = {"metric": "ndcg@100", "higher": True, "title": "Strong generalisation",
          "columns": [("NDCG@100", "ndcg@100"), ("Recall@20 (Liang)", "nrecall@20"),
                      ("Recall@50 (Liang)", "nrecall@50"), ("NDCG@10", "ndcg@10")],
          "unit": "per-user NDCG@100"}


def ok(recs: list[Record]) -> list[Record]:
    return [r for r in recs if r.ok]


def label(record: Record) -> str:
    """The label a table keys on (`records.recipe_label`: tables never mix refitted cells),
    where an experiment file's `custom` recipe stands beside the defaults. Precisions share a
    table but never a row (`row_name`)."""
    recipe = record.recipe.name
    return records.recipe_label("default" if recipe == "custom" else recipe,
                                record.refitted)


def row_name(record: Record) -> str:
    """A table row: the variant, with `@precision` where it did not run in fp32 (a bf16 cell,
    asked for or its variant's own under `--precision auto`, says so in every table)."""
    return record.model + records.precision_tag(record.cell_precision)


def tunable(model: str) -> bool:
    """Whether a variant has a search space (a variant without one, such as popularity, runs
    its one recipe in every run, default or tuned)."""
    try:
        from aebench import models

        return bool(models.get(model).space.params)
    except KeyError:
        return True


def groups(recs: list[Record]) -> dict[tuple, dict[str, list[Record]]]:
    """Successful records by table (dataset, split, device, mode, recipe), then by row; one
    record per seed (the last wins). A row is a variant and precision (`row_name`); a custom
    recipe is a row of its own, one per set of overrides (`custom_rows`), so that seeds run
    under different settings are never averaged. A variant with nothing to tune stands in
    the tables of every recipe of its run (popularity is the reference of a tuned ranking
    table too)."""
    out: dict[tuple, dict[str, dict[int, Record]]] = {}
    fixed = []
    rows = custom_rows(recs)
    for r in ok(recs):
        key = (r.dataset, r.split_name, r.device, r.mode, label(r))
        if key[-1] == "default" and not tunable(r.model):
            fixed.append((key, r))
            continue
        out.setdefault(key, {}).setdefault(rows.get(id(r), row_name(r)), {})[r.seed] = r
    for key, r in fixed:
        tables = [k for k in out if k[:-1] == key[:-1]] or [key]
        for k in tables:
            out.setdefault(k, {}).setdefault(row_name(r), {})[r.seed] = r
    return {k: {m: [seeds[s] for s in sorted(seeds)] for m, seeds in sorted(v.items())}
            for k, v in sorted(out.items())}


def custom_rows(recs: list[Record]) -> dict[int, str]:
    """The row of each custom-recipe record (by `id`): `row_name` with CUSTOM_MARK, numbered
    from the second set of overrides of one variant on (`mult-vae *`, `mult-vae *2`)."""
    import json

    sets: dict[str, list[str]] = {}
    out = {}
    for r in ok(recs):
        if r.recipe.name != "custom":
            continue
        name = row_name(r)
        overrides = json.dumps(r.recipe.overrides, sort_keys=True)
        seen = sets.setdefault(name, [])
        if overrides not in seen:
            seen.append(overrides)
        n = seen.index(overrides) + 1
        out[id(r)] = name + CUSTOM_MARK + ("" if n == 1 else str(n))
    return out


def fmt(value, spec: str = ".4f") -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else \
        format(value, spec)


def fmt_p(p) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "—"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def table_cells(cells: dict[str, list[Record]], spec: dict) -> dict[str, list[Record]]:
    """The rows of `cells` that belong in a `spec` table: variants with its metric (and, in
    the rating table, only variants that predict ratings)."""
    if spec is RATING:
        cells = {m: rs for m, rs in cells.items() if rs[0].rates}
    return {m: rs for m, rs in cells.items()
            if any(r.metrics.get(spec["metric"]) is not None for r in rs)}


def comparison(run_dir: Path, cells: dict[str, list[Record]], spec: dict,
               alpha: float = stats.ALPHA) -> tuple[pd.DataFrame, str]:
    """One comparison table: the frame of `stats.compare` and its markdown."""
    cells = table_cells(cells, spec)
    table = stats.compare(run_dir, cells, spec["metric"], spec["higher"], alpha)
    if table.empty:
        return table, ""
    rows = []
    for _, t in table.iterrows():
        recs = cells[t["model"]]
        custom = recs[0].recipe.name == "custom"
        model, _, n = t["model"].partition(CUSTOM_MARK)
        name = model + (REFERENCE_MARK if recs[0].kind == "reference" else "") + (
            PLUGIN_MARK if recs[0].plugin else "") + (
            CUSTOM_MARK + n if custom else "")
        head = (f"{fmt(t['mean'])} ± {fmt(t['std'])}" if t["n"] > 1 else fmt(t["mean"]))
        ci = f"[{fmt(t['ci_low'])}, {fmt(t['ci_high'])}]" if t["n"] > 1 else "—"
        others = [fmt(stats.mean_ci([r.metrics.get(c) for r in recs])["mean"])
                  for _, c in spec["columns"][1:]]
        mark = "best" if t["best"] else ("yes" if t["significant"] else
                                         ("no" if math.isfinite(t["wilcoxon_p_holm"]) else "—"))
        rows.append([name, head, ci, *others, int(t["n"]),
                     "—" if t["best"] else fmt(t["mean_diff"], "+.4f"),
                     fmt_p(t["wilcoxon_p_holm"]), fmt_p(t["ttest_p_holm"]), mark])
    first = spec["columns"][0][0]
    headers = ["model", f"{first} (mean ± std)", "95% CI",
               *(title for title, _ in spec["columns"][1:]), "seeds",
               f"Δ {spec['unit']} vs best", "p Wilcoxon (Holm)", "p t-test (Holm)",
               f"differs at {alpha:g}"]
    md = tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
    shown = set(table["model"])
    notes = sorted({plugin_note(rs[0]) for m, rs in cells.items()
                    if m in shown and rs[0].plugin})
    notes += sorted(f"{CUSTOM_MARK.strip()}{m.partition(CUSTOM_MARK)[2]} "
                    f"{m.partition(CUSTOM_MARK)[0]}: " + ", ".join(
        f"{k}={v}" for k, v in sorted(rs[0].recipe.overrides.items()))
        for m, rs in cells.items() if m in shown and rs[0].recipe.name == "custom")
    lacking = sum(not stats.has_per_user(run_dir, r) for m, rs in cells.items() if m in shown
                  for r in rs)
    if lacking:
        notes.append(f"No paired test where a record's per-user values are missing ({lacking} "
                     f"of this table's records have no per_user/ file in {run_dir}): the "
                     "tests pair users, and the records hold only their means.")
    return table, md + "".join(f"\n\n{n}" for n in notes)


def plugin_note(record: Record) -> str:
    """Where a plugin variant came from: `‡ plugin: NAME (DISTRIBUTION VERSION)`."""
    p = record.plugin
    where = (f"{p['distribution']} {p['version']}" if p.get("distribution")
             else p.get("module") or p.get("name"))
    return f"{PLUGIN_MARK.strip()} plugin: {record.model} ({where})"


def title(key: tuple, spec: dict) -> str:
    dataset, split, device, mode, recipe = key
    recipe, plus, _ = recipe.partition("+")
    how = ", refitted on all training ratings" if plus else ""
    return f"{spec['title']}: {dataset} {split} ({device}, {mode}, {recipe} recipes{how})"


def comparisons_md(run_dir: Path, recs: list[Record]) -> str:
    """Every comparison table of a run folder, with how to read them."""
    parts = [
        "Means over seeds ± standard deviation, with the 95% Student-t interval of the mean. "
        "Each variant is tested against the best of its table on per-user values paired by "
        "(seed, user) and pooled over seeds (users whose held-out ratings it can score): "
        "Wilcoxon signed-rank and paired t-test, Holm-corrected across the table; "
        "\"differs\" reads the corrected Wilcoxon p-value. Δ is the mean per-user difference "
        f"(variant − best). {REFERENCE_MARK.strip()} marks a reference baseline.", ""]
    for key, cells in groups(recs).items():
        for spec in (RATING, RANKING):
            _, md = comparison(run_dir, cells, spec)
            if md:
                parts += [f"## {title(key, spec)}", "", md, ""]
    return "\n".join(parts)


# ---- README: the headline block (both tables per dataset) and the per-user reference blocks

START, END = "<!-- headline:start -->", "<!-- headline:end -->"
HEADLINE_CELLS = (("ml-100k", "u1"), ("ml-1m", "random-90-10"))


def headline(run_dir: Path, recs: list[Record], device: str = "cpu", mode: str = "batched",
             recipe: str = "default") -> str:
    """Both comparison tables for ml-100k u1 and ml-1m random-90-10."""
    parts = []
    for (dataset, split) in HEADLINE_CELLS:
        cells = groups(recs).get((dataset, split, device, mode, recipe))
        if not cells:
            continue
        for spec in (RATING, RANKING):
            _, md = comparison(run_dir, cells, spec)
            if md:
                parts += [f"**{spec['title']}, {dataset} {split}**", "", md, ""]
    return "\n".join(parts).strip()


VERDICT_START, VERDICT_END = "<!-- verdict:start -->", "<!-- verdict:end -->"


def verdict(runs: list[tuple[Path, list[Record], str]]) -> str:
    """README's headline in a few rows: per run (folder, records, recipe), dataset and task of
    `HEADLINE_CELLS`, the best autoencoder against the best reference, with the Wilcoxon test
    over per-user values paired by (seed, user), Holm-corrected over every variant of the
    table against that reference (`versus.rows`)."""
    from aebench.bench.reports import versus

    rows = []
    for run_dir, recs, recipe in runs:
        by_table = groups(recs)
        for dataset, split in HEADLINE_CELLS:
            cells = by_table.get((dataset, split, "cpu", "batched", recipe))
            for spec in (RANKING, RATING) if cells else ():
                table = table_cells(cells, spec)
                metric, higher = spec["metric"], spec["higher"]
                mean = {m: stats.mean_ci([r.metrics.get(metric) for r in rs])["mean"]
                        for m, rs in table.items()}
                pick = max if higher else min
                kinds = {k: [m for m, rs in table.items() if rs[0].kind == k]
                         for k in ("autoencoder", "reference")}
                if not all(kinds.values()):
                    continue
                ae, ref = (pick(kinds[k], key=mean.get) for k in ("autoencoder", "reference"))
                row = next(x for x in versus.rows(run_dir, table, [ref], metric, higher)
                           if x["model"] == ae)
                word = {"above": "above", "below": "below", "level": "level with"}.get(
                    row["verdict"], "untested against")
                rows.append([f"{dataset} {split}", f"{spec['title'].lower()} ({metric})",
                             recipe, f"{ae} {fmt(mean[ae])}", word,
                             f"{ref} † {fmt(mean[ref])}", fmt_p(row["p_holm"]),
                             str(len(table[ae]))])
    return tabulate(rows, headers=["data", "task", "recipes", "best autoencoder", "",
                                   "best reference", "p (Holm)", "seeds"],
                    tablefmt="github", disable_numparse=True)


HELDOUT_START, HELDOUT_END = "<!-- heldout:start -->", "<!-- heldout:end -->"


def heldout(run_dir: Path, recs: list[Record]) -> str:
    """The strong-generalisation tables (split `heldout-users`) of both datasets."""
    parts = []
    for dataset in ("ml-100k", "ml-1m"):
        cells = groups(recs).get((dataset, "heldout-users", "cpu", "batched", "default"))
        _, md = comparison(run_dir, cells, STRONG) if cells else (None, "")
        if md:
            parts += [f"**{STRONG['title']}, {dataset} heldout-users**", "", md, ""]
    return "\n".join(parts).strip()


# Figures the classic notebooks report, to set beside aebench's reproductions.
# (model, dataset, split, metric, figure, where it comes from)
REFERENCE = [
    ("sae-20-10-20", "ml-100k", "u1", "legacy_loss", 0.957,
     "classic notebook code, 200 epochs, on this 2-core machine (issue #2)"),
    ("sae-20-10-20", "ml-100k", "u1", "rmse_raw", 0.982,
     "the same run's global test RMSE (issue #2)"),
    ("sae-200-100-200", "ml-1m", "random-75-25", "rmse_raw", 0.9490,
     "ML-1M notebook, epoch 50 'RMSE val' (its own 75/25 split)"),
    ("sae-200-100-200", "ml-1m", "random-75-25", "legacy_topk_acc@5", 0.7755,
     "ML-1M notebook, printed for top_k=5 (LEAKY: test rows as input)"),
    ("sae-200-100-200", "ml-1m", "random-75-25", "legacy_topk_acc@10", 0.6987,
     "ML-1M notebook, printed for top_k=10 (LEAKY: test rows as input)"),
]
# The ML-1M notebook is longday1102/RS-AutoEncoder, AE-Recommender-System.ipynb (Kaggle, 2023):
# its cells print 69.8725 for `top_k = 10` and 77.5497 for `top_k = 5`; issue #4 quoted the two
# the other way round.
REF_START, REF_END = "<!-- reference:start -->", "<!-- reference:end -->"


def by_cell(recs: list[Record], mode: str | None = None,
            device: str | None = None) -> dict[tuple[str, str, str], dict]:
    """The seed-0, default-recipe successful record of each (model, dataset, split),
    optionally of one mode and device only (the last one wins)."""
    return {(r.model, r.dataset, r.split_name): r for r in ok(recs)
            if mode in (None, r.mode) and device in (None, r.device)
            and r.seed == 0 and r.recipe.name == "default"}


def reference(per_user: list[Record], batched: list[Record]) -> str:
    """The notebooks' figures beside aebench per-user (faithful) and batched results."""
    def lookup(cells, key, metric):
        value = cells[key].metrics.get(metric) if key in cells else None
        return "—" if value is None else format(value, ".4f")

    pu, bt = by_cell(per_user), by_cell(batched)
    rows = [[f"{model} {dataset} {split}", metric, format(figure, ".4f"),
             lookup(pu, (model, dataset, split), metric),
             lookup(bt, (model, dataset, split), metric), source]
            for model, dataset, split, metric, figure, source in REFERENCE]
    return tabulate(rows, headers=["run", "metric", "notebook", "aebench per-user",
                                   "aebench batched", "source of the notebook figure"],
                    tablefmt="github", disable_numparse=True)


MODES_START, MODES_END = "<!-- modes:start -->", "<!-- modes:end -->"


def modes(per_user: list[Record], batched: list[Record]) -> str:
    """Per variant and split: test RMSE and training time of the per-user (classic) recipe
    beside the batched one (seed 0), the evidence that batched training gives no accuracy
    away."""
    pu, bt = by_cell(per_user, "per-user", "cpu"), by_cell(batched, "batched", "cpu")
    rows = []
    for key in sorted(pu.keys() & bt.keys(), key=lambda k: (k[1], k[0])):
        a, b = pu[key], bt[key]
        rows.append([" ".join(key), format(a.metrics["rmse"], ".4f"),
                     format(b.metrics["rmse"], ".4f"),
                     format(b.metrics["rmse"] - a.metrics["rmse"], "+.4f"),
                     format(a.timings.fit_s, ".0f"), format(b.timings.fit_s, ".1f"),
                     format(a.timings.fit_s / b.timings.fit_s, ".0f") + "x"])
    return tabulate(rows, headers=["run", "per-user RMSE", "batched RMSE", "batched - per-user",
                                   "per-user fit s", "batched fit s", "fit time ratio"],
                    tablefmt="github", disable_numparse=True)


TUNED_START, TUNED_END = "<!-- tuned:start -->", "<!-- tuned:end -->"
TUNING_START, TUNING_END = "<!-- tuning:start -->", "<!-- tuning:end -->"


def tuning(studies: list[Record], default: list[Record], tuned: list[Record]) -> str:
    """What tuning moved: per variant and dataset, the study's budget and outcome (validation)
    and the test figure over seeds with the default and the tuned recipe."""
    def mean(recs, model, dataset, recipe, metric):
        values = [r.metrics.get(metric) for r in ok(recs) if r.model == model
                  and r.dataset == dataset and r.recipe.name == recipe]
        return stats.mean_ci(values)

    rows = []
    for s in sorted(studies, key=lambda s: (s["dataset"], s["model"])):
        metric = s["metric"]
        d = mean(default, s["model"], s["dataset"], "default", metric)
        t = mean(tuned, s["model"], s["dataset"], "tuned", metric)
        rows.append([s["model"], f"{s['dataset']} {s['split']}", metric,
                     f"{s['trials']} ({s['complete']} / {s['pruned']} / {s['failed']})"
                     + (f", {s['interrupted']} interrupted and asked again"
                        if s.get("interrupted") else ""),
                     fmt(s.get("default_value")), fmt(s.get("value")),
                     f"{fmt(d['mean'])} (n={d['n']})", f"{fmt(t['mean'])} (n={t['n']})",
                     fmt(t["mean"] - d["mean"], "+.4f") if d["n"] and t["n"] else "—"])
    return tabulate(rows, headers=["model", "data", "metric", "trials (complete / pruned / "
                                   "failed)", "validation, default", "validation, tuned",
                                   "test, default", "test, tuned", "test: tuned - default"],
                    tablefmt="github", disable_numparse=True)


def update_readme(readme: Path, run_dir: Path, reference_dir: Path,
                  tuned_dir: Path | None = None, tuning_dir: Path | None = None,
                  heldout_dir: Path | None = None) -> list[Path]:
    """Rewrite the generated blocks (in README or its docs/ pages) from a run folder, the
    per-user reference runs and, where given, the tuned-recipe run folder, the tuning folder
    and the strong-generalisation run folder."""
    import json

    recs = records.read(run_dir)
    per_user = records.read(reference_dir)
    pages = Pages(readme)
    pages.replace(START, END, headline(run_dir, recs))
    runs = [(run_dir, recs, "default")]
    pages.replace(REF_START, REF_END, reference(per_user, recs))
    pages.replace(MODES_START, MODES_END, modes(per_user, recs))
    if tuned_dir is not None:
        tuned = records.read(tuned_dir)
        pages.replace(TUNED_START, TUNED_END, headline(tuned_dir, tuned, recipe="tuned"))
        runs.append((tuned_dir, tuned, "tuned"))
        if tuning_dir is not None:
            studies = json.loads((tuning_dir / "studies.json").read_text())
            pages.replace(TUNING_START, TUNING_END, tuning(studies, recs, tuned))
    pages.replace(VERDICT_START, VERDICT_END, verdict(runs))
    if heldout_dir is not None:
        pages.replace(HELDOUT_START, HELDOUT_END, heldout(heldout_dir, records.read(heldout_dir)))
    return pages.save()


# ---- the flat frame (tables.csv) and the other tables of tables.md

def frame(recs: list[Record]) -> pd.DataFrame:
    """One row per successful run with its headline figures."""
    rows = []
    for r in ok(recs):
        v = r.validation
        row = {"model": r.model, "kind": r.kind, "dataset": r.dataset,
               "split": r.split_name, "mode": r.mode, "device": r.device,
               "seed": r.seed, "recipe": r.label,
               "epochs": r.epochs, "refit_epochs": r.refit.epochs if r.refit else None,
               "device_name": r.env["device_name"],
               "fingerprint": r.split.fingerprint[:12],
               "valid_fingerprint": v.fingerprint[:12] if v else "",
               "valid_metric": v and v.metric, "valid_best": v and v.best,
               "best_epoch": v and v.best_epoch, "epochs_run": v and v.epochs_run}
        row.update({k: v for k, v in r.metrics.items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool)})
        row["epoch_s"] = r.timings.epoch_s_median
        row["fit_s"] = r.timings.fit_s
        row["peak_mem_mb"] = r.timings.peak_mem_mb
        rows.append(row)
    return pd.DataFrame(rows)


def environment_md(recs: list[Record]) -> str:
    """Where the records came from: one row per distinct environment."""
    keys = ["git_commit", "device_name", "cpu", "cpu_count", "torch_threads", "torch", "numpy",
            "python", "platform"]
    envs = pd.DataFrame([{k: r.env.get(k) for k in keys} for r in recs
                         if r.env]).drop_duplicates()
    return "# Environment of these records\n\n" + tabulate(envs, headers="keys",
                                                           tablefmt="github", showindex=False)


def costs_md(df: pd.DataFrame) -> str:
    """Median over seeds of the epoch seconds, fit seconds, epochs run and peak memory."""
    cols = ["epoch_s", "fit_s", "epochs_run", "best_epoch", "peak_mem_mb"]
    table = (df.groupby(["dataset", "split", "device", "mode", "recipe", "model"])[cols]
             .median().reset_index())
    return tabulate(table, headers="keys", tablefmt="github", showindex=False,
                    floatfmt=".3g", missingval="—")


def markdown(run_dir: Path, recs: list[Record]) -> str:
    df, failed = frame(recs), [r for r in recs if not r.ok]
    parts = ["# aebench results", ""]
    if df.empty:
        parts.append("No successful runs.")
    else:
        parts += [comparisons_md(run_dir, recs), "",
                  "## Costs (medians over seeds; epochs run and the epoch chosen on validation)",
                  "", costs_md(df), ""]
        splits = df[["dataset", "split", "seed", "fingerprint", "valid_fingerprint"]]
        parts += ["## Splits and validation carvings", "",
                  tabulate(splits.drop_duplicates(), headers="keys", tablefmt="github",
                           showindex=False), ""]
        devices = df[["device", "device_name"]].drop_duplicates()
        parts += ["## Devices", "", tabulate(devices, headers="keys", tablefmt="github",
                                             showindex=False), ""]
    if failed:
        parts += ["## Failed runs", ""]
        parts += [f"- {r.model} / {r.dataset} / {r.device} / {r.mode} / "
                  f"seed {r.seed}: {r.error}" for r in failed]
        parts.append("")
    return "\n".join(parts)


def curves(recs: list[Record]) -> pd.DataFrame:
    """Validation figure by epoch, one row per read, with the chosen epoch flagged."""
    rows = []
    for r in ok(recs):
        v = r.validation
        if not v:
            continue
        for h in r.history:
            if h.get("valid") is not None:
                rows.append({"model": r.model, "dataset": r.dataset, "seed": r.seed,
                             "metric": v.metric, "epoch": h["epoch"], "valid": h["valid"],
                             "chosen": h["epoch"] == v.best_epoch})
    return pd.DataFrame(rows)


def plots(df: pd.DataFrame, curve: pd.DataFrame, out: Path) -> list[Path]:
    """Metric bars with error bars over seeds and the reference baselines as labelled lines;
    validation curves with the chosen epoch marked; epoch seconds; NDCG@10 against RMSE."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid")
    written = []

    def bars(metric: str, label: str, name: str, lower_better: bool):
        part = df[df[metric].notna()] if metric in df else df.iloc[0:0]
        if part.empty:
            return
        sets = sorted(part["dataset"].unique())
        fig, axes = plt.subplots(1, len(sets), figsize=(6.5 * len(sets), 4.8), squeeze=False)
        for ax, ds in zip(axes[0], sets):
            d = part[part["dataset"] == ds]
            ae, ref = d[d["kind"] != "reference"], d[d["kind"] == "reference"]
            order = (ae.groupby("model")[metric].mean()
                     .sort_values(ascending=lower_better).index.tolist())
            if order:
                sns.barplot(data=ae, x="model", y=metric, order=order, errorbar="sd",
                            capsize=0.2, color="#4c72b0", ax=ax)
            # references: one dashed line each, named in a legend ordered like the lines
            refs = ref.groupby("model")[metric].mean().sort_values(ascending=lower_better)
            for k, (model, value) in enumerate(refs.items()):
                ax.axhline(value, ls=("--", ":", "-.")[k % 3], lw=1.3, color=f"C{k + 1}",
                           label=f"{model} † {value:.4f}")
            if len(refs):
                ax.legend(fontsize=7, loc="upper left" if lower_better else "upper right",
                          framealpha=0.85, title="references", title_fontsize=7)
            values = d.groupby("model")[metric].mean()
            spread = values.max() - values.min()
            ax.set_ylim(max(0.0, values.min() - 0.25 * spread - 0.01) if lower_better else 0,
                        values.max() + 0.1 * spread + 0.005)
            ax.set_title(f"{ds} (mean ± sd over seeds; † reference)")
            ax.set_xlabel("")
            ax.set_ylabel(label)
            ax.tick_params(axis="x", rotation=35)
        fig.tight_layout()
        written.append(out / name)
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)

    if not df.empty:
        bars("rmse", "test RMSE (lower is better)", "final_rmse.png", True)
        bars("ndcg@10", "test NDCG@10 (higher is better)", "final_ndcg.png", False)
    from aebench.bench.reports.site import colour

    for metric, name in (("rmse", "validation_rmse.png"), ("ndcg@10", "validation_ndcg.png")):
        part = curve[curve["metric"] == metric] if not curve.empty else curve
        if part.empty:
            continue
        sets = sorted(part["dataset"].unique())
        fig, axes = plt.subplots(1, len(sets), figsize=(7 * len(sets), 4.8), squeeze=False)
        for ax, ds in zip(axes[0], sets):
            d = part[part["dataset"] == ds]
            for model, m in d.groupby("model"):
                mean = m.groupby("epoch")["valid"].mean()
                ax.plot(mean.index, mean.to_numpy(), color=colour(model), lw=1.4, label=model)
                # each seed's chosen epoch, on the mean curve it belongs to, in its colour
                chosen = m.loc[m["chosen"], "epoch"]
                ax.scatter(chosen, np.interp(chosen, mean.index, mean.to_numpy()),
                           marker="*", s=70, color=colour(model), edgecolor="black",
                           linewidth=0.5, zorder=5)
            ax.set_title(f"{ds}: validation {metric}, mean over seeds (★ a seed's chosen "
                         "epoch)", fontsize=9)
            ax.set_xlabel("epoch")
            ax.set_ylabel(f"validation {metric}")
            ax.legend(fontsize=6, ncol=2, loc="best", framealpha=0.85)
        fig.tight_layout()
        written.append(out / name)
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    if not df.empty:
        # horizontal bars sorted by the median over seeds, on a log axis (times span five
        # orders of magnitude); the whiskers are the seeds' range, never below zero
        sets = sorted(df["dataset"].unique())
        n = max(df[df["dataset"] == ds]["model"].nunique() for ds in sets)
        fig, axes = plt.subplots(1, len(sets), figsize=(6.5 * len(sets), 1.2 + 0.22 * n),
                                 squeeze=False)
        for ax, ds in zip(axes[0], sets):
            d = df[(df["dataset"] == ds) & (df["epoch_s"] > 0)]
            g = d.groupby(["model", "device"])["epoch_s"]
            stat = pd.DataFrame({"median": g.median(), "low": g.min(), "high": g.max()})
            stat = stat.sort_values("median").reset_index()
            labels = [m if dev == "cpu" else f"{m} ({dev})"
                      for m, dev in zip(stat["model"], stat["device"])]
            ax.barh(labels, stat["median"], color=[colour(m) for m in stat["model"]],
                    xerr=[stat["median"] - stat["low"], stat["high"] - stat["median"]],
                    error_kw={"lw": 0.8, "capsize": 2})
            ax.set_xscale("log")
            ax.set_title(f"{ds}: median epoch (or fit) seconds over seeds, log axis",
                         fontsize=9)
            ax.set_xlabel("seconds")
            ax.tick_params(axis="y", labelsize=7)
        fig.tight_layout()
        written.append(out / "epoch_seconds.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    rated_any = "rmse" in df and bool(df["rmse"].notna().any()) if not df.empty else False
    if rated_any and "ndcg@10" in df:
        sets = sorted(df["dataset"].unique())
        fig, axes = plt.subplots(1, len(sets), figsize=(6.5 * len(sets), 5.2), squeeze=False)
        for ax, ds in zip(axes[0], sets):
            d = df[df["dataset"] == ds]
            means = d.groupby("model")[["rmse", "ndcg@10"]].mean()
            kinds = d.groupby("model")["kind"].first()
            rated = means[means["rmse"].notna()]
            for model, row in rated.iterrows():
                ref = kinds[model] == "reference"
                ax.scatter(row["rmse"], row["ndcg@10"], s=60, color=colour(model),
                           marker="^" if ref else "o", edgecolor="black", linewidth=0.5,
                           label=model + (" †" if ref else ""))
            ax.set_title(f"{ds}: variants that predict ratings (▲ † a reference)", fontsize=9)
            ax.set_xlabel("test RMSE (lower is better)")
            ax.set_ylabel("test NDCG@10 (higher is better)")
            if len(rated):
                ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5),
                          framealpha=0.85)
        fig.tight_layout()
        written.append(out / "ndcg_vs_rmse.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    return written


def write(run_dir: Path) -> list[Path]:
    """Regenerate tables.md, tables.csv, environment.md and the plots of a run folder from
    its runs.jsonl (and the per-user values it names)."""
    run_dir = Path(run_dir)
    recs = records.read(run_dir)
    df = frame(recs)
    (run_dir / "tables.md").write_text(markdown(run_dir, recs), encoding="utf-8")
    df.to_csv(run_dir / "tables.csv", index=False)
    (run_dir / "environment.md").write_text(environment_md(recs) + "\n", encoding="utf-8")
    return [run_dir / "tables.md", run_dir / "tables.csv", run_dir / "environment.md",
            *plots(df, curves(recs), run_dir)]
