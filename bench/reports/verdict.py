"""Does the protocol change the verdict? Per dataset, every variant's rank and mean under
each protocol (a split protocol, refitted or not), Kendall's tau between every two
protocols' orderings of their common variants, and the pairs of variants whose order flips
between two protocols with a significant paired difference under both (Wilcoxon on
per-user values paired by seed and user, Holm-corrected over every test of the dataset).

Records come from several run folders (each remembers its folder, where its per-user
values lie); one protocol's records of a variant are one cell's seeds."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.stats as sps
from aebench.bench.evaluation import stats
from aebench.bench.runs import records
from tabulate import tabulate

METRICS = {"ndcg@10": True, "rmse": False}  # metric -> higher is better


def protocol(record: records.Record) -> str:
    """A record's protocol label: its split, `+refit` when refitted, and `@bf16` (or another
    low precision) when it ran in one, so that two precisions of a variant are never taken
    for two seeds of one cell."""
    return (record.split_name + ("+refit" if record.refitted else "")
            + records.precision_tag(record.cell_precision))


def load(run_dirs: list[Path]) -> list[records.Record]:
    """The successful batched records of `run_dirs` (each knows its folder)."""
    return [r for d in run_dirs for r in records.read(d) if r.ok and r.mode == "batched"]


def cells(recs: list[records.Record], dataset: str,
          metric: str) -> dict[str, dict[str, list[records.Record]]]:
    """protocol -> variant -> records (one per seed, the last wins) holding `metric`."""
    out: dict[str, dict[str, dict[int, records.Record]]] = {}
    for r in recs:
        if r.dataset == dataset and r.metrics.get(metric) is not None:
            out.setdefault(protocol(r), {}).setdefault(r.model, {})[r.seed] = r
    return {p: {m: [s[k] for k in sorted(s)] for m, s in sorted(v.items())}
            for p, v in sorted(out.items())}


def analyse(recs: list[records.Record], dataset: str, metric: str,
            alpha: float = stats.ALPHA) -> dict:
    """Means and ranks per protocol, Kendall's tau per pair of protocols, and the flips."""
    higher = METRICS[metric]
    by = cells(recs, dataset, metric)
    means = pd.DataFrame({p: {m: float(np.mean([r.metrics[metric] for r in rs]))
                              for m, rs in v.items()} for p, v in by.items()})
    ranks = means.rank(ascending=not higher, method="min")
    taus = []
    for p, q in itertools.combinations(means.columns, 2):
        both = means[[p, q]].dropna()
        tau = (float(sps.kendalltau(both[p], both[q]).statistic) if len(both) >= 2
               else math.nan)
        taus.append({"protocols": f"{p} vs {q}", "variants": len(both), "tau": tau})
    # the pairs whose order differs between two protocols, tested under each
    tests = []
    for p, q in itertools.combinations(means.columns, 2):
        both = means[[p, q]].dropna()
        for a, b in itertools.combinations(both.index, 2):
            dp, dq = both.at[a, p] - both.at[b, p], both.at[a, q] - both.at[b, q]
            if dp * dq >= 0:
                continue
            for where in (p, q):
                x, y = stats.pooled_pairs(Path("."), by[where][a], by[where][b], metric)
                t = stats.paired(x, y) if len(x) else {"wilcoxon_p": math.nan}
                tests.append({"a": a, "b": b, "p": p, "q": q, "under": where,
                              "wilcoxon_p": t["wilcoxon_p"]})
    flips = []
    if tests:
        t = pd.DataFrame(tests)
        t["holm"] = stats.holm(t["wilcoxon_p"])
        for (a, b, p, q), g in t.groupby(["a", "b", "p", "q"], sort=True):
            pv = dict(zip(g["under"], g["holm"]))
            flips.append({"pair": f"{a} / {b}", "protocols": f"{p} vs {q}",
                          "p_first": pv[p], "p_second": pv[q],
                          "significant_both": bool(pv[p] < alpha and pv[q] < alpha)})
    return {"means": means, "ranks": ranks, "taus": taus, "flips": flips}


def _fmt(v: float, spec: str = ".4f") -> str:
    return "—" if v is None or not math.isfinite(v) else format(v, spec)


def markdown(recs: list[records.Record], metric: str = "ndcg@10") -> str:
    """The protocol comparison of every dataset the records hold."""
    parts = [f"# Does the protocol change the verdict? ({metric})", "",
             "Each variant's mean over seeds and its rank (1 = best) under each protocol; "
             "\"—\": not run under that protocol (a variant that is not inductive cannot run "
             "heldout-users; rating models do not run the interaction protocols). Kendall's "
             "tau compares two protocols' orderings of the variants both ran. A flip is a "
             "pair ordered differently by two protocols; it counts when the paired Wilcoxon "
             "test (per-user values, pooled over seeds, Holm over the dataset's tests) is "
             f"significant at {stats.ALPHA:g} under both.", ""]
    for dataset in sorted({r.dataset for r in recs}):
        a = analyse(recs, dataset, metric)
        if a["means"].empty:
            continue
        means, ranks = a["means"], a["ranks"]
        rows = [[m, *(f"{_fmt(means.at[m, p])} ({_fmt(ranks.at[m, p], '.0f')})"
                      if math.isfinite(means.at[m, p]) else "—" for p in means.columns)]
                for m in ranks.mean(axis=1).sort_values().index]
        parts += [f"## {dataset}", "", tabulate(rows, headers=["variant", *means.columns],
                                                tablefmt="github", disable_numparse=True), ""]
        if a["taus"]:
            parts += [tabulate([[t["protocols"], t["variants"], _fmt(t["tau"], ".3f")]
                                for t in a["taus"]],
                               headers=["protocols", "variants in both", "Kendall's tau"],
                               tablefmt="github", disable_numparse=True), ""]
        flips = [f for f in a["flips"] if f["significant_both"]]
        parts += [f"Significant flips: {len(flips)} of {len(a['flips'])} reorderings."
                  if a["flips"] else "No pair changes order.", ""]
        if flips:
            parts += [tabulate([[f["pair"], f["protocols"], _fmt(f["p_first"]),
                                 _fmt(f["p_second"])] for f in flips],
                               headers=["pair", "protocols", "p (first, Holm)",
                                        "p (second, Holm)"],
                               tablefmt="github", disable_numparse=True), ""]
    return "\n".join(parts)


def plot(recs: list[records.Record], out: Path, metric: str = "ndcg@10") -> Path | None:
    """Each variant's rank across protocols, one panel per dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = sorted({r.dataset for r in recs})
    analysed = [(d, analyse(recs, d, metric)["ranks"]) for d in data]
    analysed = [(d, r) for d, r in analysed if r.shape[1] > 1]
    if not analysed:
        return None
    fig, axes = plt.subplots(1, len(analysed), figsize=(6 * len(analysed), 5), squeeze=False)
    for ax, (dataset, ranks) in zip(axes[0], analysed):
        for model, row in ranks.iterrows():
            ax.plot(range(len(row)), row.to_numpy(), marker="o", label=model)
        ax.set_xticks(range(ranks.shape[1]), ranks.columns, rotation=20)
        ax.invert_yaxis()
        ax.set_title(f"{dataset}: rank by {metric}")
        ax.set_ylabel("rank (1 = best)")
    axes[0][-1].legend(fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def write(run_dirs: list[Path], out_dir: Path) -> list[Path]:
    """protocols.md (NDCG@10 and RMSE) and protocols_ndcg.png from `run_dirs`' records."""
    recs = load(run_dirs)
    md = out_dir / "protocols.md"
    md.write_text(markdown(recs, "ndcg@10") + "\n\n" + markdown(recs, "rmse") + "\n",
                  encoding="utf-8")
    written = [md]
    png = plot(recs, out_dir / "protocols_ndcg.png")
    if png is not None:
        written.append(png)
    return written
