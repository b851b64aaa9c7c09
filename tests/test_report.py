"""The report: names and styles declared once, the tables, the figures, the page, and the page as
a reader's browser draws it (headless Chromium), on synthetic tables and on real Parquet."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sample_rows import sample_row, write_shard
from synthetic_accuracy import make_accuracy_table

from analysis.compute_optimal import fit_compute_optimal
from analysis.frontier import compute_frontier
from analysis.methods import FAMILIES, curve_table, family_of, parse_method
from analysis.plots import (
    plot_accuracy_vs_flops,
    plot_accuracy_vs_n,
    plot_compute_optimal,
    plot_coverage,
    plot_search_vs_sampling,
    plot_tree,
)
from analysis.report import build_report, main
from analysis.saturation import fit_saturation
from analysis.tables import RunFacts, grid_table, largest_common_n, paper_table, runs_table

FIGURES = ("fig-accuracy-vs-flops-math", "fig-accuracy-vs-n-math", "fig-coverage-math",
           "fig-search-vs-sampling-math", "fig-tree-math", "fig-compute-optimal")
HOVER_FIELDS = ("model", "strategy", "method", "aggregation", "customdata[4]", "FLOPs", "accuracy", "problems")
CONFIG = {"strategies": [{"name": "greedy", "label": "greedy"},
                         {"name": "sampling", "label": "sampling", "n": [1, 2, 4], "temperature": 1.0},
                         {"name": "rebase", "label": "rebase", "budgets": [4], "reward_model": "prm"}]}


def tree_nodes() -> pd.DataFrame:
    """A REBASE tree: two steps from the root, one path right, one wrong, one pruned."""
    columns = ["node_id", "parent_id", "depth", "step", "tokens", "score", "terminal", "finish", "answer",
               "correct", "visits", "value"]
    rows = [(0, None, 0, "", 0, None, False, None, None, None, 0, None),
            (1, 0, 1, "Add 2 and 2.", 8, 0.9, False, None, None, None, 0, None),
            (2, 0, 1, "Multiply <2> & 3.", 8, 0.3, False, None, None, None, 0, None),
            (3, 1, 2, "The answer is 4.", 6, 0.8, True, "done", "4", True, 0, None),
            (4, 2, 2, "The answer is 6.", 6, 0.2, True, "done", "6", False, 0, None),
            (5, 1, 2, "Hmm", 2, 0.5, True, "pruned", None, None, 0, None)]
    return pd.DataFrame(rows, columns=columns).astype({"parent_id": "Int64"})


def facts(**overrides: Any) -> RunFacts:
    pick = {"dataset": "math", "model": "pythia-1.4b", "strategy": "rebase", "budget": 4, "problem_id": "p7",
            "tree_id": "t", "nodes": 6, "right_paths": 1, "wrong_paths": 1}
    record = {"run_id": "run-b", "started": "2026-01-02T10:00:00", "seconds": 167.4, "shards_total": 20,
              "shards_failed": {}, "retries": 0, "config": CONFIG}
    base = dict(
        record=record, records=[{"run_id": "run-a", "seconds": 60.0}, record],
        runs=pd.DataFrame({"run_id": ["run-a", "run-b"], "started": ["2026-01-01T10:00:00", "2026-01-02T10:00:00"],
                           "finished": ["2026-01-01T10:01:00", None], "shards": [20, 20], "shards_failed": [0, 0],
                           "current": [False, True]}),
        spent=pd.DataFrame({"model": ["pythia-410m"], "strategy": ["sampling"], "dataset": ["math"], "samples": [640],
                            "problems": [10], "tokens": [64_000.0], "policy_flops": [3e13], "reward_flops": [1e13],
                            "flops": [4e13], "errors": [1]}),
        problems=pd.DataFrame({"dataset": ["math"], "problems": [500], "levels": [[1, 2]], "subjects": [3]}),
        errors=pd.DataFrame({"model": ["pythia-410m"], "strategy": ["sampling"], "dataset": ["math"],
                             "problem_id": ["p3"], "sample_index": [2], "error": ["engine timed out"],
                             "table": ["samples"]}),
        error_rows=1, trees={"math": (pick, tree_nodes())},
    )
    return RunFacts(**(base | overrides))


@pytest.fixture(scope="module")
def full() -> pd.DataFrame:
    return make_accuracy_table()


@pytest.fixture(scope="module")
def full_html(full: pd.DataFrame) -> str:
    return build_report(full, title="Scaling <sweep> & co", facts=facts())


def with_adaptive(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with two adaptive-stopping rules under sampling, one of them cheap and accurate."""
    at8 = df[(df["strategy"] == "sampling") & (df["method"] == "majority_vote") & (df["n"] == 8)]
    rules = [at8.assign(method="adaptive_esc_w4", samples_per_problem=3.0,
                        flops_per_problem=at8["flops_per_problem"] * 3 / 8),
             at8.assign(method="adaptive_beta_0.95", samples_per_problem=5.0,
                        flops_per_problem=at8["flops_per_problem"] * 5 / 8)]
    return pd.concat([df.assign(samples_per_problem=df["n"].astype(float)), *rules], ignore_index=True)


def assert_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count("plotly.js v") == 1  # the library, inline, exactly once
    assert not re.search(r"<script[^>]*\bsrc=", page)
    assert not re.search(r"<link[^>]*\bhref=\"?https?:", page)


# --- names and styles, declared once ----------------------------------------------------------------


def test_methods_are_taken_apart_and_families_have_one_colour_each() -> None:
    assert parse_method("weighted_vote_min") == parse_method("weighted_vote_min")
    assert (parse_method("weighted_vote_min").kind, parse_method("weighted_vote_min").aggregation) == (
        "weighted_vote", "min")
    adaptive = parse_method("adaptive_weighted_0.8")
    assert (adaptive.kind, adaptive.aggregation, adaptive.variant) == ("adaptive", None, "weighted_0.8")
    assert parse_method("best_of_n_last").label == "BoN (last)" and parse_method("pass_at_n").label == "pass@n"
    assert len({f.color for f in FAMILIES.values()}) == len(FAMILIES)
    assert family_of("sampling", "majority_vote").name == "majority_vote"
    assert family_of("rebase", "majority_vote").name == "rebase"  # a tree search is its own family
    assert family_of("sampling", "adaptive_esc_w4").name == "adaptive"
    assert family_of("sampling", "greedy").name == "greedy"
    assert family_of("hot", "best_of_n_min", {"hot": "sampling"}).name == "best_of_n"  # a custom label
    assert family_of("deep", "weighted_vote_last", {"deep": "mcts"}).name == "mcts"


def test_curves_drawn_at_first_keep_the_legend_short(full: pd.DataFrame) -> None:
    curves = curve_table(full)
    assert len(curves) == full.groupby(["model", "strategy", "method"]).ngroups
    assert curves["showlegend"].sum() <= 12
    role = curves.set_index(["model", "strategy", "method"])["role"]
    assert role[("pythia-410m", "rebase", "weighted_vote_last")] == "primary"
    assert role[("pythia-410m", "rebase", "majority_vote")] == "secondary"
    assert role[("pythia-410m", "sampling", "pass_at_n")] == "hidden"
    shown = curves[curves["visible"] == True]  # noqa: E712
    assert set(shown["aggregation"].dropna()) == {"last"}
    assert set(curve_table(full, aggregation="min").query("visible == True")["aggregation"].dropna()) == {"min"}


def test_adaptive_rows_get_their_family_and_can_be_on_the_frontier(full: pd.DataFrame) -> None:
    df = with_adaptive(full)
    curves = curve_table(df).set_index(["model", "strategy", "method"])
    assert curves.loc[("pythia-6.9b", "sampling", "adaptive_beta_0.95"), "role"] == "primary"  # first by name
    assert curves.loc[("pythia-6.9b", "sampling", "adaptive_esc_w4"), "role"] == "secondary"
    frontier = compute_frontier(df[df["method"] != "pass_at_n"])
    assert frontier["method"].str.startswith("adaptive_").any()
    fig = plot_accuracy_vs_flops(df, frontier)
    assert FAMILIES["adaptive"].color in {t.line.color for t in fig.data if t.meta}
    points = fig.data[-1]
    assert any("adaptive" in str(row[2]) for row in points.customdata)
    assert any("samples per problem spent" in str(row[4]) for row in points.customdata)
    page = build_report(df, title="adaptive")
    assert "adaptive (2 rules)" in page


# --- tables -------------------------------------------------------------------------------------------


def test_paper_table_cells_come_from_the_rows_at_n(full: pd.DataFrame) -> None:
    table = paper_table(full, n=16)
    assert table.attrs["n"] == 16
    assert table.index.tolist() == ["pythia-410m", "pythia-1.4b", "pythia-6.9b"]  # by size

    def row(strategy: str, method: str, n: int) -> pd.Series:
        hit = full[(full.model == "pythia-1.4b") & (full.strategy == strategy)
                   & (full.method == method) & (full.n == n)]
        (index,) = hit.index
        return hit.loc[index]

    cells = table.loc["pythia-1.4b"]
    for (top, label, strategy, method, n) in [
        ("Greedy", "Greedy", "greedy", "greedy", 1),
        ("Sampling", "MV", "sampling", "majority_vote", 16),
        ("Sampling", "BoN", "sampling", "best_of_n_last", 16),
        ("REBASE", "WV", "rebase", "weighted_vote_last", 16),
    ]:
        expected = row(strategy, method, n)
        assert cells[(top, label, "accuracy")] == expected["accuracy"]
        assert cells[(top, label, "FLOPs")] == expected["flops_per_problem"]

    best = paper_table(full, n=16, aggregation="best").loc["pythia-1.4b", ("REBASE", "BoN", "accuracy")]
    bon = full[(full.model == "pythia-1.4b") & (full.strategy == "rebase") & (full.n == 16)
               & full.method.str.startswith("best_of_n_")]
    assert best == bon["accuracy"].max()


def test_paper_table_default_n_is_largest_common(full: pd.DataFrame) -> None:
    assert largest_common_n(full) == 64
    assert largest_common_n(with_adaptive(full)) == 64  # adaptive rules do not constrain it
    # One curve stops at 32: the table falls back to the largest n every curve has.
    cut = (full.model == "pythia-410m") & (full.method == "majority_vote") & (full.n == 64)
    short = full.drop(full[cut].index)
    assert largest_common_n(short) == 32
    assert paper_table(short).attrs["n"] == 32
    assert largest_common_n(full[full.method == "greedy"]) is None
    # Curves with no n in common: the largest n, blank where a curve lacks it.
    disjoint = full[(full.method == "greedy") | ((full.model == "pythia-410m") & (full.n <= 4))
                    | ((full.model != "pythia-410m") & (full.n >= 8))]
    assert largest_common_n(disjoint) is None
    table = paper_table(disjoint)
    assert table.attrs["n"] == 64
    assert np.isnan(table.loc["pythia-410m", ("Sampling", "MV", "accuracy")])
    assert table.loc["pythia-6.9b", ("Sampling", "MV", "accuracy")] > 0


def test_paper_table_rejects_several_datasets_and_bad_aggregation() -> None:
    with pytest.raises(ValueError, match="one dataset"):
        paper_table(make_accuracy_table(datasets=("a", "b")))
    with pytest.raises(ValueError, match="aggregation"):
        paper_table(make_accuracy_table(), aggregation="median")


def test_header_tables_say_what_ran(full: pd.DataFrame) -> None:
    grid = grid_table(full, CONFIG).set_index("strategy")
    assert grid.loc["Sampling", "settings"] == "n [1, 2, 4]; temperature 1.0"
    assert "weighted vote (last, min, prod, mean)" in grid.loc["REBASE", "methods"]
    runs = runs_table(facts().runs, facts().records)
    assert runs["wall time"].tolist() == ["1m 00s", "2m 47s"]
    assert runs["shown"].tolist() == ["", "◀ this report"]


# --- figures ------------------------------------------------------------------------------------------


def test_accuracy_vs_flops_has_a_log_axis_a_colour_per_family_the_frontier_and_the_hover(full: pd.DataFrame) -> None:
    frontier = compute_frontier(full[full.method != "pass_at_n"])
    fig = plot_accuracy_vs_flops(full, frontier)
    assert fig.layout.xaxis.type == "log"
    curves = [t for t in fig.data if t.meta]
    assert len(curves) == full.groupby(["model", "strategy", "method"]).ngroups
    colour = {}
    for trace in curves:
        family = trace.legendgroup.split(":")[0]
        assert colour.setdefault(family, trace.line.color) == trace.line.color
    assert len(set(colour.values())) == len(colour) == 6  # greedy, MV, WV, BoN, pass@n, REBASE
    line, points = fig.data[-2], fig.data[-1]
    assert line.name == "Pareto frontier" and line.line.shape == "hv" and line.line.width >= 4
    assert len(points.x) == len(frontier) and points.text[0]  # the first winner is named
    for field in HOVER_FIELDS:
        assert all(field in t.hovertemplate for t in [*curves, points])
    markers = {t.marker.symbol for t in curves}
    assert len(markers) == 3  # one per model


def test_accuracy_vs_n_coverage_and_search_vs_sampling(full: pd.DataFrame) -> None:
    fits = fit_saturation(full)
    fig = plot_accuracy_vs_n(full, fits)
    assert fig.layout.xaxis.type == "log" and "fit limit" in fig.layout.xaxis.ticktext
    fitted = fits[(fits["status"] != "failed") & ~fits["method"].isin(["greedy", "pass_at_n"])]
    assert sum(t.name.startswith("fit ") for t in fig.data) == len(fitted)
    assert sum(t.name.startswith("limit ") for t in fig.data) == len(fitted)
    coverage = plot_coverage(full)
    assert {t.name for t in coverage.data if t.meta} == {"Sampling · pass@n (oracle)", "REBASE · pass@n"}
    assert all(t.visible is True for t in coverage.data if t.meta)
    panels = plot_search_vs_sampling(full)
    assert [a.text for a in panels.layout.annotations] == ["majority vote", "weighted vote", "best-of-n"]
    legend = [t.name for t in panels.data if t.showlegend]
    assert len(legend) == len(set(legend))  # one entry per curve across the panels


def test_compute_optimal_draws_winners_fit_and_band(full: pd.DataFrame) -> None:
    fig = plot_compute_optimal(fit_compute_optimal(full))
    assert fig.layout.yaxis.type == "log"
    assert any("log C =" in (t.name or "") for t in fig.data)
    assert any(t.fill == "tonexty" for t in fig.data)  # the α band


def test_tree_marks_right_and_wrong_paths() -> None:
    fig = plot_tree(tree_nodes())
    icicle = fig.data[0]
    assert list(icicle.parents) == ["", "0", "0", "1", "2", "1"]
    assert icicle.labels[3].startswith("✓") and icicle.labels[4].startswith("✗")
    assert not icicle.labels[5].startswith(("✓", "✗"))  # pruned: no answer
    assert "&lt;2&gt; &amp; 3" in icicle.hovertext[2]


# --- the page -----------------------------------------------------------------------------------------


def test_report_is_self_contained_and_complete(full_html: str) -> None:
    assert_self_contained(full_html)
    assert "Scaling &lt;sweep&gt; &amp; co" in full_html and "<sweep>" not in full_html
    for div in FIGURES:
        assert re.search(rf'Plotly\.newPlot\(\s*"{div}"', full_html), div
    assert 'id="paper-table-math"' in full_html and 'id="paper-table-math-min"' in full_html
    for heading in ("Greedy", "Sampling", "REBASE", "MV", "BoN", "WV"):
        assert f">{heading}<" in full_html
    for text in ("run-b", "2m 47s", "500 problems", "640 samples", "40 TFLOPs", "not recorded",
                 'href="#errors"', "engine timed out", 'id="runs"', "◀ this report", "n [1, 2, 4]"):
        assert text in full_html, text
    assert 'id="ctl-agg"' in full_html and 'id="ctl-dataset"' not in full_html  # one dataset: no switch


def test_header_shows_the_busy_fraction_when_the_manifest_has_it(full: pd.DataFrame) -> None:
    record = {**facts().record, "engine_busy_fraction": 0.83}
    page = build_report(full, title="busy", facts=facts(record=record))
    assert "83%" in page and "not recorded" not in page
    bare = build_report(full, title="bare")  # no facts read: none claimed
    assert "Engine busy" not in bare and "Errors" not in bare and "<dt>Run</dt>" not in bare


def test_report_with_only_greedy_and_sampling() -> None:
    df = make_accuracy_table(strategies=("greedy", "sampling"), reward=False)
    page = build_report(df, title="plain")
    assert_self_contained(page)
    assert "fig-search-vs-sampling" not in page and "nothing to compare" in page
    assert 'id="ctl-agg"' not in page  # no step scores, no aggregation to choose
    assert {c[:2] for c in paper_table(df).columns} == {("Greedy", "Greedy"), ("Sampling", "MV")}


def test_report_with_one_model_has_a_note_not_a_flat_line() -> None:
    page = build_report(make_accuracy_table(models={"solo": 10**9}, datasets=("math", "gsm8k")), title="solo")
    assert 'id="compute-optimal-note"' in page and "needs at least two model sizes" in page
    assert "fig-compute-optimal" not in page
    assert 'id="ctl-dataset"' in page and 'data-dataset="math" hidden' in page


def test_report_rejects_a_table_without_the_contract_columns(full: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="flops_per_problem"):
        build_report(full.drop(columns="flops_per_problem"), title="x")
    with pytest.raises(ValueError, match="empty"):
        build_report(full.iloc[0:0], title="x")


# --- in a browser ------------------------------------------------------------------------------------

# Injected first: every uncaught error, rejected promise and console.error is kept.
PROBE_HEAD = """<script>
window.__errors = [];
window.addEventListener('error', (e) => window.__errors.push('error: ' + (e.message || e.type)), true);
window.addEventListener('unhandledrejection', (e) => window.__errors.push('rejection: ' + e.reason));
const __consoleError = console.error;
console.error = (...args) => { window.__errors.push('console.error: ' + args.join(' ')); __consoleError(...args); };
</script>"""
# Injected last: once the page has loaded, each figure's state; then ACTIONS; then the state again.
PROBE_TAIL = """<script>
function __snap() {
  const figures = {};
  document.querySelectorAll('.plotly-graph-div').forEach((d) => {
    figures[d.id] = {
      svg: d.querySelectorAll('.main-svg').length,
      marks: d.querySelectorAll('.scatterlayer .point, g.slice').length,
      shown: d.offsetParent !== null,
      xtype: d._fullLayout && d._fullLayout.xaxis ? d._fullLayout.xaxis.type : null,
      data: JSON.parse(JSON.stringify(d.data, (k, v) => ArrayBuffer.isView(v) ? Array.from(v) : v)),
    };
  });
  const note = document.getElementById('compute-optimal-note');
  return {figures, note: note ? note.offsetParent !== null : null};
}
function __set(id, value) {
  const el = document.getElementById(id);
  if (el.type === 'checkbox') el.checked = value; else el.value = value;
  el.dispatchEvent(new Event('change'));
}
window.addEventListener('load', () => setTimeout(() => {
  const before = __snap();
  ACTIONS
  setTimeout(() => {
    const out = document.createElement('pre');
    out.id = '__probe';
    out.textContent = JSON.stringify({errors: window.__errors, before, after: __snap()});
    document.body.appendChild(out);
  }, 1000);
}, 1000));
</script>"""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    return None


needs_chromium = pytest.mark.skipif(find_chromium() is None, reason="chromium is not installed")


def render(page: str, tmp_path: Path, *, actions: str = "") -> dict[str, Any]:
    """Open ``page`` in headless Chromium on a virtual clock; the probe's JSON: JS errors, and each
    figure's drawing and data before and after ``actions`` (JavaScript run once it has loaded)."""
    probed = page.replace("<head>", "<head>" + PROBE_HEAD, 1).replace(
        "</body>", PROBE_TAIL.replace("ACTIONS", actions) + "</body>", 1)
    path = tmp_path / "report.html"
    path.write_text(probed, encoding="utf-8")
    done = subprocess.run(
        [find_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2000", "--virtual-time-budget=30000",
         "--dump-dom", path.as_uri()],
        capture_output=True, text=True, timeout=300,
    )
    found = re.search(r'<pre id="__probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the page never finished loading (exit {done.returncode}): {done.stderr[-2000:]}"
    import html as html_module

    return json.loads(html_module.unescape(found.group(1)))


@needs_chromium
def test_report_draws_every_figure_without_errors_in_chromium(full_html: str, tmp_path: Path) -> None:
    probe = render(full_html, tmp_path, actions="__set('ctl-agg', 'min'); __set('ctl-all', true);")
    assert probe["errors"] == []
    figures = probe["before"]["figures"]
    assert set(figures) == set(FIGURES)
    for name, figure in figures.items():
        assert figure["svg"] > 0 and figure["marks"] > 0 and figure["shown"], name

    flops = figures["fig-accuracy-vs-flops-math"]
    assert flops["xtype"] == "log"
    curves = [t for t in flops["data"] if t.get("meta")]
    colours = {t["legendgroup"].split(":")[0]: t["line"]["color"] for t in curves}
    assert len(set(colours.values())) == len(colours) >= 6
    assert any(t["name"] == "Pareto frontier" and t["line"]["shape"] == "hv" for t in flops["data"])
    for field in HOVER_FIELDS:
        assert all(field in t["hovertemplate"] for t in curves)
    assert sum(1 for t in flops["data"] if t.get("showlegend", True) and t.get("visible", True) is not False) <= 12

    # The controls restyle the figures in the page: aggregation "min", then every method listed.
    after = {t["name"]: t for t in probe["after"]["figures"]["fig-accuracy-vs-flops-math"]["data"]}
    assert after["Sampling · weighted vote (min)"]["visible"] is True
    assert after["Sampling · weighted vote (last)"]["visible"] is False
    assert after["REBASE · MV · pythia-410m"]["visible"] == "legendonly"
    assert after["REBASE · MV · pythia-410m"]["showlegend"] is True


@needs_chromium
def test_one_model_shows_the_note_and_the_dataset_switch_in_chromium(tmp_path: Path) -> None:
    page = build_report(make_accuracy_table(models={"solo": 10**9}, datasets=("math", "gsm8k")), title="solo")
    probe = render(page, tmp_path, actions="__set('ctl-dataset', 'math');")
    assert probe["errors"] == []
    assert probe["before"]["note"] is True
    before, after = probe["before"]["figures"], probe["after"]["figures"]
    assert before["fig-accuracy-vs-flops-gsm8k"]["shown"] and not before["fig-accuracy-vs-flops-math"]["shown"]
    assert after["fig-accuracy-vs-flops-math"]["shown"] and not after["fig-accuracy-vs-flops-gsm8k"]["shown"]
    assert all(f["svg"] > 0 and f["marks"] > 0 for f in before.values())


# --- the command line, on real Parquet through the real estimators -----------------------------------


def write_results(root: Path) -> None:
    """Two models, greedy and sampling, and a REBASE tree with its nodes, recorded as one run;
    one sample failed."""
    from sweep.results.runs import grid_record
    from sweep.results.schema import NODES
    from sweep.results.store import ResultsStore

    rng = np.random.default_rng(0)
    store = ResultsStore(str(root))
    shards = []
    for model, params, skill in (("small", 10**8, 0.3), ("large", 10**9, 0.6)):
        for strategy, samples, temperature in (("greedy", 1, 0.0), ("sampling", 8, 1.0), ("rebase", 4, 1.0)):
            rows: list[dict[str, Any]] = []
            for p in range(12):
                for i in range(samples):
                    right = bool(rng.uniform() < skill)
                    key = "42" if right else str(rng.integers(0, 3))
                    score = float(rng.uniform(0.5, 1) if right else rng.uniform(0, 0.6))
                    rows.append(sample_row(
                        shard_id=f"{model}-{strategy}", config_id=f"{model}-{strategy}", model=model,
                        model_params=params, strategy=strategy, problem_id=f"p{p}", prompt_id=f"q{p}",
                        sample_index=i, temperature=temperature, completion=f"= {key}",
                        extracted_answer=key, answer_key=key, correct=right, reward_model="prm",
                        step_scores=[score], score_last=score, score_min=score, score_prod=score, score_mean=score,
                        budget=4 if strategy == "rebase" else None, node_id=i + 1 if strategy == "rebase" else None,
                        error="engine timed out" if (model, strategy, p, i) == ("small", "sampling", 3, 2) else None,
                    ))
            write_shard(store, rows)
            shards.append(SimpleNamespace(shard_id=f"{model}-{strategy}", model=model,
                                          strategy=SimpleNamespace(label=strategy), dataset="toy",
                                          config_id=f"{model}-{strategy}"))
    nodes = [dict(run_id="run", shard_id="small-rebase", config_id="small-rebase", model="small", strategy="rebase",
                  budget=4, dataset="toy", problem_id="p0", tree_id="small-rebase/p0", node_id=i,
                  parent_id=None if i == 0 else 0, depth=int(i > 0), step="" if i == 0 else f"= {i}", tokens=5,
                  path_tokens=5, score=None if i == 0 else i / 5, terminal=i > 0, finish="done" if i else None,
                  answer=str(i) if i else None, correct=(i == 1) if i else None, visits=0, value=None,
                  policy_flops=1.0, prefix_flops=0.0, reward_flops=1.0, error=None) for i in range(5)]
    store.write_table(store.nodes_path("small", "rebase", "small-rebase"),
                      pa.Table.from_pylist(nodes, schema=NODES), schema=NODES, shard_id="small-rebase")
    record = {"run_id": "r1", "started": "2026-01-01T10:00:00", "seconds": 12.5, "shards_total": len(shards),
              "config": {"strategies": [{"name": s, "label": s} for s in ("greedy", "sampling", "rebase")]},
              **grid_record(shards, {})}
    store.write_manifest({"runs": [{"run_id": "r0", "started": "2025-12-31T10:00:00", "grid": []}, record]})


def test_main_writes_the_report_of_a_results_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "out"
    write_results(root)
    assert main([str(root), "--resamples", "5"]) == 0
    written = Path(capsys.readouterr().out.strip())
    assert written == (root / "report.html").resolve()
    page = written.read_text(encoding="utf-8")
    assert_self_contained(page)
    for text in ('id="fig-accuracy-vs-flops-toy"', 'id="paper-table-toy"', 'id="fig-tree-toy"', "problem p0",
                 'href="#errors">1 row with errors', "engine timed out", "r0", "◀ this report", "12.5 s",
                 f"{2 * 12 * (1 + 8 + 4):,} samples", 'id="fig-compute-optimal"'):
        assert text in page, text


def test_a_folder_without_recorded_runs_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sweep.results.store import ResultsStore

    root = tmp_path / "out"
    rows = [sample_row(problem_id=f"p{p}", sample_index=i, answer_key=str(i % 2), correct=i % 2 == 0)
            for p in range(3) for i in range(4)]
    write_shard(ResultsStore(str(root)), rows)
    assert main([str(root), "--resamples", "5"]) == 0
    page = Path(capsys.readouterr().out.strip()).read_text(encoding="utf-8")
    assert "no recorded run (the folder is read whole)" in page and "Errors</dt><dd>none" in page


def test_main_refuses_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "nowhere")])
    assert exit_info.value.code == 2


@needs_chromium
def test_the_screenshot_script_takes_a_small_png(full_html: str, tmp_path: Path) -> None:
    import sys

    from PIL import Image

    page, shot = tmp_path / "report.html", tmp_path / "docs" / "report.png"
    page.write_text(full_html, encoding="utf-8")
    script = Path(__file__).resolve().parents[1] / "scripts" / "screenshot_report.py"
    subprocess.run([sys.executable, str(script), str(page), "--out", str(shot), "--height", "1200"],
                   check=True, capture_output=True, timeout=300)
    assert shot.stat().st_size < 500_000
    with Image.open(shot) as image:
        assert image.size == (1280, 1200)
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 20) or range(1 << 20)) > 50  # drawn, not blank
