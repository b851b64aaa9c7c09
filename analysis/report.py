"""One self-contained HTML report of one run of a sweep: what ran, the figures, the fits, the tables.

``python -m analysis.report <output> [--out report.html] [--run ID] [--n N] [--resamples R]``
reads one run of a results folder (the latest by default), computes the accuracy table
(``analysis.estimators.compute_accuracy``) and writes one HTML file, plotly.js inline once, so
it opens offline.

The page: a header (the run, its grid, models, datasets, what it spent, errors, the other runs
in the folder); controls for dataset, step-score aggregation and "all methods"; then per
dataset accuracy vs FLOPs with the Pareto frontier, accuracy vs n with the saturation fits,
coverage (pass@n), tree search against sampling, the paper-style table and one search tree;
across datasets, compute-optimal model size. pass@n is drawn but kept off the frontier and
the compute-optimal fit: it assumes an oracle verifier.

``build_report`` is pure (DataFrames in, HTML out); ``gather_facts`` reads the header's facts
(``analysis/sql/report_*.sql``, ``manifest.json``); only ``write_report`` and ``main`` write.
Tables are ``analysis.tables``', figures ``analysis.plots``'.
"""

from __future__ import annotations

import argparse
import html
import logging
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import plotly.graph_objects as go

from analysis.compute_optimal import PAPER_ALPHA, PAPER_BETA, fit_compute_optimal
from analysis.frontier import compute_frontier
from analysis.log_flops import fit_log_flops
from analysis.methods import (
    AGGREGATIONS,
    ORACLE_METHODS,
    PASS_AT_N,
    SAMPLING,
    TREE_STRATEGIES,
    format_params,
    parse_method,
    tree_labels,
)
from analysis.plots import (
    plot_accuracy_vs_flops,
    plot_accuracy_vs_n,
    plot_compute_optimal,
    plot_coverage,
    plot_search_vs_sampling,
    plot_tree,
)  # fmt: skip
from analysis.sandbox import statement_timeout
from analysis.saturation import fit_saturation
from analysis.tables import RunFacts, frame_html, header_html, paper_table, paper_table_html, runs_table
from analysis.views import DuplicateRows, load_sql

log = logging.getLogger(__name__)

ACCURACY_COLUMNS = (
    "model", "model_params", "dataset", "strategy", "method", "n", "accuracy", "ci_low", "ci_high",
    "problems", "tokens_per_problem", "policy_flops_per_problem", "reward_flops_per_problem",
    "flops_per_problem",
)  # fmt: skip
ERROR_ROWS = 200  # rows with errors listed in the page; the header counts them all
TREE_NODES = 2000  # nodes of the drawn tree, at most
SQL_TIMEOUT_S = 300.0


def build_report(
    accuracy_df: pd.DataFrame, *, title: str, n: int | None = None, aggregation: str = "last",
    facts: RunFacts | None = None,
) -> str:
    """The whole report as one HTML string (plotly.js inline, once). Pure: no files, no queries.

    ``accuracy_df`` has ``ACCURACY_COLUMNS`` (``compute_accuracy``'s output; ``samples_per_problem``
    too where adaptive methods add it). ``n`` picks the paper table's column; ``aggregation`` the
    BoN/WV aggregation shown first (``best``: the table's most accurate, every one in figures).
    ``facts`` fill the header and the trees; without them the header says what the table shows.
    """
    missing = [c for c in ACCURACY_COLUMNS if c not in accuracy_df.columns]
    if missing:
        raise ValueError(f"accuracy table lacks columns {missing}")
    if accuracy_df.empty:
        raise ValueError("accuracy table is empty: nothing to report")
    df, facts = accuracy_df, facts or RunFacts()
    kinds = facts.kinds
    present = [a for a in AGGREGATIONS if df["method"].map(lambda m: parse_method(m).aggregation == a).any()]
    options = [*present, "best"] if present else []
    chosen = aggregation if aggregation in options else (options[0] if options else aggregation)
    saturation = fit_saturation(df)
    figures = _FigureWriter()
    datasets = sorted(df["dataset"].unique())

    body = [f"<h1>{html.escape(title)}</h1>", header_html(df, facts), _controls(datasets, options, chosen)]
    slugs = [_slug(str(d)) for d in datasets]
    for i, dataset in enumerate(datasets):
        part = df[df["dataset"] == dataset]
        slug = slugs[i] if slugs.count(slugs[i]) == 1 else f"{slugs[i]}-{i}"  # ids stay unique
        frontier = compute_frontier(part[~part["method"].isin(ORACLE_METHODS)])
        tables = [(a, paper_table(part, n=n, aggregation=a, kinds=kinds)) for a in (options or [chosen])]
        body += [
            f'<section class="dataset" data-dataset="{html.escape(str(dataset))}"{" hidden" if i else ""}>',
            f"<h2>{html.escape(str(dataset))}</h2>",
            figures.add(plot_accuracy_vs_flops(part, frontier, kinds=kinds, aggregation=chosen,
                                               title=f"{html.escape(str(dataset))}: accuracy vs FLOPs per problem"),
                        f"fig-accuracy-vs-flops-{slug}"),
            _note(READ_FLOPS),
            '<div class="pair">',
            figures.add(plot_accuracy_vs_n(part, saturation[saturation["dataset"] == dataset], kinds=kinds,
                                           aggregation=chosen, title="accuracy vs n, fits a − b·exp(−c·n)"),
                        f"fig-accuracy-vs-n-{slug}"),
            figures.add(plot_coverage(part, kinds=kinds, title="coverage: pass@n"), f"fig-coverage-{slug}")
            if (part["method"] == PASS_AT_N).any() else _note("No pass@n rows."),
            "</div>", _note(READ_N),
            _search_vs_sampling(part, kinds, chosen, figures, slug),
            f"<h3>Paper-style table (n = {tables[0][1].attrs['n']})</h3>",
            *(f'<div class="wide" data-agg="{a}"{"" if a == chosen or not options else " hidden"}>'
              f"{paper_table_html(t, table_id=f'paper-table-{slug}' + ('' if a == chosen else f'-{a}'))}</div>"
              for a, t in tables),
            _note("Accuracy and FLOPs per problem; MV/BoN/WV at the n above, BoN/WV under the chosen "
                  "aggregation of step scores (best: the most accurate aggregation per cell)."),
            _tree(facts.trees.get(str(dataset)), figures, slug),
            "</section>",
        ]
    body += [_compute_optimal(df, kinds, figures), _fit_tables(saturation, df), _runs(facts), _errors(facts)]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(body) + f"\n<script>{SCRIPT}</script>\n</body></html>\n"
    )


READ_FLOPS = ("One colour per strategy family, one marker per model; each line runs over n (sampling) or "
              "the budget (tree search); bars: 95% bootstrap intervals over problems. The black step is the "
              "Pareto frontier (best accuracy within each budget; pass@n excluded, it needs an oracle), its "
              "points ringed and named where the winner changes. Click a legend entry to hide or show it.")
READ_N = ("Left: accuracy as the number of samples grows, with the fit a − b·exp(−c·n) dashed and its limit a "
          "(bar: bootstrap interval) in the \u201cfit limit\u201d column. Right: pass@n, the chance that some "
          "sample of n is right.")


def _controls(datasets: list[str], options: list[str], chosen: str) -> str:
    parts = []
    if len(datasets) > 1:
        parts.append('<label>dataset <select id="ctl-dataset">' + "".join(
            f'<option value="{html.escape(str(d))}">{html.escape(str(d))}</option>' for d in datasets) + "</select></label>")
    if options:
        parts.append('<label>BoN/WV step-score aggregation <select id="ctl-agg">' + "".join(
            f'<option value="{a}"{" selected" if a == chosen else ""}>{a}</option>' for a in options) + "</select></label>")
    parts.append('<label><input type="checkbox" id="ctl-all"> all methods in the legends</label>')
    return '<nav class="controls">' + "".join(parts) + "</nav>"


def _search_vs_sampling(part: pd.DataFrame, kinds: Mapping[str, str], aggregation: str,
                        figures: _FigureWriter, slug: str) -> str:
    strategy_kinds = {kinds.get(s, s) for s in part["strategy"].unique()}
    if not strategy_kinds & set(TREE_STRATEGIES) or SAMPLING not in strategy_kinds:
        return _note("Tree search against sampling: this run has not both, so there is nothing to compare.")
    fig = plot_search_vs_sampling(part, kinds=kinds, aggregation=aggregation,
                                  title="tree search against sampling at equal FLOPs")
    return figures.add(fig, f"fig-search-vs-sampling-{slug}")


def _tree(picked: tuple[Mapping[str, Any], pd.DataFrame] | None, figures: _FigureWriter, slug: str) -> str:
    if picked is None:
        return ""
    pick, nodes = picked
    title = (f"one search tree: {pick['strategy']} (budget {pick['budget']}), {pick['model']}, problem "
             f"{pick['problem_id']}: {pick['right_paths']} right and {pick['wrong_paths']} wrong finished paths")
    return (f"<h3>One search tree</h3>{figures.add(plot_tree(nodes, title=html.escape(title)), f'fig-tree-{slug}')}"
            + _note("Each box is a step, sized by the paths under it and coloured by the reward model's score; "
                    "✓/✗ mark finished paths with a right/wrong answer. Hover for the text. Pick another "
                    "problem with --tree-problem."))


def _compute_optimal(df: pd.DataFrame, kinds: Mapping[str, str], figures: _FigureWriter) -> str:
    head = "<h2>Compute-optimal model size</h2>"
    sizes = df.drop_duplicates("model_params").sort_values("model_params")
    if len(sizes) < 2:
        names = ", ".join(f"{m} ({format_params(p)})" for m, p in zip(sizes["model"], sizes["model_params"]))
        return head + ('<p class="note callout" id="compute-optimal-note">Compute-optimal model size needs at '
                       f"least two model sizes; this run has one: {html.escape(names)}. Add a larger or smaller "
                       "model to the grid to see how the optimal size grows with the budget.</p>")
    optimal = fit_compute_optimal(df)
    return (head + figures.add(plot_compute_optimal(optimal, kinds=kinds, title="compute-optimal model size vs FLOPs budget"),
                               "fig-compute-optimal")
            + _note(f"Winners coloured by their strategy family. Fit log10 C = α·log10 N + β over a log-spaced grid "
                    f"of budgets; the band: lines of slope α at its 95% bootstrap limits through the winners' "
                    f"centroid. Wu et al. (2024): α = {PAPER_ALPHA}, β = {PAPER_BETA} on Pythia.")
            + frame_html(optimal.fits, "compute-optimal-fits")
            + _details("Compute-optimal model per budget", frame_html(optimal.winners, "compute-optimal-winners")))


def _fit_tables(saturation: pd.DataFrame, df: pd.DataFrame) -> str:
    return ("<h2>Fits</h2>" + _details("Saturation fits a − b·exp(−c·n)", frame_html(saturation, "saturation-fits"))
            + _details("Accuracy vs log10 FLOPs: linear fits", frame_html(fit_log_flops(df), "log-flops-fits")))


def _runs(facts: RunFacts) -> str:
    if facts.runs is None or facts.runs.empty:
        return ""
    return ('<h2 id="runs">Runs in this folder</h2>' + frame_html(runs_table(facts.runs, facts.records), "runs-table")
            + _note("This report shows one run; <code>python -m analysis.report OUTPUT --run ID</code> shows another."))


def _errors(facts: RunFacts) -> str:
    if facts.errors is None:
        return ""
    if facts.errors.empty:
        return '<h2 id="errors">Rows with errors</h2><p class="note">None.</p>'
    cut = f" (the first {len(facts.errors)} of {facts.error_rows:,})" if facts.error_rows > len(facts.errors) else ""
    return f'<h2 id="errors">Rows with errors{cut}</h2>' + frame_html(facts.errors, "errors-table")


class _FigureWriter:
    """Figures to HTML divs; the first carries plotly.js, the rest reuse it."""

    def __init__(self) -> None:
        self._library_written = False

    def add(self, fig: go.Figure, div_id: str) -> str:
        out = fig.to_html(full_html=False, include_plotlyjs=not self._library_written, div_id=div_id,
                          config={"displaylogo": False, "responsive": True})
        self._library_written = True
        return f'<div class="figure">{out}</div>'


def _details(summary: str, content: str) -> str:
    return f"<details><summary>{html.escape(summary)}</summary>{content}</details>"


def _note(text: str) -> str:
    return f'<p class="note">{text}</p>'


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "x"


STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.2em auto; max-width: 1280px; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; margin: 0.2em 0; } h2 { border-bottom: 1px solid #ddd; margin-top: 1.4em; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.15em 1em; margin: 0.6em 0; font-size: 0.92em; }
dl.facts dt { font-weight: 600; color: #555; } dl.facts dd { margin: 0; }
nav.controls { position: sticky; top: 0; z-index: 10; background: #f6f8fa; border: 1px solid #ddd;
  border-radius: 6px; padding: 0.4em 0.8em; display: flex; gap: 2em; font-size: 0.92em; margin: 0.6em 0; }
.wide { overflow-x: auto; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 0.5em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.6em 0; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }
th { background: #f3f3f3; text-align: center; } #grid td { text-align: left; }
details { margin: 0.6em 0; } summary { cursor: pointer; font-weight: 600; }
.note { color: #555; font-size: 0.88em; margin: 0.2em 0 0.8em; }
.callout { border-left: 4px solid #d62728; background: #fff5f5; padding: 0.8em 1em; font-size: 1em; color: #333; }
"""

# The controls: dataset shows one section; aggregation and "all methods" restyle every figure's
# curves by their meta (analysis.plots), by the rule analysis.plots._visible applies in Python.
SCRIPT = """
(function () {
  const get = (id) => document.getElementById(id);
  function apply() {
    const agg = get('ctl-agg') ? get('ctl-agg').value : null, all = get('ctl-all').checked;
    const dataset = get('ctl-dataset') ? get('ctl-dataset').value : null;
    document.querySelectorAll('section.dataset').forEach((s) => { s.hidden = dataset !== null && s.dataset.dataset !== dataset; });
    document.querySelectorAll('[data-agg]').forEach((t) => { t.hidden = agg !== null && t.dataset.agg !== agg; });
    document.querySelectorAll('.plotly-graph-div').forEach((div) => {
      const idx = [], vis = [], leg = [];
      (div.data || []).forEach((t, i) => {
        const m = t.meta;
        if (!m || !m.role) return;
        const ok = !m.agg || agg === null || agg === 'best' || m.agg === agg;
        let v = false;
        if (ok && m.role === 'primary') v = true;
        else if (ok && (m.role === 'hidden' || all)) v = 'legendonly';
        idx.push(i); vis.push(v); leg.push(v !== false && m.legend);
      });
      if (idx.length) Plotly.restyle(div, {visible: vis, showlegend: leg}, idx);
      if (div.offsetParent !== null) Plotly.Plots.resize(div);
    });
  }
  ['ctl-agg', 'ctl-all', 'ctl-dataset'].forEach((id) => { if (get(id)) get(id).addEventListener('change', apply); });
})();
"""


def gather_facts(con: duckdb.DuckDBPyConnection, output: str, *, tree_problem: str | None = None) -> RunFacts:
    """The header's facts and one tree per dataset, read from ``con`` (``analysis.views.connect``
    on ``output``) and ``output``'s manifest. The run described is the one ``con`` reads (its
    ``runs`` view marks it current), even if another run was recorded since. Each query is
    bounded (rows, time)."""
    from sweep.results.runs import recorded_runs, select_run
    from sweep.results.store import ResultsStore

    manifest = ResultsStore(output).read_manifest()
    runs = con.sql("SELECT * FROM runs").df()
    current = runs.loc[runs["current"], "run_id"].tolist()
    record = select_run(manifest, current[0]) if current else None  # None: the folder read whole
    views = set(_query(con, "report_views")["view_name"])
    facts: dict[str, Any] = {"record": record, "records": recorded_runs(manifest), "runs": runs}
    if "samples" in views:
        facts["spent"] = _query(con, "report_spent")
        errors = [_errors_of(con, "samples", "sample_index")]
        if "nodes" in views:
            errors.append(_errors_of(con, "nodes", "node_id").rename(columns={"node_id": "sample_index"}))
        frames = [e for e in errors if not e.empty]
        facts["error_rows"] = sum(int(e["total"].iloc[0]) for e in frames)
        facts["errors"] = (pd.concat(frames).drop(columns="total").head(ERROR_ROWS) if frames
                           else errors[0].drop(columns="total"))
    if "problems" in views:
        facts["problems"] = _query(con, "report_problems")
    if "nodes" in views:
        labels = tree_labels(RunFacts(record=record).kinds)
        picks = _query(con, "report_tree_pick", {"strategies": labels, "problem": tree_problem})
        facts["trees"] = {str(p["dataset"]): (p.to_dict(), _query(con, "report_tree_nodes",
                                                                 {"tree_id": p["tree_id"], "limit": TREE_NODES}))
                          for _, p in picks.iterrows()}
    return RunFacts(**facts)


def _errors_of(con: duckdb.DuckDBPyConnection, table: str, index: str) -> pd.DataFrame:
    """At most ERROR_ROWS rows of ``table`` (a view) with an error, each named by its ``index`` column."""
    params = {"table": table, "index": f"^{index}$", "limit": ERROR_ROWS}  # COLUMNS() takes a regex
    return _query(con, "report_errors", params).assign(table=table)


def _query(con: duckdb.DuckDBPyConnection, name: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
    with statement_timeout(con, SQL_TIMEOUT_S):
        return con.sql(load_sql(name), params=dict(params or {})).df()


def write_report(
    output: str, *, out: Path | None = None, run: str | None = None, resamples: int = 100, seed: int = 0,
    n: int | None = None, aggregation: str = "last", include_reward_flops: bool = True,
    title: str | None = None, tree_problem: str | None = None,
) -> Path | None:
    """Estimate, fit and write the HTML report of one run of ``output`` (default: the latest);
    None when it holds no samples."""
    from analysis.estimators import compute_accuracy
    from analysis.views import connect

    out = out or Path(output) / "report.html"
    con = connect(output, run=run)
    accuracy = compute_accuracy(con, resamples=resamples, seed=seed, include_reward_flops=include_reward_flops)
    if accuracy.empty:
        return None
    facts = gather_facts(con, output, tree_problem=tree_problem)
    page = build_report(accuracy, title=title or f"Inference scaling report: {output}", n=n,
                        aggregation=aggregation, facts=facts)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.report", description=__doc__.splitlines()[0])
    parser.add_argument("output", help="the sweep's results folder (or URI)")
    parser.add_argument("--out", help="HTML file to write (default: <output>/report.html)")
    parser.add_argument("--n", type=int, help="n for the paper table (default: largest n every curve has)")
    parser.add_argument("--resamples", type=int, default=100, help="random n-subsets per problem for the voting estimates")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--aggregation", default="last", choices=[*AGGREGATIONS, "best"],
                        help="step-score aggregation of BoN/WV shown first (the page can switch)")
    parser.add_argument("--no-reward-flops", action="store_true",
                        help="leave reward-model FLOPs out of the cost (they count by default)")
    parser.add_argument("--run", help="run id from manifest.json (default: the latest run)")
    parser.add_argument("--tree-problem", help="problem id whose search tree to draw (default: one with right and wrong paths)")
    parser.add_argument("--title", help="report title")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    remote = "://" in args.output
    if not remote and not Path(args.output).is_dir():
        parser.error(f"output folder {args.output!r} does not exist")
    if remote and not args.out:
        parser.error("--out is required when output is a URI")
    out = Path(args.out) if args.out else Path(args.output) / "report.html"

    from sweep.results.runs import RunNotFound
    from sweep.results.store import ManifestError

    try:
        written = write_report(
            args.output, out=out, run=args.run, resamples=args.resamples, seed=args.seed, n=args.n,
            aggregation=args.aggregation, include_reward_flops=not args.no_reward_flops, title=args.title,
            tree_problem=args.tree_problem,
        )
    except (RunNotFound, DuplicateRows, ManifestError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if written is None:
        print(f"error: no results under {args.output}", file=sys.stderr)
        return 1
    print(written.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
