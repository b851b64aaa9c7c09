"""One self-contained HTML report of a sweep: figures, fits and a paper-style table.

``python -m analysis.report <output> [--out report.html] [--n N] [--resamples R]`` reads a
sweep's results folder, computes the accuracy table (``analysis.estimators.compute_accuracy``)
and writes one HTML file with plotly.js embedded once, so it opens offline.

Per dataset: accuracy vs FLOPs with the Pareto frontier, accuracy vs n with the saturation
fits, and a table in the layout of Wu et al. (2024)'s result tables (greedy; majority vote, best-of-n,
weighted vote under sampling and REBASE). Across datasets: compute-optimal model size vs budget
with the fitted log10 C = α·log10 N + β.

``build_report`` is pure (DataFrame in, HTML out); ``plot_*`` take DataFrames and return
figures; only ``main`` touches files or DuckDB. pass@n is drawn but kept out of the frontier
and the compute-optimal fit: it assumes an oracle verifier.
"""

from __future__ import annotations

import argparse
import html
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from analysis.fits import (
    PAPER_ALPHA,
    PAPER_BETA,
    ComputeOptimalFit,
    fit_compute_optimal,
    fit_log_flops,
    fit_saturation,
    saturation_curve,
)
from analysis.views import DuplicateRows
from analysis.frontier import compute_frontier

log = logging.getLogger(__name__)

ACCURACY_COLUMNS = (
    "model", "model_params", "dataset", "strategy", "method", "n", "accuracy", "ci_low", "ci_high",
    "problems", "tokens_per_problem", "policy_flops_per_problem", "reward_flops_per_problem",
    "flops_per_problem",
)
AGGREGATIONS = ("last", "min", "prod", "mean")
ORACLE_METHODS = ("pass_at_n",)
STRATEGY_ORDER = ("greedy", "sampling", "rebase", "mcts")
STRATEGY_LABELS = {"greedy": "Greedy", "sampling": "Sampling", "rebase": "REBASE", "mcts": "MCTS"}
# The paper's result tables: one column per voting family, in this order.
TABLE_FAMILIES = {"majority_vote": "MV", "best_of_n": "BoN", "weighted_vote": "WV"}
METHOD_SYMBOLS = {
    "greedy": "star", "majority_vote": "circle", "weighted_vote": "diamond",
    "best_of_n": "square", "pass_at_n": "x",
}
STRATEGY_DASHES = ("solid", "dash", "dot", "dashdot", "longdash")
COLORS = qualitative.Plotly + qualitative.D3


# ---------------------------------------------------------------------------------------------
# Table
# ---------------------------------------------------------------------------------------------


def split_method(method: str) -> tuple[str, str | None]:
    """``"weighted_vote_min"`` → ``("weighted_vote", "min")``; ``"majority_vote"`` → (it, None)."""
    for aggregation in AGGREGATIONS:
        if method.endswith(f"_{aggregation}"):
            return method[: -len(aggregation) - 1], aggregation
    return method, None


def largest_common_n(df: pd.DataFrame) -> int | None:
    """The largest n that every (model, strategy, method) curve has; None if they share none.

    Greedy (one sample by construction) and oracle methods do not constrain it.
    """
    curves = df[~df["method"].isin(["greedy", *ORACLE_METHODS])]
    if curves.empty:
        return None
    sets = [set(rows["n"]) for _, rows in curves.groupby(["model", "strategy", "method"])]
    common = set.intersection(*sets)
    return int(max(common)) if common else None


def paper_table(df: pd.DataFrame, *, n: int | None = None, aggregation: str = "last") -> pd.DataFrame:
    """Accuracy and FLOPs per model in the layout of Wu et al. (2024)'s tables, one dataset.

    Rows: models, smallest first. Columns: a three-level index (strategy, method, quantity) with
    quantity ∈ {"accuracy", "FLOPs"}: ("Greedy", "Greedy", ·), then MV, BoN, WV under each
    non-greedy strategy present (Sampling, REBASE, then others); a strategy or method with no
    rows is left out. Voting cells are at ``n`` (default: ``largest_common_n``; if the curves share
    no n, the largest n, blank where a curve lacks it). BoN and WV use ``aggregation`` of step
    rewards (``"last"``, ``"min"``, ``"prod"``, ``"mean"``), or ``"best"``: the most accurate
    aggregation per cell. The n used is in ``table.attrs["n"]``.
    """
    if df["dataset"].nunique() > 1:
        raise ValueError(f"paper_table takes one dataset; got {sorted(df['dataset'].unique())}")
    if aggregation not in (*AGGREGATIONS, "best"):
        raise ValueError(f"aggregation must be one of {[*AGGREGATIONS, 'best']}; got {aggregation!r}")
    if n is None:
        n = largest_common_n(df)
        curves = df.loc[~df["method"].isin(["greedy", *ORACLE_METHODS]), "n"]
        if n is None and not curves.empty:
            n = int(curves.max())
            log.warning("no n common to every curve; the table uses n = %d and leaves gaps", n)
    models = df.drop_duplicates("model").sort_values(["model_params", "model"])["model"].tolist()
    columns: dict[tuple[str, str, str], pd.Series] = {}

    greedy = df[df["method"] == "greedy"].assign(_pref=lambda t: t["strategy"] != "greedy")
    greedy = greedy.sort_values(["_pref", "n"]).drop_duplicates("model").set_index("model")
    if not greedy.empty:
        columns[("Greedy", "Greedy", "accuracy")] = greedy["accuracy"]
        columns[("Greedy", "Greedy", "FLOPs")] = greedy["flops_per_problem"]

    at_n = df[df["n"] == n] if n is not None else df.iloc[0:0]
    for strategy in _ordered_strategies(df["strategy"].unique()):
        if strategy == "greedy":
            continue
        rows = at_n[at_n["strategy"] == strategy]
        family = rows["method"].map(lambda m: split_method(m)[0])
        agg = rows["method"].map(lambda m: split_method(m)[1])
        for name, label in TABLE_FAMILIES.items():
            wanted = family == name
            if name != "majority_vote" and aggregation != "best":
                wanted &= agg == aggregation
            cells = rows[wanted]
            if cells.empty:
                continue
            # "best": the most accurate aggregation per model, the cheaper one on ties.
            cells = cells.sort_values(["accuracy", "flops_per_problem"], ascending=[False, True])
            cells = cells.drop_duplicates("model").set_index("model")
            top = STRATEGY_LABELS.get(strategy, strategy)
            columns[(top, label, "accuracy")] = cells["accuracy"]
            columns[(top, label, "FLOPs")] = cells["flops_per_problem"]

    table = pd.DataFrame(columns, index=pd.Index(models, name="model"))
    names = ["strategy", "method", ""]
    table.columns = (pd.MultiIndex.from_tuples(list(columns), names=names) if columns
                     else pd.MultiIndex(levels=[[]] * 3, codes=[[]] * 3, names=names))
    table.attrs["n"] = n
    return table


def _ordered_strategies(strategies: Sequence[str]) -> list[str]:
    known = [s for s in STRATEGY_ORDER if s in set(strategies)]
    return known + sorted(set(strategies) - set(STRATEGY_ORDER))


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


def plot_accuracy_vs_flops(
    df: pd.DataFrame, frontier: pd.DataFrame, *, aggregation: str = "last", title: str = "Accuracy vs FLOPs"
) -> go.Figure:
    """Accuracy vs FLOPs per problem (log x), one line per (model, strategy, method), and the frontier.

    Colour: model; dash: strategy; marker: method. Methods other than greedy, MV and BoN/WV with
    ``aggregation`` start hidden (click the legend). The frontier is drawn as a step: the best
    accuracy reachable within each budget.
    """
    fig = go.Figure()
    colors, dashes = _styles(df)
    for (model, strategy, method), rows in _curves(df):
        rows = rows.sort_values("flops_per_problem")
        fig.add_trace(go.Scatter(
            x=rows["flops_per_problem"], y=rows["accuracy"], mode="lines+markers",
            name=f"{model} · {strategy} · {method}", legendgroup=model,
            line={"color": colors[model], "dash": dashes[strategy]},
            marker={"symbol": METHOD_SYMBOLS.get(split_method(method)[0], "circle"), "size": 7},
            error_y=_error_bars(rows), visible=_visible(method, aggregation),
            customdata=rows[["n"]].to_numpy(),
            hovertemplate=f"{model}<br>{strategy} · {method}<br>n=%{{customdata[0]}}"
                          "<br>FLOPs=%{x:.3e}<br>accuracy=%{y:.3f}<extra></extra>",
        ))
    if not frontier.empty:
        front = frontier.sort_values("flops_per_problem")
        fig.add_trace(go.Scatter(
            x=front["flops_per_problem"], y=front["accuracy"], mode="lines+markers",
            name="Pareto frontier", line={"color": "black", "width": 3, "shape": "hv"},
            marker={"color": "black", "size": 9, "symbol": "circle-open"},
            text=[f"{r.model} · {r.strategy} · {r.method} · n={r.n}" for r in front.itertuples()],
            hovertemplate="%{text}<br>FLOPs=%{x:.3e}<br>accuracy=%{y:.3f}<extra>frontier</extra>",
        ))
    fig.update_layout(title=title, xaxis={"type": "log", "title": "FLOPs per problem"},
                      yaxis={"title": "accuracy"}, legend={"font": {"size": 10}}, height=600)
    return fig


def plot_accuracy_vs_n(
    df: pd.DataFrame, fits: pd.DataFrame, *, aggregation: str = "last", title: str = "Accuracy vs n"
) -> go.Figure:
    """Accuracy vs number of samples n (log x), with the fitted a − b·exp(−c·n) dashed over it.

    ``fits`` is ``fit_saturation``'s output; groups whose fit failed are drawn without a curve.
    """
    fig = go.Figure()
    colors, _ = _styles(df)
    fitted = {tuple(r[k] for k in ("model", "dataset", "strategy", "method")): r for _, r in fits.iterrows()}
    for (model, strategy, method), rows in _curves(df):
        rows = rows.sort_values("n")
        visible = _visible(method, aggregation)
        name = f"{model} · {strategy} · {method}"
        group = f"{model}/{strategy}/{method}"
        fig.add_trace(go.Scatter(
            x=rows["n"], y=rows["accuracy"], mode="markers", name=name, legendgroup=group,
            marker={"color": colors[model], "symbol": METHOD_SYMBOLS.get(split_method(method)[0], "circle")},
            error_y=_error_bars(rows), visible=visible,
            hovertemplate=f"{name}<br>n=%{{x}}<br>accuracy=%{{y:.3f}}<extra></extra>",
        ))
        fit = fitted.get((model, rows["dataset"].iloc[0], strategy, method))
        if fit is None or not (np.isfinite(fit["a"]) and np.isfinite(fit["b"])):
            continue
        grid = np.geomspace(rows["n"].min(), rows["n"].max(), 100)
        c = fit["c"] if np.isfinite(fit["c"]) else 0.0  # flat fit: b = 0, the curve is the line a
        fig.add_trace(go.Scatter(
            x=grid, y=saturation_curve(grid, fit["a"], fit["b"], c), mode="lines", legendgroup=group,
            name=f"fit: a={fit['a']:.3f}", showlegend=False, visible=visible,
            line={"color": colors[model], "dash": "dash", "width": 1.5},
            hovertemplate=(f"{name}<br>a={fit['a']:.3f} b={fit['b']:.3g} c={c:.3g}"
                           f"<br>r²={fit['r2']:.3f}<extra>fit</extra>"),
        ))
    fig.update_layout(title=title, xaxis={"type": "log", "title": "samples per problem n"},
                      yaxis={"title": "accuracy"}, legend={"font": {"size": 10}}, height=600)
    return fig


def plot_compute_optimal(
    result: ComputeOptimalFit, *, title: str = "Compute-optimal model size"
) -> go.Figure:
    """Optimal model size N vs FLOPs budget C (log-log), with log10 C = α·log10 N + β per dataset.

    The paper's Pythia fit (α = 1.19, β = 2.03) is a hidden reference line.
    """
    fig = go.Figure()
    winners, fits = result.winners, result.fits
    for i, (dataset, rows) in enumerate(winners.groupby("dataset", sort=True)):
        color = COLORS[i % len(COLORS)]
        fig.add_trace(go.Scatter(
            x=rows["budget"], y=rows["model_params"], mode="markers", name=f"{dataset}: optimal model",
            marker={"color": color, "size": 8},
            text=[f"{r.model} · {r.strategy} · {r.method} · n={r.n} · acc={r.accuracy:.3f}"
                  for r in rows.itertuples()],
            hovertemplate="%{text}<br>budget=%{x:.3e}<br>params=%{y:.3e}<extra></extra>",
        ))
        fit = fits[fits["dataset"] == dataset]
        if fit.empty or not np.isfinite(fit["alpha"].iloc[0]):
            continue
        fit = fit.iloc[0]
        budget = np.geomspace(rows["budget"].min(), rows["budget"].max(), 50)
        fig.add_trace(go.Scatter(
            x=budget, y=10 ** ((np.log10(budget) - fit["beta"]) / fit["alpha"]), mode="lines",
            line={"color": color},
            name=(f"{dataset}: log C = {fit['alpha']:.2f} log N + {fit['beta']:.2f}"
                  f" (α 95% CI {fit['alpha_low']:.2f}–{fit['alpha_high']:.2f})"),
        ))
    if not winners.empty:
        budget = np.geomspace(winners["budget"].min(), winners["budget"].max(), 50)
        fig.add_trace(go.Scatter(
            x=budget, y=10 ** ((np.log10(budget) - PAPER_BETA) / PAPER_ALPHA), mode="lines",
            name=f"paper (Pythia): α={PAPER_ALPHA}, β={PAPER_BETA}", visible="legendonly",
            line={"color": "grey", "dash": "dot"},
        ))
    notes = [f"{r.dataset}: {r.reason}" for r in fits.itertuples() if r.status == "failed"]
    if winners.empty:
        notes.append("no points to select from")
    if notes:
        fig.add_annotation(text="<br>".join(html.escape(str(t)) for t in notes), showarrow=False,
                           xref="paper", yref="paper", x=0.5, y=0.5)
    fig.update_layout(title=title, xaxis={"type": "log", "title": "FLOPs budget per problem C"},
                      yaxis={"type": "log", "title": "compute-optimal parameters N"}, height=500)
    return fig


def _curves(df: pd.DataFrame):
    """(model, strategy, method) and rows, smallest model first."""
    order = df.sort_values(["model_params", "model", "strategy", "method"])
    return order.groupby(["model", "strategy", "method"], sort=False)


def _styles(df: pd.DataFrame) -> tuple[dict[str, str], dict[str, str]]:
    models = df.drop_duplicates("model").sort_values(["model_params", "model"])["model"]
    strategies = _ordered_strategies(df["strategy"].unique())
    return ({m: COLORS[i % len(COLORS)] for i, m in enumerate(models)},
            {s: STRATEGY_DASHES[i % len(STRATEGY_DASHES)] for i, s in enumerate(strategies)})


def _visible(method: str, aggregation: str) -> bool | str:
    family, agg = split_method(method)
    shown = family in ("greedy", "majority_vote") or (
        family in ("best_of_n", "weighted_vote") and agg in (aggregation, None)) or aggregation == "best"
    return True if shown and family not in ORACLE_METHODS else "legendonly"


def _error_bars(rows: pd.DataFrame) -> dict[str, object]:
    return {"type": "data", "symmetric": False, "thickness": 1, "width": 2,
            "array": (rows["ci_high"] - rows["accuracy"]).clip(lower=0),
            "arrayminus": (rows["accuracy"] - rows["ci_low"]).clip(lower=0)}


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1300px; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; text-align: center; }
details { margin: 1em 0; } summary { cursor: pointer; font-weight: 600; }
.note { color: #555; font-size: 0.9em; }
"""


def build_report(
    accuracy_df: pd.DataFrame, *, title: str, n: int | None = None, aggregation: str = "last"
) -> str:
    """The whole report as one HTML string (plotly.js inline, once). Pure: no files, no queries.

    ``accuracy_df`` has ``ACCURACY_COLUMNS`` (``analysis.estimators.compute_accuracy``'s output).
    ``n`` and ``aggregation`` choose the paper table's columns (see ``paper_table``).
    """
    missing = [c for c in ACCURACY_COLUMNS if c not in accuracy_df.columns]
    if missing:
        raise ValueError(f"accuracy table lacks columns {missing}")
    if accuracy_df.empty:
        raise ValueError("accuracy table is empty: nothing to report")
    df = accuracy_df
    saturation = fit_saturation(df)
    log_flops = fit_log_flops(df)
    optimal = fit_compute_optimal(df)
    figures = _FigureWriter()

    body = [f"<h1>{html.escape(title)}</h1>", _summary(df)]
    for dataset, part in df.groupby("dataset", sort=True):
        slug = _slug(str(dataset))
        candidates = part[~part["method"].isin(ORACLE_METHODS)]
        frontier = compute_frontier(candidates)
        table = paper_table(part, n=n, aggregation=aggregation)
        table_n = table.attrs["n"]
        body += [
            f"<h2>Dataset: {html.escape(str(dataset))}</h2>",
            figures.add(plot_accuracy_vs_flops(part, frontier, aggregation=aggregation,
                                               title=f"{dataset}: accuracy vs FLOPs per problem"),
                        f"fig-accuracy-vs-flops-{slug}"),
            '<p class="note">Black step: Pareto frontier over all models, strategies, methods and n '
            "(pass@n excluded: it needs an oracle verifier).</p>",
            figures.add(plot_accuracy_vs_n(part, saturation, aggregation=aggregation,
                                           title=f"{dataset}: accuracy vs n, fits a − b·exp(−c·n)"),
                        f"fig-accuracy-vs-n-{slug}"),
            f"<h3>Paper-style table ({html.escape(str(dataset))}, n = {table_n}, "
            f"BoN/WV aggregation: {html.escape(aggregation)})</h3>",
            _table_html(table, table_id=f"paper-table-{slug}"),
        ]
    body += [
        "<h2>Compute-optimal model size</h2>",
        figures.add(plot_compute_optimal(optimal, title="Compute-optimal model size vs FLOPs budget"),
                    "fig-compute-optimal"),
        f'<p class="note">Fit log10 C = α·log10 N + β over a log-spaced grid of budgets; Wu et al. '
        f"(2024) report α = {PAPER_ALPHA}, β = {PAPER_BETA} on Pythia. 95% intervals: the fit redone "
        "on bootstrap replicates over problems.</p>",
        _frame_html(optimal.fits, "compute-optimal-fits"),
        _details("Compute-optimal model per budget", _frame_html(optimal.winners, "compute-optimal-winners")),
        _details("Saturation fits a − b·exp(−c·n)", _frame_html(saturation, "saturation-fits")),
        _details("Accuracy vs log10 FLOPs: linear fits", _frame_html(log_flops, "log-flops-fits")),
    ]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(body) + "\n</body></html>\n"
    )


class _FigureWriter:
    """Figures to HTML divs; the first carries plotly.js, the rest reuse it."""

    def __init__(self) -> None:
        self._library_written = False

    def add(self, fig: go.Figure, div_id: str) -> str:
        out = fig.to_html(full_html=False, include_plotlyjs=not self._library_written, div_id=div_id,
                          config={"displaylogo": False})
        self._library_written = True
        return out


def _summary(df: pd.DataFrame) -> str:
    models = df.drop_duplicates("model").sort_values("model_params")
    items = [
        "models: " + ", ".join(
            f"{m} ({p:.3g} params)" for m, p in zip(models["model"], models["model_params"])
        ),
        "datasets: " + ", ".join(map(str, sorted(df["dataset"].unique()))),
        "strategies: " + ", ".join(_ordered_strategies(df["strategy"].unique())),
        "methods: " + ", ".join(sorted(df["method"].unique())),
        "n: " + ", ".join(str(v) for v in sorted(df["n"].unique())),
    ]
    return "<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>"


def _table_html(table: pd.DataFrame, *, table_id: str) -> str:
    shown = table.copy().astype(object)
    for column in table.columns:
        fmt = "{:.1%}" if column[-1] == "accuracy" else "{:.2e}"
        shown[column] = [fmt.format(v) if pd.notna(v) else "" for v in table[column]]
    return shown.rename_axis(index=None).to_html(table_id=table_id, na_rep="", border=0)


def _frame_html(frame: pd.DataFrame, table_id: str) -> str:
    if frame.empty:
        return '<p class="note">(empty)</p>'
    return frame.to_html(
        table_id=table_id, index=False, na_rep="", border=0, float_format=lambda v: f"{v:.4g}"
    )


def _details(summary: str, content: str) -> str:
    return f"<details><summary>{html.escape(summary)}</summary>{content}</details>"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "x"


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.report", description=__doc__.splitlines()[0])
    parser.add_argument("output", help="the sweep's results folder (or URI)")
    parser.add_argument("--out", help="HTML file to write (default: <output>/report.html)")
    parser.add_argument("--n", type=int, help="n for the paper table (default: largest n every curve has)")
    parser.add_argument("--resamples", type=int, default=100, help="bootstrap resamples for the CIs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--aggregation", default="last", choices=[*AGGREGATIONS, "best"],
                        help="step-reward aggregation for BoN/WV in the table")
    parser.add_argument("--no-reward-flops", action="store_true",
                        help="leave reward-model FLOPs out of the cost (they count by default)")
    parser.add_argument("--run", help="run id from manifest.json (default: the latest run)")
    parser.add_argument("--title", help="report title")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    remote = "://" in args.output
    if not remote and not Path(args.output).is_dir():
        parser.error(f"output folder {args.output!r} does not exist")
    if remote and not args.out:
        parser.error("--out is required when output is a URI")
    out = Path(args.out) if args.out else Path(args.output) / "report.html"

    from sweep.runs import RunNotFound
    from sweep.storage import ManifestError

    try:
        written = write_report(
            args.output,
            out=out,
            run=args.run,
            resamples=args.resamples,
            seed=args.seed,
            n=args.n,
            aggregation=args.aggregation,
            include_reward_flops=not args.no_reward_flops,
            title=args.title,
        )
    except (RunNotFound, DuplicateRows, ManifestError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if written is None:
        print(f"error: no results under {args.output}", file=sys.stderr)
        return 1
    print(written.resolve())
    return 0


def write_report(
    output: str,
    *,
    out: Path | None = None,
    run: str | None = None,
    resamples: int = 100,
    seed: int = 0,
    n: int | None = None,
    aggregation: str = "last",
    include_reward_flops: bool = True,
    title: str | None = None,
) -> Path | None:
    """Estimate, fit and write the HTML report of one run of ``output`` (default: the latest);
    None when it holds no samples."""
    from analysis.estimators import compute_accuracy
    from analysis.views import connect

    out = out or Path(output) / "report.html"
    accuracy = compute_accuracy(
        connect(output, run=run), resamples=resamples, seed=seed, include_reward_flops=include_reward_flops
    )
    if accuracy.empty:
        return None
    page = build_report(
        accuracy, title=title or f"Inference scaling report: {output}", n=n, aggregation=aggregation
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


if __name__ == "__main__":
    sys.exit(main())
