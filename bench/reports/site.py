"""The results site: static pages written from the records of run folders, that open from
disk with no server and no network (the scripts, styles and Plotly's bundle are files of the
site; nothing comes from a CDN).

Pages: `index.html` (the verdict, every leaderboard, every variant, the folders' other
reports), one leaderboard per (folder, dataset, protocol, device, mode, recipe, task) with a
sortable, filterable table and its plots, one page per variant (source, kind, defaults, search
space, every cell with its per-seed figures, fingerprints, commit and environment, and the
learning curves), and the folders' markdown reports (budget, reproduction, protocols, versus,
tuning, parity) and the speed comparison with the RecBole peers as pages. Output is
deterministic: the same records give the same bytes, so a test can regenerate the published
site and compare.
"""

from __future__ import annotations

import functools
import html
import json
import math
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from aebench.bench.evaluation import stats
from aebench.bench.reports import report
from aebench.bench.runs import records
from aebench.bench.runs.records import Record

from aebench import models

PUBLISHED = ("results/published", "results/published-tuned", "results/heldout-users",
             "results/reproduction", "results/precision", "results/tuning",
             *(f"results/cold-start/{grid}{tuned}"
               for tuned in ("", "-tuned")
               for grid in ("items", "users-0", "users-1", "users-5", "users-10")),
             "results/cold-start/tuning-items", "results/cold-start/tuning-users")
REPORTS = ("budget.md", "reproduction.md", "protocols.md", "versus.md", "parity.md",
           "tuning.md")
# a colour per variant, the same on every page and plot (`colour`)
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
           "#ff9da7", "#9c755f", "#bab0ac", "#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78",
           "#2ca02c", "#98df8a", "#d62728", "#ff9896", "#9467bd", "#c5b0d5", "#8c564b",
           "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7", "#bcbd22", "#dbdb8d",
           "#17becf", "#9edae5")
BOUNDS = {"rmse": (0.0, math.inf), "ndcg@10": (0.0, 1.0), "ndcg@100": (0.0, 1.0)}


def colour(model: str) -> str:
    """The variant's colour on every page and plot: a built-in variant's by its place among
    the built-in names (distinct while they are no more than the palette), a plugin's from a
    hash of its name, so that no plugin registered beside them moves a built-in's colour."""
    import zlib

    name = model.split("@")[0].strip()
    builtin = _builtin_names()
    i = builtin.index(name) if name in builtin else zlib.crc32(name.encode())
    return PALETTE[i % len(PALETTE)]


@functools.cache
def _builtin_names() -> tuple[str, ...]:
    """The variants of aebench's own models/, sorted (registered at import: fixed once read;
    `colour` asks for them once per bar)."""
    return tuple(sorted(n for n in models.list()
                        if getattr(models.get(n).build, "__module__", "").startswith(
                            "aebench.models.") and models.get(n).plugin is None))


@dataclass
class Board:
    """One leaderboard: a table of a folder for one task."""

    slug: str
    folder: Path
    dataset: str
    split: str
    device: str
    mode: str
    recipe: str
    spec: dict
    rows: list[dict]

    @property
    def title(self) -> str:
        extra = "" if (self.device, self.mode) == ("cpu", "batched") else \
            f", {self.device} {self.mode}"
        return (f"{self.spec['title']} ({self.spec['metric'].upper()}), {self.dataset} "
                f"{self.split}, {self.recipe} recipes{extra}")


def boards(folder: Path, recs: list[Record], taken: set[str]) -> list[Board]:
    out = []
    for (dataset, split, device, mode, recipe), cells in report.groups(recs).items():
        specs = (report.STRONG,) if split == "heldout-users" else (report.RANKING,
                                                                   report.RATING)
        for spec in specs:
            table = report.table_cells(cells, spec)
            if not table:
                continue
            frame = stats.compare(folder, table, spec["metric"], spec["higher"])
            rows = []
            for i, row in enumerate(frame.to_dict("records")):
                recs_of = table[row["model"]]
                fit = [r.timings.fit_s for r in recs_of if r.timings and r.timings.fit_s]
                mem = [r.timings.peak_mem_mb for r in recs_of
                       if r.timings and r.timings.peak_mem_mb]
                rows.append({**row, "rank": i + 1, "kind": recs_of[0].kind,
                             "precision": recs_of[0].cell_precision,
                             "fit_s": float(np.median(fit)) if fit else None,
                             "peak_mb": max(mem) if mem else None,
                             "seeds": [r.metrics.get(spec["metric"]) for r in recs_of]})
            task = "ranking" if spec is not report.RATING else "rating"
            parts = [dataset, split, task, recipe]
            if (device, mode) != ("cpu", "batched"):
                parts += [device, mode]
            slug = "-".join(parts)
            if slug in taken:
                slug += f"-{folder.name}"
            taken.add(slug)
            out.append(Board(slug, folder, dataset, split, device, mode, recipe, spec, rows))
    return out


# ---- HTML

def page(title: str, body: str, depth: int = 0, plots: bool = False) -> str:
    up = "../" * depth
    script = f'<script src="{up}assets/plotly.min.js"></script>\n' if plots else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} · aebench</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{up}assets/site.css">
{script}</head>
<body>
<nav><a href="{up}index.html">aebench results</a></nav>
<main>
<h1>{html.escape(title)}</h1>
{body}
</main>
<script src="{up}assets/site.js"></script>
</body>
</html>
"""


def num(value, spec: str = ".4f") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return format(value, spec)


def cell(text: str, sort=None) -> str:
    key = "" if sort is None or (isinstance(sort, float) and not math.isfinite(sort)) \
        else f' data-sort="{sort}"'
    return f"<td{key}>{text}</td>"


def table(headers: list[str], rows: list[str], filterable: bool = True) -> str:
    head = "".join(f'<th scope="col">{html.escape(h)}</th>' for h in headers)
    box = ('<input class="filter" type="search" placeholder="filter rows, e.g. ease" '
           'aria-label="filter rows">\n') if filterable else ""
    return (f'{box}<div class="scroll"><table class="sortable"><thead><tr>{head}</tr>'
            '</thead>\n<tbody>\n' + "\n".join(rows) + "\n</tbody></table></div>")


def board_html(b: Board) -> str:
    metric = b.spec["metric"]
    rows = []
    for r in b.rows:
        ref = " †" if r["kind"] == "reference" else ""
        verdict = "best" if r["best"] else ("differs" if r["significant"] else "level")
        rows.append("<tr>" + "".join([
            cell(str(r["rank"]), r["rank"]),
            cell(f'<a href="../variants/{r["model"].split(" ")[0].split("@")[0]}.html">'
                 f'{html.escape(r["model"])}</a>{ref}', None),
            cell(r["kind"]),
            cell(f'{num(r["mean"])} ± {num(r["std"])}', r["mean"]),
            cell(f'[{num(r["ci_low"])}, {num(r["ci_high"])}]', r["ci_low"]),
            cell(num(r["mean_diff"], "+.4f"), r["mean_diff"]),
            cell(report.fmt_p(r["wilcoxon_p_holm"]), r["wilcoxon_p_holm"]),
            cell(verdict),
            cell(str(r["n"]), r["n"]),
            cell(r["precision"]),
            cell(num(r["fit_s"], ".1f"), r["fit_s"]),
            cell(num(r["peak_mb"], ".0f"), r["peak_mb"]),
        ]) + "</tr>")
    headers = ["#", "variant", "kind", f"{metric.upper()} mean ± std", "95% CI",
               "Δ vs best (per user)", "p Wilcoxon (Holm)", "vs best at 0.05", "seeds",
               "precision", "fit s (median)", "peak MB"]
    intro = (f"<p>Folder <code>{html.escape(str(b.folder))}</code>: {b.recipe} recipes, "
             f"{b.device}, {b.mode} mode. Rows sorted by {metric}; † a reference. "
             "\"differs\" reads the Wilcoxon signed-rank test over per-user values paired by "
             "(seed, user), Holm-corrected across the table, against the table's best. Click "
             "a column to sort, type to filter.</p>")
    return intro + table(headers, rows) + bars(b) + times(b)


def _plot(div: str, traces: list, layout: dict) -> str:
    spec = json.dumps({"data": traces, "layout": layout}, sort_keys=True)
    return (f'<div class="plot" id="{div}"></div>\n<script>(function(){{const s={spec};'
            f'Plotly.newPlot("{div}", s.data, s.layout, {{responsive: true, '
            f'displaylogo: false}});}})();</script>')


def bars(b: Board) -> str:
    """Horizontal bars sorted by the metric, the best at the top, 95% CIs clipped to the
    metric's bounds, a colour per variant, references hatched."""
    metric = b.spec["metric"]
    low, high = BOUNDS.get(metric, (-math.inf, math.inf))
    rows = list(reversed(b.rows))  # plotly draws the first category at the bottom
    traces = []
    for r in rows:
        lo = max(low, r["ci_low"]) if math.isfinite(r["ci_low"]) else r["mean"]
        hi = min(high, r["ci_high"]) if math.isfinite(r["ci_high"]) else r["mean"]
        ref = r["kind"] == "reference"
        traces.append({
            "type": "bar", "orientation": "h", "name": r["model"] + (" †" if ref else ""),
            "y": [r["model"]], "x": [r["mean"]],
            "error_x": {"type": "data", "symmetric": False, "array": [hi - r["mean"]],
                        "arrayminus": [r["mean"] - lo], "color": "#333"},
            "marker": {"color": colour(r["model"]),
                       "pattern": {"shape": "/" if ref else ""}},
            "customdata": [[num(lo), num(hi), r["n"], r["kind"]]],
            "hovertemplate": "%{y}: %{x:.4f}<br>95% CI [%{customdata[0]}, "
                             "%{customdata[1]}]<br>%{customdata[2]} seeds, %{customdata[3]}"
                             "<extra></extra>"})
    finite = [r["mean"] for r in b.rows if math.isfinite(r["mean"])]
    span = (min(finite), max(finite)) if finite else (0, 1)
    pad = 0.15 * (span[1] - span[0] or abs(span[1]) or 1)
    layout = {"title": {"text": f"{metric.upper()}, mean over seeds with 95% CI"},
              "xaxis": {"title": {"text": metric.upper()},
                        "range": [max(low, span[0] - pad), min(high, span[1] + pad)]},
              "yaxis": {"automargin": True}, "showlegend": True, "barmode": "overlay",
              "legend": {"title": {"text": "click to hide or show"}, "traceorder": "reversed",
                         "font": {"size": 10}},
              "height": 120 + 22 * len(rows), "margin": {"l": 10, "r": 10, "t": 40, "b": 40}}
    return _plot(f"bars-{b.slug}", traces, layout)


def times(b: Board) -> str:
    """Median fit seconds on a log axis (sorted), the spread of seeds as whiskers."""
    rows = sorted([r for r in b.rows if r["fit_s"]], key=lambda r: r["fit_s"])
    if not rows:
        return ""
    traces = [{"type": "bar", "orientation": "h", "y": [r["model"] for r in rows],
               "x": [r["fit_s"] for r in rows],
               "marker": {"color": [colour(r["model"]) for r in rows]},
               "hovertemplate": "%{y}: %{x:.2f} s<extra></extra>"}]
    layout = {"title": {"text": "fit seconds (median over seeds), log axis"},
              "xaxis": {"type": "log", "title": {"text": "seconds"}},
              "yaxis": {"automargin": True}, "showlegend": False,
              "height": 120 + 22 * len(rows), "margin": {"l": 10, "r": 10, "t": 40, "b": 40}}
    return _plot(f"times-{b.slug}", traces, layout)


def variant_html(name: str, cells: list[tuple[Path, Record]], board_of: dict) -> str:
    try:
        fam = models.get(name)
    except KeyError:
        fam = None
    parts = []
    if fam is not None:
        cfg = fam.config
        parts.append(f"<p><b>Source followed:</b> {html.escape(fam.source or '—')}</p>")
        parts.append(f"<p><b>Kind:</b> {fam.kind}; feedback {cfg.feedback}, rows "
                     f"{cfg.rows}, inductive {cfg.inductive}.</p>")
        if cfg.note:
            parts.append(f"<p><b>Default recipe:</b> {html.escape(cfg.note)}</p>")
        space = fam.space
        if space is not None and space.params:
            items = "".join(f"<li><code>{html.escape(k)}</code>: {html.escape(str(v))}</li>"
                            for k, v in space.params.items())
            parts.append(f"<p><b>Search space</b> ({html.escape(space.reason or '')}):</p>"
                         f"<ul>{items}</ul>")
    rows = []
    for folder, r in cells:
        metric = r.validation.metric if r.validation else ""
        slug = board_of.get((str(folder), r.dataset, r.split_name, r.device, r.mode,
                             report.label(r)))
        where = (f'<a href="../boards/{slug}.html">{html.escape(str(folder))}</a>' if slug
                 else html.escape(str(folder)))
        rows.append("<tr>" + "".join([
            cell(where), cell(r.dataset), cell(r.split_name), cell(report.label(r)),
            cell(str(r.seed), r.seed), cell(num(r.metrics.get("rmse")), r.metrics.get("rmse")),
            cell(num(r.metrics.get("ndcg@10")), r.metrics.get("ndcg@10")),
            cell(f"{metric} {num(r.validation.best)} @ {r.validation.best_epoch}"
                 if r.validation else "—"),
            cell(num(r.timings.fit_s if r.timings else None, ".1f"),
                 r.timings.fit_s if r.timings else None),
            cell(f"<code>{r.split.fingerprint[:12]}</code>" if r.split else "—"),
            cell(f"<code>{r.validation.fingerprint[:12]}</code>" if r.validation else "—"),
            cell(f"<code>{html.escape(str(r.env.get('git_commit', ''))[:12])}</code>"),
            cell(html.escape(f"{r.env.get('torch', '')}, {r.env.get('cpu', '')}, "
                             f"{r.env.get('torch_threads', '')} threads")),
        ]) + "</tr>")
    parts.append("<h2>Every cell</h2>")
    parts.append(table(["folder", "data", "split", "recipe", "seed", "RMSE", "NDCG@10",
                        "validation: best @ epoch", "fit s", "split", "carving", "commit",
                        "environment"], rows))
    parts.append(curves(name, cells))
    parts.append("<p>Reproduce a cell with its folder's <code>experiment.toml</code>: "
                 "<code>python -m bench run --config FOLDER/experiment.toml -m "
                 f"{html.escape(name)}</code>.</p>")
    return "\n".join(parts)


def curves(name: str, cells: list[tuple[Path, Record]]) -> str:
    """The validation figure at each read, per seed, of the default published cells."""
    out = []
    by_data: dict[str, list[Record]] = {}
    for folder, r in cells:
        if folder.name == "published" and report.label(r) == "default":
            by_data.setdefault(r.dataset, []).append(r)
    for dataset, recs in sorted(by_data.items()):
        traces = []
        for r in sorted(recs, key=lambda r: r.seed):
            read = [h for h in r.history if h.get("valid") is not None]
            if len(read) < 2:
                continue
            traces.append({"type": "scatter", "mode": "lines+markers",
                           "name": f"seed {r.seed}",
                           "x": [h["epoch"] for h in read], "y": [h["valid"] for h in read],
                           "hovertemplate": f"seed {r.seed}, epoch %{{x}}: %{{y:.4f}}"
                                            "<extra></extra>"})
        if traces:
            metric = recs[0].validation.metric if recs[0].validation else "validation"
            layout = {"title": {"text": f"{dataset}: validation {metric} by epoch"},
                      "xaxis": {"title": {"text": "epoch"}},
                      "yaxis": {"title": {"text": metric}}, "height": 320,
                      "margin": {"l": 60, "r": 10, "t": 40, "b": 40}}
            out.append(_plot(f"curve-{name}-{dataset}", traces, layout))
    return ("<h2>Learning curves</h2>\n" + "\n".join(out)) if out else ""


def markdown_html(text: str) -> str:
    import markdown

    body = markdown.markdown(text, extensions=["tables", "fenced_code"])
    return body.replace("<table>", '<table class="sortable">')


# ---- the site

def write(folders: list[Path], out: Path) -> list[Path]:
    """Write the site of `folders` (run folders, and folders with markdown reports) to `out`,
    replacing what was there; the written files."""
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    for sub in ("assets", "boards", "variants", "reports"):
        (out / sub).mkdir(parents=True)
    assets = resources.files(__package__).joinpath("site_assets")
    for name in ("site.css", "site.js"):
        (out / "assets" / name).write_text(assets.joinpath(name).read_text(encoding="utf-8"),
                                           encoding="utf-8")
    import plotly

    shutil.copyfile(Path(plotly.__file__).parent / "package_data" / "plotly.min.js",
                    out / "assets" / "plotly.min.js")
    all_boards, taken, by_model, loaded = [], set(), {}, {}
    for folder in folders:
        if (folder / "runs.jsonl").is_file():
            recs = records.read(folder)
            loaded[folder.name] = (folder, recs)
            all_boards += boards(folder, recs, taken)
            for r in recs:
                if r.ok:
                    by_model.setdefault(r.model, []).append((folder, r))
    board_of = {}  # a cell's table, for its variant page: the ranking board where it has one
    for b in sorted(all_boards, key=lambda b: b.spec is report.RATING):
        board_of.setdefault((str(b.folder), b.dataset, b.split, b.device, b.mode, b.recipe),
                            b.slug)
    for b in all_boards:
        (out / "boards" / f"{b.slug}.html").write_text(
            page(b.title, board_html(b), depth=1, plots=True), encoding="utf-8")
    for name, cells in sorted(by_model.items()):
        (out / "variants" / f"{name}.html").write_text(
            page(name, variant_html(name, cells, board_of), depth=1, plots=True),
            encoding="utf-8")
    report_links = []
    for folder in folders:
        for name in REPORTS:
            src = folder / name
            if src.is_file():
                slug = f"{folder.name}-{src.stem}"
                text = src.read_text(encoding="utf-8")
                title = text.splitlines()[0].lstrip("# ").strip() if text.startswith("#") \
                    else f"{folder.name}: {src.stem}"
                (out / "reports" / f"{slug}.html").write_text(
                    page(title, f"<p>From <code>{html.escape(str(src))}</code>.</p>"
                         + markdown_html(text), depth=1), encoding="utf-8")
                report_links.append((slug, f"{title} <small>({folder.name})</small>"))
    for folder in folders:
        peers_file = folder / "speed-cpu-peers.json"
        if peers_file.is_file():  # aebench against RecBole 1.2.1, back to back
            from aebench.bench.speed import peers

            slug = f"{folder.name}-speed-peers"
            title = "Speed against the RecBole peers"
            text = peers.markdown(json.loads(peers_file.read_text())["rows"])
            (out / "reports" / f"{slug}.html").write_text(page(title, (
                f"<p>From <code>{html.escape(str(peers_file))}</code>: each family's epoch "
                "(or fit) beside its RecBole 1.2.1 peer's, timed back to back on the same "
                "split and threads (<code>python -m bench speed --peers</code>; see the "
                "documentation's Speed page).</p>") + markdown_html(text), depth=1),
                encoding="utf-8")
            report_links.append((slug, f"{title} <small>({folder.name})</small>"))
    (out / "index.html").write_text(page("aebench results", index_html(
        all_boards, sorted(by_model), report_links, loaded)), encoding="utf-8")
    return sorted(p for p in out.rglob("*") if p.is_file())


def index_html(all_boards: list[Board], variants: list[str], report_links, loaded) -> str:
    parts = []
    runs = [(folder, recs, recipe) for key, recipe in (("published", "default"),
                                                      ("published-tuned", "tuned"))
            if key in loaded for folder, recs in [loaded[key]]]
    if runs:
        parts.append("<h2>The verdict</h2><p>The best autoencoder against the best reference "
                     "per dataset and task (Wilcoxon over per-user values paired by seed and "
                     "user, Holm over the table; † a reference).</p>")
        parts.append(markdown_html(report.verdict(runs)))
    by_data: dict[str, list[Board]] = {}
    for b in all_boards:
        by_data.setdefault(b.dataset, []).append(b)
    parts.append("<h2>Leaderboards</h2>")
    for dataset in sorted(by_data, key=lambda d: (d != "ml-1m", d)):
        items = "".join(f'<li><a href="boards/{b.slug}.html">{html.escape(b.title)}</a> '
                        f'<small>({html.escape(b.folder.name)}, {len(b.rows)} variants)'
                        f"</small></li>" for b in by_data[dataset])
        parts.append(f"<h3>{html.escape(dataset)}</h3><ul>{items}</ul>")
    parts.append("<h2>Variants</h2><p>" + " · ".join(
        f'<a href="variants/{v}.html">{html.escape(v)}</a>' for v in variants) + "</p>")
    if report_links:
        parts.append("<h2>Reports</h2><ul>" + "".join(
            f'<li><a href="reports/{slug}.html">{title}</a></li>'
            for slug, title in report_links) + "</ul>")
    return "\n".join(parts)
