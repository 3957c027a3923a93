"""`list`: the registered variants (with their recipes, search spaces and sources), the
datasets and the split protocols."""

from __future__ import annotations

import argparse

from .options import plugin_option


def add(sub, default) -> argparse.ArgumentParser:
    lst = sub.add_parser("list", help="show registered variants, datasets and "
                                               "split protocols")
    plugin_option(lst)
    return lst


def main(args, sub) -> int:
    from tabulate import tabulate

    from aebench import datasets, models

    def recipe(r, stages=()) -> str:
        if r is None:
            return "—"
        if r.optimizer == "lbfgs" and stages:
            return "lbfgs, " + ", then ".join(
                f"{s.name} {s.rounds} rounds of {s.iterations or r.iterations}" for s in stages)
        if r.optimizer == "lbfgs":
            return f"lbfgs, {r.epochs} rounds of {r.iterations} iterations"
        bs = "full" if r.batch_size == 0 else r.batch_size
        sched = f" ({r.schedule})" if r.schedule != "constant" else ""
        return (f"{r.optimizer} lr {r.lr:g}{sched} wd {r.weight_decay:g} bs {bs} "
                f"x{r.epochs}")

    rows, per_dataset = [], []
    for name in models.list():
        v = models.get(name)
        c = v.config
        model = v.make(2, 2, c)
        per_user = c.per_user
        pu = "—" if per_user is None else f"{recipe(per_user)} loss/{per_user.loss}"
        kind = v.kind + (f" (plugin {v.plugin})" if v.plugin else "")
        rows.append([name, kind, c.feedback, c.rows, ", ".join(c.features) or "—",
                     model.trainer, pu,
                     recipe(c.batched, model.stages()), ", ".join(v.space.params) or "—",
                     v.source])
        per_dataset += [f"  {name} on {d}: " + ", ".join(f"{k}={val}" for k, val in o.items())
                        for d, o in v.datasets.items()]
    print(tabulate(rows, headers=["model", "kind", "feedback", "rows", "features", "trains",
                                  "per-user",
                                  "batched", "search space", "source"], tablefmt="github"))
    if per_dataset:
        print("\ndefaults that differ per dataset:\n" + "\n".join(per_dataset))
    print()
    print("datasets: " + ", ".join(datasets.names()) + " (synthetic-<users>x<items> and "
          "ratings files PATH.csv / PATH.tsv too)")
    print("splits:   " + ", ".join(datasets.PROTOCOLS))
    return 0
