"""analysis/report.py: the HTML is self-contained and complete; the paper table holds the right cells."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from analysis.fits import fit_compute_optimal, fit_saturation
from analysis.frontier import compute_frontier
from analysis.report import (
    build_report,
    largest_common_n,
    main,
    paper_table,
    plot_accuracy_vs_flops,
    plot_accuracy_vs_n,
    plot_compute_optimal,
)
from synthetic_accuracy import make_accuracy_table

FIGURE_IDS = ("fig-accuracy-vs-flops-math", "fig-accuracy-vs-n-math", "fig-compute-optimal")


@pytest.fixture(scope="module")
def full() -> pd.DataFrame:
    return make_accuracy_table()


@pytest.fixture(scope="module")
def full_html(full: pd.DataFrame) -> str:
    return build_report(full, title="Scaling <sweep> & co")


def assert_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count("plotly.js v") == 1  # the library, inline, exactly once
    assert not re.search(r"<script[^>]*\bsrc=", page)
    assert not re.search(r"<link[^>]*\bhref=\"?https?:", page)


def test_report_is_self_contained_and_complete(full_html: str) -> None:
    assert_self_contained(full_html)
    assert "Scaling &lt;sweep&gt; &amp; co" in full_html and "<sweep>" not in full_html
    for div in FIGURE_IDS:
        assert f'id="{div}"' in full_html
        assert re.search(rf'Plotly\.newPlot\(\s*"{div}"', full_html)
    assert 'id="paper-table-math"' in full_html
    for heading in ("Greedy", "Sampling", "REBASE", "MV", "BoN", "WV"):
        assert f">{heading}<" in full_html
    for model in ("pythia-410m", "pythia-1.4b", "pythia-6.9b"):
        assert model in full_html
    assert "Pareto frontier" in full_html


def test_report_with_only_greedy_and_sampling() -> None:
    df = make_accuracy_table(strategies=("greedy", "sampling"), reward=False)
    page = build_report(df, title="plain")
    assert_self_contained(page)
    for div in (*FIGURE_IDS, "paper-table-math"):
        assert f'id="{div}"' in page
    table = paper_table(df)
    assert {c[:2] for c in table.columns} == {("Greedy", "Greedy"), ("Sampling", "MV")}


def test_report_with_one_model_and_two_datasets() -> None:
    df = make_accuracy_table(models={"solo": 10**9}, datasets=("math", "gsm8k"))
    page = build_report(df, title="solo")
    assert_self_contained(page)
    for dataset in ("math", "gsm8k"):
        assert f'id="fig-accuracy-vs-flops-{dataset}"' in page and f'id="paper-table-{dataset}"' in page
    assert "need at least 2" in page  # the compute-optimal fit explains why it has no line


def test_report_rejects_a_table_without_the_contract_columns(full: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="flops_per_problem"):
        build_report(full.drop(columns="flops_per_problem"), title="x")
    with pytest.raises(ValueError, match="empty"):
        build_report(full.iloc[0:0], title="x")


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


def test_plots_return_figures_with_the_expected_traces(full: pd.DataFrame) -> None:
    frontier = compute_frontier(full[full.method != "pass_at_n"])
    fig = plot_accuracy_vs_flops(full, frontier)
    names = [t.name for t in fig.data]
    assert names[-1] == "Pareto frontier" and len(fig.data[-1].x) == len(frontier)
    assert fig.layout.xaxis.type == "log"
    curves = full.groupby(["model", "strategy", "method"]).ngroups
    assert len(names) == curves + 1
    hidden = {t.name for t in fig.data if t.visible == "legendonly"}
    assert "pythia-410m · sampling · pass_at_n" in hidden
    assert "pythia-410m · sampling · majority_vote" not in hidden

    fits = fit_saturation(full)
    fig = plot_accuracy_vs_n(full, fits)
    fitted_curves = int((fits["status"] != "failed").sum())
    assert len(fig.data) == curves + fitted_curves

    fig = plot_compute_optimal(fit_compute_optimal(full))
    assert any("log C =" in (t.name or "") for t in fig.data)
    assert fig.layout.yaxis.type == "log"


def find_chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", "chromium", "chromium-browser"):
        found = shutil.which(candidate)
        if found:
            return found
    return None


@pytest.mark.skipif(find_chromium() is None, reason="chromium is not installed: no headless render check")
def test_report_renders_in_headless_chromium(full_html: str, tmp_path: Path) -> None:
    page, png = tmp_path / "report.html", tmp_path / "shot.png"
    page.write_text(full_html, encoding="utf-8")
    subprocess.run(
        [find_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=10000", f"--screenshot={png}", "--window-size=1200,2000", page.as_uri()],
        check=True, timeout=120, capture_output=True,
    )
    assert png.stat().st_size > 20_000
    from PIL import Image  # a dev dependency: a missing one is an error, not a skip

    with Image.open(png) as shot:
        colours = shot.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours is None or len(colours) > 50  # drawn charts, not a blank page


# --- the command line, on real Parquet through the real estimators ----------------------------------


def write_samples(root: Path) -> None:
    from sweep.storage import ResultsStore
    from sample_rows import sample_row, write_shard

    rng = np.random.default_rng(0)
    store = ResultsStore(str(root))
    for model, params, skill in (("small", 10**8, 0.3), ("large", 10**9, 0.6)):
        for strategy, samples, temperature in (("greedy", 1, 0.0), ("sampling", 8, 1.0)):
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
                        step_scores=[score], score_last=score, score_min=score, score_prod=score,
                        score_mean=score,
                    ))
            write_shard(store, rows)


def test_main_writes_the_report_of_a_results_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "out"
    write_samples(root)
    assert main([str(root), "--resamples", "5"]) == 0
    written = Path(capsys.readouterr().out.strip())
    assert written == (root / "report.html").resolve()
    page = written.read_text(encoding="utf-8")
    assert_self_contained(page)
    assert 'id="fig-accuracy-vs-flops-toy"' in page and 'id="paper-table-toy"' in page


def test_main_refuses_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "nowhere")])
    assert exit_info.value.code == 2
