"""The report's figures: ``plot_*`` take DataFrames and return ``plotly.graph_objects.Figure``; none queries.

Every figure colours a curve by its family and marks its model with a marker, and draws at
first the curves ``analysis.methods.curve_table`` picks. Curves carry ``meta`` for the page's
controls: ``agg`` (the step-score aggregation of a BoN/WV curve, else None), ``role`` and
``legend`` (``curve_table``'s); the figures start as the page's controls do. Intervals and fits are drawn as given (the
estimators' bootstrap intervals, ``analysis.fits``' parameters), never recomputed.

Left out: computing what is drawn (estimators, fits, frontier) and the page around the figures.
"""

from __future__ import annotations

import html
from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from analysis.compute_optimal import PAPER_ALPHA, PAPER_BETA, ComputeOptimalFit
from analysis.methods import (
    DEFAULT_AGGREGATION,
    FAMILIES,
    FRONTIER_COLOR,
    KIND_LABELS,
    PASS_AT_N,
    TREE_STRATEGIES,
    curve_table,
    family_of,
    format_params,
    model_markers,
    parse_method,
    strategy_kind,
    strategy_label,
)
from analysis.saturation import saturation_curve

HOVER = ("model: %{customdata[0]}<br>strategy: %{customdata[1]}<br>method: %{customdata[2]}"
         "<br>aggregation: %{customdata[3]}<br>%{customdata[4]}<br>FLOPs per problem: %{x:.3s}"
         "<br>accuracy: %{y:.1%} %{customdata[5]}<br>problems: %{customdata[6]}<extra></extra>")
SCORE_COLORS = "RdYlGn"  # reward model scores, 0 red to 1 green
LAYOUT = {"template": "plotly_white", "hovermode": "closest", "margin": {"t": 60, "r": 20, "b": 50, "l": 60},
          "legend": {"groupclick": "togglegroup", "itemsizing": "constant", "font": {"size": 11}}}


def _meta(curve: pd.Series) -> dict[str, object]:
    return {"agg": curve["aggregation"], "role": curve["role"], "legend": bool(curve["legend"])}


def _hover_data(rows: pd.DataFrame, kinds: Mapping[str, str] | None) -> np.ndarray:
    """(point, field) -> model, strategy, method, aggregation, n or budget, interval, problems."""
    def amount(r) -> str:
        if parse_method(r.method).kind == "adaptive":
            spent = getattr(r, "samples_per_problem", np.nan)
            return f"n up to {r.n}, {spent:.2f} samples per problem spent"
        if strategy_kind(r.strategy, kinds) in TREE_STRATEGIES:
            return f"budget: {r.n}"
        return f"n: {r.n}"

    def interval(r) -> str:
        if not (np.isfinite(r.ci_low) and np.isfinite(r.ci_high)):
            return "(no interval: fewer than 2 problems)"
        return f"[{r.ci_low:.1%}, {r.ci_high:.1%}] (95%, bootstrap over problems)"

    return np.array([[r.model, strategy_label(r.strategy, kinds), parse_method(r.method).label,
                      parse_method(r.method).aggregation or "—", amount(r), interval(r), int(r.problems)]
                     for r in rows.itertuples()], dtype=object)


def _error_bars(rows: pd.DataFrame, color: str) -> dict[str, object]:
    return {"type": "data", "symmetric": False, "thickness": 1.2, "width": 3, "color": color,
            "array": (rows["ci_high"] - rows["accuracy"]).clip(lower=0).fillna(0),
            "arrayminus": (rows["accuracy"] - rows["ci_low"]).clip(lower=0).fillna(0)}


def _curve_traces(df: pd.DataFrame, curves: pd.DataFrame, *, x: str, kinds: Mapping[str, str] | None,
                  mode: str = "lines+markers", **extra: object) -> list[go.Scatter]:
    markers = model_markers(curves["model"])
    traces = []
    for curve in curves.itertuples(index=False):
        c = pd.Series(curve._asdict())
        rows = df[(df["model"] == c["model"]) & (df["strategy"] == c["strategy"]) & (df["method"] == c["method"])]
        rows = rows.sort_values(x)
        color = FAMILIES[c["family"]].color
        visible, legend = c["visible"], c["showlegend"]
        traces.append(go.Scatter(
            x=rows[x], y=rows["accuracy"], mode=mode, name=c["name"], legendgroup=c["legendgroup"],
            legendrank=c["rank"],
            visible=visible, showlegend=legend, meta=_meta(c), error_y=_error_bars(rows, color),
            line={"color": color, "dash": c["dash"], "width": 2.5 if c["role"] != "secondary" else 1.5},
            marker={"symbol": markers[c["model"]], "size": 9, "color": color, "line": {"width": 1, "color": "white"}},
            customdata=_hover_data(rows, kinds), hovertemplate=HOVER, **extra,
        ))
    return traces


def _model_key(fig: go.Figure, df: pd.DataFrame, **where: object) -> None:
    """Grey legend entries telling the markers apart when there are several models."""
    models = df.drop_duplicates("model").sort_values(["model_params", "model"])
    if len(models) < 2:
        return
    markers = model_markers(models["model"])
    for model, params in zip(models["model"], models["model_params"]):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"{model} ({format_params(params)})",
                                 legendgroup=f"model:{model}", marker={"symbol": markers[model], "size": 9,
                                 "color": "#777"}, hoverinfo="skip"), **where)


def plot_accuracy_vs_flops(
    df: pd.DataFrame, frontier: pd.DataFrame, *, kinds: Mapping[str, str] | None = None,
    aggregation: str = DEFAULT_AGGREGATION, title: str = "Accuracy vs FLOPs per problem",
) -> go.Figure:
    """Accuracy vs FLOPs per problem (log x): a line per (model, strategy, method) over n or
    budget, the 95 % intervals as error bars, and the Pareto frontier (``frontier``: the rows of
    ``analysis.frontier.compute_frontier``) as a bold step over everything, its points ringed and
    labelled where the winner changes. The step runs on to the largest FLOPs drawn: past its
    last point, nothing cheaper-or-equal does better."""
    curves = curve_table(df, kinds, aggregation=aggregation)
    fig = go.Figure(_curve_traces(df, curves, x="flops_per_problem", kinds=kinds))
    _model_key(fig, df)
    if not frontier.empty:
        front = frontier.sort_values("flops_per_problem")
        right = max(float(df["flops_per_problem"].max()), float(front["flops_per_problem"].max()))
        fig.add_trace(go.Scatter(
            x=[*front["flops_per_problem"], right], y=[*front["accuracy"], front["accuracy"].iloc[-1]],
            mode="lines", name="Pareto frontier", legendgroup="frontier", hoverinfo="skip",
            line={"color": FRONTIER_COLOR, "width": 4, "shape": "hv"}, opacity=0.85,
        ))
        who = [family_of(r.strategy, r.method, kinds).label for r in front.itertuples()]
        text = [w if i == 0 or w != who[i - 1] else "" for i, w in enumerate(who)]  # where the winner changes
        fig.add_trace(go.Scatter(
            x=front["flops_per_problem"], y=front["accuracy"], mode="markers+text", text=text,
            textposition="top center", textfont={"size": 12, "color": FRONTIER_COLOR},
            name="frontier points", legendgroup="frontier", showlegend=False,
            marker={"size": 17, "symbol": "circle-open", "color": FRONTIER_COLOR, "line": {"width": 3}},
            customdata=_hover_data(front, kinds),
            hovertemplate=HOVER.replace("<extra></extra>", "<extra>on the frontier</extra>"),
        ))
    fig.update_layout(**LAYOUT, title=title, height=560,
                      xaxis={"type": "log", "title": "FLOPs per problem (log scale)", "exponentformat": "SI"},
                      yaxis={"title": "accuracy", "tickformat": ".0%", "rangemode": "tozero"})
    return fig


def plot_accuracy_vs_n(
    df: pd.DataFrame, fits: pd.DataFrame, *, kinds: Mapping[str, str] | None = None,
    aggregation: str = DEFAULT_AGGREGATION, title: str = "Accuracy vs samples n",
) -> go.Figure:
    """Accuracy vs samples per problem n (log₂ x) for every voting and adaptive curve, with the
    saturation fit a − b·exp(−c·n) (``analysis.saturation.fit_saturation``'s rows) dashed over the n it
    was fitted on, and its limit ``a`` with its bootstrap interval in a column of its own at the
    right, joined by a dotted line. Adaptive curves sit at the samples they spent
    (``samples_per_problem``) and get no fit."""
    data = df[~df["method"].isin(["greedy", PASS_AT_N])].copy()
    data["x"] = data["samples_per_problem"].fillna(data["n"]) if "samples_per_problem" in data else data["n"]
    curves = curve_table(data, kinds, aggregation=aggregation)
    fig = go.Figure(_curve_traces(data, curves, x="x", kinds=kinds, mode="markers"))
    fitted = {tuple(r[k] for k in ("model", "strategy", "method")): r
              for _, r in fits.iterrows() if r["status"] != "failed" and np.isfinite(r["a"])}
    right = 2.0 ** (np.ceil(np.log2(max(float(data["x"].max()), 1.0))) + 1) if len(data) else 2.0
    for curve, trace in zip(curves.itertuples(index=False), list(fig.data)):
        fit = fitted.get((curve.model, curve.strategy, curve.method))
        if fit is None or curve.family == "adaptive":
            continue
        grid = np.geomspace(fit["n_min"], fit["n_max"], 40)
        c = fit["c"] if np.isfinite(fit["c"]) else 0.0  # a flat fit: b = 0, the curve is the line a
        limit = f"a = {fit['a']:.1%}" + (f" [{fit['a_low']:.1%}, {fit['a_high']:.1%}]"
                                         if np.isfinite(fit["a_low"]) else "")
        about = f"{html.escape(curve.name)}<br>fit a − b·exp(−c·n): {limit}, b = {fit['b']:.3g}, c = {c:.3g}" + (
            f"<br>{html.escape(str(fit['reason']))}" if isinstance(fit["reason"], str) else "")
        common = {"legendgroup": trace.legendgroup, "showlegend": False, "visible": trace.visible,
                  "meta": {**trace.meta, "legend": False}, "hovertemplate": about + "<extra>fit</extra>"}
        fig.add_trace(go.Scatter(x=grid, y=saturation_curve(grid, fit["a"], fit["b"], c), mode="lines",
                                 name=f"fit {curve.name}", line={"color": trace.line.color, "dash": "dash",
                                                                 "width": 2}, **common))
        fig.add_trace(go.Scatter(
            x=[fit["n_max"], right], y=[fit["a"], fit["a"]], mode="lines+markers", name=f"limit {curve.name}",
            line={"color": trace.line.color, "dash": "dot", "width": 1}, **common,
            marker={"symbol": "line-ew", "size": [0, 18], "line": {"width": 3, "color": trace.line.color}},
            error_y={"type": "data", "symmetric": False, "color": trace.line.color, "thickness": 2,
                     "array": [0, max(fit["a_high"] - fit["a"], 0) if np.isfinite(fit["a_high"]) else 0],
                     "arrayminus": [0, max(fit["a"] - fit["a_low"], 0) if np.isfinite(fit["a_low"]) else 0]},
        ))
    _model_key(fig, data)
    axis = _log2_axis(data["x"], "samples per problem n")
    if fitted:
        axis["tickvals"] = [t for t in axis["tickvals"] if t < right] + [right]
        axis["ticktext"] = [str(t) for t in axis["tickvals"][:-1]] + ["fit limit"]
    fig.update_layout(**LAYOUT, title=title, height=460, xaxis=axis, yaxis={"title": "accuracy", "tickformat": ".0%"})
    return fig


def plot_coverage(df: pd.DataFrame, *, kinds: Mapping[str, str] | None = None,
                  title: str = "Coverage: pass@n") -> go.Figure:
    """pass@n (some sample of n is right; an oracle's accuracy) vs n (log₂ x), per (model,
    strategy), with its interval: the law large_language_monkeys shows."""
    data = df[df["method"] == PASS_AT_N]
    curves = curve_table(data, kinds, all_primary=True)
    fig = go.Figure(_curve_traces(data, curves, x="n", kinds=kinds))
    _model_key(fig, data)
    fig.update_layout(**LAYOUT, title=title, height=460, xaxis=_log2_axis(data["n"], "samples per problem n"),
                      yaxis={"title": "pass@n", "tickformat": ".0%", "rangemode": "tozero"})
    return fig


def _log2_axis(values: pd.Series, title: str) -> dict[str, object]:
    top = max(float(values.max()), 2.0) if len(values) else 2.0
    ticks = [2**k for k in range(0, int(np.ceil(np.log2(top))) + 1)]
    return {"type": "log", "title": f"{title} (log₂ scale)", "tickvals": ticks, "ticktext": [str(t) for t in ticks]}


def plot_search_vs_sampling(df: pd.DataFrame, *, kinds: Mapping[str, str] | None = None,
                            aggregation: str = DEFAULT_AGGREGATION,
                            title: str = "Tree search against sampling at equal FLOPs") -> go.Figure:
    """One panel per voting kind (majority vote, weighted vote, best-of-n): sampling's curve and
    every tree search's (REBASE, MCTS, beam) on a shared log-FLOPs axis, greedy as a reference."""
    parsed = df["method"].map(parse_method)
    kinds_shown = [k for k in ("majority_vote", "weighted_vote", "best_of_n") if (parsed.map(lambda m: m.kind) == k).any()]
    fig = make_subplots(rows=1, cols=max(len(kinds_shown), 1), shared_yaxes=True, horizontal_spacing=0.03,
                        subplot_titles=[KIND_LABELS[k] for k in kinds_shown])
    traces = []
    for col, kind in enumerate(kinds_shown, start=1):
        rows = df[(parsed.map(lambda m: m.kind) == kind) | (df["method"] == "greedy")]
        curves = curve_table(rows, kinds, aggregation=aggregation, all_primary=True)
        traces += [(col, t) for t in _curve_traces(rows, curves, x="flops_per_problem", kinds=kinds)]
        fig.update_xaxes(type="log", title="FLOPs per problem", exponentformat="SI", row=1, col=col)
    # One legend entry per family across the panels (the panel names the method), one per
    # aggregation where the family has some, so that an entry stays when the aggregation changes.
    with_agg = {t.legendgroup for _, t in traces if t.meta["agg"]}
    seen: set[tuple[str, object]] = set()
    for col, trace in traces:
        key = (trace.legendgroup, trace.meta["agg"])
        first = key not in seen and (trace.meta["agg"] is not None or trace.legendgroup not in with_agg)
        seen.add(key)
        trace.update(name=FAMILIES[trace.legendgroup].label, showlegend=first and trace.visible is True,
                     meta={**trace.meta, "legend": first})
        fig.add_trace(trace, row=1, col=col)
    fig.update_yaxes(title="accuracy", tickformat=".0%", row=1, col=1)
    fig.update_layout(**LAYOUT, title=title, height=430)
    return fig


def plot_compute_optimal(result: ComputeOptimalFit, *, kinds: Mapping[str, str] | None = None,
                         title: str = "Compute-optimal model size") -> go.Figure:
    """The winning model size N per FLOPs budget C (log-log), coloured by the winning family,
    with log10 C = α·log10 N + β per dataset and its α band: lines of slope α_low and α_high
    through the winners' centroid (the fitted line passes through it). The paper's Pythia fit
    (α = 1.19, β = 2.03) is a hidden reference line. Call it with two or more model sizes;
    with one there is no line to draw (the report says so instead)."""
    fig = go.Figure()
    winners, fits = result.winners, result.fits
    for dataset, rows in winners.groupby("dataset", sort=True):
        families = [family_of(s, m, kinds) for s, m in zip(rows["strategy"], rows["method"])]
        fig.add_trace(go.Scatter(
            x=rows["budget"], y=rows["model_params"], mode="markers", name=f"{dataset}: winner per budget",
            marker={"color": [f.color for f in families], "size": 10, "line": {"width": 1, "color": "white"}},
            text=[f"{r.model} · {f.label} · {parse_method(r.method).label} · n={r.n} · accuracy {r.accuracy:.1%}"
                  for r, f in zip(rows.itertuples(), families)],
            hovertemplate="%{text}<br>budget: %{x:.3s} FLOPs<extra></extra>",
        ))
        fit = fits[fits["dataset"] == dataset]
        if fit.empty or not np.isfinite(fit["alpha"].iloc[0]):
            continue
        fit = fit.iloc[0]
        budget = np.geomspace(rows["budget"].min(), rows["budget"].max(), 50)
        x0, y0 = rows["log10_params"].mean(), rows["log10_budget"].mean()
        size = lambda alpha: 10 ** (x0 + (np.log10(budget) - y0) / alpha)  # noqa: E731
        if np.isfinite(fit["alpha_low"]) and np.isfinite(fit["alpha_high"]):
            for i, alpha in enumerate((fit["alpha_low"], fit["alpha_high"])):
                fig.add_trace(go.Scatter(x=budget, y=size(alpha), mode="lines", line={"width": 0},
                                         fill="tonexty" if i else None, fillcolor="rgba(0,0,0,0.12)",
                                         name=f"{dataset}: α 95% interval", showlegend=bool(i),
                                         legendgroup=f"band:{dataset}", hoverinfo="skip"))
        fig.add_trace(go.Scatter(
            x=budget, y=size(fit["alpha"]), mode="lines", line={"color": FRONTIER_COLOR, "width": 2},
            name=(f"{dataset}: log C = {fit['alpha']:.2f} log N + {fit['beta']:.2f}"
                  f" (α {fit['alpha_low']:.2f}–{fit['alpha_high']:.2f})"),
        ))
    if not winners.empty:
        budget = np.geomspace(winners["budget"].min(), winners["budget"].max(), 50)
        fig.add_trace(go.Scatter(x=budget, y=10 ** ((np.log10(budget) - PAPER_BETA) / PAPER_ALPHA), mode="lines",
                                 name=f"paper (Pythia): α={PAPER_ALPHA}, β={PAPER_BETA}", visible="legendonly",
                                 line={"color": "grey", "dash": "dot"}))
    notes = [f"{r.dataset}: {r.reason}" for r in fits.itertuples() if r.status == "failed"]
    if notes:
        fig.add_annotation(text="<br>".join(html.escape(str(t)) for t in notes), showarrow=False,
                           xref="paper", yref="paper", x=0.02, y=0.98, xanchor="left", align="left")
    fig.update_layout(**LAYOUT, title=title, height=480,
                      xaxis={"type": "log", "title": "FLOPs budget per problem C", "exponentformat": "SI"},
                      yaxis={"type": "log", "title": "compute-optimal parameters N", "exponentformat": "SI"})
    return fig


def plot_tree(nodes: pd.DataFrame, *, title: str = "One search tree") -> go.Figure:
    """One search tree (``report_tree_nodes.sql``'s rows) as an icicle, root on the left: a box per
    node sized by the paths under it, coloured by the reward model's score; finished paths
    are marked ✓ (right answer) or ✗ (wrong), with a green or red rim."""
    def label(r) -> str:
        mark = {True: "✓ ", False: "✗ "}.get(r.correct if r.terminal and pd.notna(r.correct) else None, "")
        text = "prompt" if pd.isna(r.parent_id) else " ".join(str(r.step).split())
        return mark + (text[:38] + "…" if len(text) > 39 else text)

    def hover(r) -> str:
        parts = [f"depth {r.depth}", f"score {r.score:.3f}" if pd.notna(r.score) else "no score",
                 f"{r.tokens} tokens"]
        if r.terminal:
            parts.append(f"finished: {r.finish}; answer {r.answer!s}; "
                         + {True: "right", False: "wrong"}.get(r.correct if pd.notna(r.correct) else None, "ungraded"))
        if r.visits:
            parts.append(f"visits {r.visits}, value {r.value:.3f}")
        step = html.escape(str(r.step)[:300]).replace("\n", "<br>")
        return "<br>".join([", ".join(parts[:3]), *parts[3:], step])

    rim = {True: "#1a9850", False: "#d73027"}
    rows = list(nodes.itertuples())
    scores = [min(max(float(r.score), 0.0), 1.0) if pd.notna(r.score) else None for r in rows]
    colors = iter(sample_colorscale(SCORE_COLORS, [v for v in scores if v is not None]))
    fig = go.Figure(go.Icicle(
        ids=[str(r.node_id) for r in rows], parents=["" if pd.isna(r.parent_id) else str(int(r.parent_id)) for r in rows],
        labels=[label(r) for r in rows], hovertext=[hover(r) for r in rows], hoverinfo="text",
        marker={"colors": [next(colors) if v is not None else "#e6e6e6" for v in scores],  # the root has no score
                "line": {"color": [rim.get(r.correct if r.terminal and pd.notna(r.correct) else None, "white")
                                   for r in rows], "width": [3 if r.terminal else 1 for r in rows]}},
        tiling={"orientation": "h"}, sort=False, maxdepth=-1,
    ))
    # The colour scale's legend: a marker-less scatter only carries the colour bar.
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", showlegend=False, hoverinfo="skip",
                             marker={"colorscale": SCORE_COLORS, "cmin": 0, "cmax": 1, "color": [0], "showscale": True,
                                     "colorbar": {"title": {"text": "reward"}, "thickness": 14}}))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(**{**LAYOUT, "margin": {"t": 60, "r": 10, "b": 10, "l": 10}}, title=title, height=520)
    return fig
