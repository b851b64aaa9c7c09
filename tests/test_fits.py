"""The fits (analysis/saturation.py, log_flops.py, compute_optimal.py; analysis/fits.py's shared
intervals): each recovers parameters planted in synthetic data, its intervals are the refits on
the table's bootstrap replicates, and it never raises. Coverage: test_coverage.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize
from synthetic_accuracy import COLUMNS, add_problem_bootstrap, make_accuracy_table

from analysis.compute_optimal import (
    PAPER_ALPHA,
    PAPER_BETA,
    compute_budget_winners,
    fit_compute_optimal,
    fit_power_law,
    winning_points,
)
from analysis.fits import NO_REPLICATES
from analysis.log_flops import fit_log_flops
from analysis.saturation import fit_saturation, fit_saturation_columns, saturation_curve

NS = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256])


def curve_table(n: np.ndarray, acc: np.ndarray, *, model: str = "m", method: str = "majority_vote",
                params: int = 10**9, flops: np.ndarray | None = None) -> pd.DataFrame:
    """Rows of the accuracy table for one curve; only the columns the fits read matter."""
    n = np.asarray(n)
    flops = 2.0 * params * 100 * n if flops is None else np.asarray(flops, dtype=float)
    return pd.DataFrame({
        "model": model, "model_params": params, "dataset": "d", "strategy": "sampling", "method": method,
        "n": n, "accuracy": acc, "ci_low": acc, "ci_high": acc, "problems": 100,
        "tokens_per_problem": 100.0 * n, "policy_flops_per_problem": flops,
        "reward_flops_per_problem": 0.0, "flops_per_problem": flops,
    })[COLUMNS[:-1]]  # no replicates


def stacked(table: pd.DataFrame) -> np.ndarray:
    """(row, replicate) accuracies of a table's replicate column."""
    return np.stack(table["accuracy_replicates"].to_list())


# --- saturation -------------------------------------------------------------------------------


@pytest.mark.parametrize("a,b,c", [(0.6, 0.3, 0.4), (0.35, 0.2, 0.08), (0.9, 0.5, 1.0), (0.2, 0.1, 0.02)])
def test_saturation_recovers_planted_parameters_with_noise(a: float, b: float, c: float) -> None:
    rng = np.random.default_rng(1)
    n = np.unique(np.concatenate([NS, [3, 6, 12, 24, 48, 96]]))
    acc = saturation_curve(n, a, b, c) + rng.normal(0, 0.003, len(n))
    (fit,) = fit_saturation(curve_table(n, acc)).itertuples()
    assert fit.status == "warning" and fit.reason == NO_REPLICATES and np.isnan(fit.a_low)
    assert fit.a == pytest.approx(a, abs=0.01)
    assert fit.c == pytest.approx(c, rel=0.25)
    assert fit.r2 > 0.95
    assert (fit.points, fit.n_min, fit.n_max, fit.bootstrap) == (len(n), 1, 256, 0)
    # The same point estimate as scipy's curve_fit from our answer, to its own tolerance.
    params, _ = optimize.curve_fit(saturation_curve, n, acc, p0=[fit.a, fit.b, fit.c],
                                   bounds=([0, 0, 1e-12], [1, np.inf, np.inf]))
    assert (fit.a, fit.b, fit.c) == pytest.approx(tuple(params), rel=1e-5)


def test_saturation_intervals_are_refits_on_the_replicates() -> None:
    n = NS.astype(float)
    table = add_problem_bootstrap(curve_table(n, saturation_curve(n, 0.6, 0.3, 0.2)), problems=2000,
                                  replicates=300, seed=4)
    (fit,) = fit_saturation(table).itertuples()
    assert fit.status == "ok", fit.reason
    reps = stacked(table)  # (point, replicate)
    refits = np.array([optimize.curve_fit(saturation_curve, n, reps[:, r], p0=[fit.a, fit.b, fit.c],
                                          bounds=([0, 0, 1e-12], [1, np.inf, np.inf]))[0]
                       for r in range(reps.shape[1])])  # (replicate, parameter), by scipy
    for i, name in enumerate("abc"):
        low, high = np.quantile(refits[:, i], [0.025, 0.975])
        assert getattr(fit, f"{name}_low") == pytest.approx(low, rel=1e-4), name
        assert getattr(fit, f"{name}_high") == pytest.approx(high, rel=1e-4), name
        assert getattr(fit, f"{name}_se") == pytest.approx(np.std(refits[:, i], ddof=1), rel=1e-4), name
    assert fit.a_low <= 0.6 <= fit.a_high and fit.c_low <= 0.2 <= fit.c_high
    assert fit.bootstrap == 300
    # Four times the problems: about half the width.
    more = add_problem_bootstrap(curve_table(n, saturation_curve(n, 0.6, 0.3, 0.2)), problems=8000,
                                 replicates=300, seed=4)
    (tight,) = fit_saturation(more).itertuples()
    assert (tight.a_high - tight.a_low) / (fit.a_high - fit.a_low) == pytest.approx(0.5, abs=0.15)


@settings(max_examples=40, deadline=None)
@given(
    a=st.floats(0.05, 1.0),
    b=st.floats(0.02, 0.5),
    c=st.floats(0.03, 1.0),
)
def test_saturation_is_exact_on_noise_free_curves(a: float, b: float, c: float) -> None:
    acc = saturation_curve(NS, a, b, c)
    (fit,) = fit_saturation(curve_table(NS, acc)).itertuples()
    assert fit.status in ("ok", "warning")
    assert fit.a == pytest.approx(a, abs=2e-3)
    fitted = saturation_curve(NS, fit.a, fit.b, fit.c)
    assert np.max(np.abs(fitted - acc)) < 1e-4
    assert 0 <= fit.a <= 1 and fit.b >= 0 and fit.c > 0


def test_saturation_fits_each_group_separately() -> None:
    table = pd.concat([
        curve_table(NS, saturation_curve(NS, 0.5, 0.3, 0.2), model="small", params=10**8),
        curve_table(NS, saturation_curve(NS, 0.8, 0.2, 0.5), model="large", params=10**10),
        curve_table(
            NS, saturation_curve(NS, 0.7, 0.4, 0.1), model="large", method="best_of_n_last", params=10**10
        ),
    ])
    fits = fit_saturation(table).set_index(["model", "method"])
    assert len(fits) == 3
    assert fits.loc[("small", "majority_vote"), "a"] == pytest.approx(0.5, abs=1e-4)
    assert fits.loc[("large", "majority_vote"), "a"] == pytest.approx(0.8, abs=1e-4)
    assert fits.loc[("large", "best_of_n_last"), "c"] == pytest.approx(0.1, rel=1e-3)
    assert fits.loc[("large", "best_of_n_last"), "model_params"] == 10**10


def test_saturation_too_few_points_is_a_failed_row() -> None:
    (fit,) = fit_saturation(curve_table(np.array([1, 2]), np.array([0.1, 0.2]))).itertuples()
    assert fit.status == "failed" and "need at least 3" in fit.reason
    assert np.isnan([fit.a, fit.b, fit.c, fit.a_se, fit.r2]).all()


def test_saturation_exactly_three_points_interpolates() -> None:
    n = np.array([1, 4, 16])
    (fit,) = fit_saturation(curve_table(n, saturation_curve(n, 0.5, 0.3, 0.3))).itertuples()
    assert fit.status == "warning" and "interpolates" in fit.reason
    assert fit.a == pytest.approx(0.5, abs=1e-3)
    assert np.isnan(fit.a_se) and np.isnan(fit.a_low)  # no replicates


def test_saturation_flat_curve_has_limit_but_no_rate() -> None:
    (fit,) = fit_saturation(curve_table(NS, np.full(len(NS), 0.4))).itertuples()
    assert fit.status == "warning" and "flat" in fit.reason
    assert (fit.a, fit.b) == (0.4, 0.0) and np.isnan(fit.c)
    # Flat replicates too: a limit for each, no rate.
    flat = add_problem_bootstrap(curve_table(NS, np.full(len(NS), 0.4)), problems=300, replicates=100, seed=1)
    (fit,) = fit_saturation(flat).itertuples()
    assert fit.a_low < fit.a < fit.a_high and fit.bootstrap == 100 and np.isnan(fit.c_low)


def test_saturation_ignores_missing_accuracy() -> None:
    acc = saturation_curve(NS, 0.5, 0.3, 0.3)
    acc[3] = np.nan
    (fit,) = fit_saturation(curve_table(NS, acc)).itertuples()
    assert fit.points == len(NS) - 1 and fit.a == pytest.approx(0.5, abs=1e-4)


@settings(max_examples=40, deadline=None)
@given(acc=st.lists(st.floats(0, 1), min_size=0, max_size=9))
def test_saturation_never_raises(acc: list[float]) -> None:
    n = NS[: len(acc)]
    fits = fit_saturation(curve_table(n, np.array(acc, dtype=float)))
    if acc:
        (fit,) = fits.itertuples()
        assert fit.status in ("ok", "warning", "failed")
        assert fit.status == "ok" or isinstance(fit.reason, str)
        if fit.status != "failed":
            assert 0 <= fit.a <= 1
    else:
        assert fits.empty


def test_saturation_on_a_realistic_table() -> None:
    fits = fit_saturation(make_accuracy_table())
    curves = fits[fits["method"] != "greedy"]
    assert (curves["status"] == "ok").all(), curves["reason"].unique()
    assert (curves["a_low"] <= curves["a"]).all() and (curves["a"] <= curves["a_high"]).all()
    assert (fits.loc[fits["method"] == "greedy", "status"] == "failed").all()


@settings(max_examples=40, deadline=None)
@given(a=st.floats(0.05, 1.0), b=st.floats(0.0, 0.5), c=st.floats(0.01, 2.0), noise=st.integers(0, 2**31))
def test_vectorised_fit_is_least_squares(a: float, b: float, c: float, noise: int) -> None:
    """No bounded (a, b, c) has a smaller residual than the vectorised fit's (curve_fit polishing
    from it finds no better point), on noisy curves."""
    n = NS.astype(float)
    acc = np.clip(saturation_curve(n, a, b, c) + np.random.default_rng(noise).normal(0, 0.02, len(n)), 0, 1)
    (fa,), (fb,), (fc,), (sse,) = fit_saturation_columns(n, acc[:, None])
    assert 0 <= fa <= 1 and fb >= 0 and fc > 0
    assert sse == pytest.approx(np.sum((acc - saturation_curve(n, fa, fb, fc)) ** 2))
    try:
        params, _ = optimize.curve_fit(saturation_curve, n, acc, p0=[fa, max(fb, 1e-9), fc],
                                       bounds=([0, 0, 1e-12], [1, np.inf, np.inf]))
    except RuntimeError:
        return
    assert sse <= np.sum((acc - saturation_curve(n, *params)) ** 2) * (1 + 1e-6) + 1e-15


# --- accuracy vs log10 FLOPs --------------------------------------------------------------------


def test_log_flops_recovers_planted_line_with_bootstrap_intervals() -> None:
    rng = np.random.default_rng(2)
    flops = np.geomspace(1e11, 1e15, 12)
    acc = 0.08 * np.log10(flops) - 0.7 + rng.normal(0, 0.01, len(flops))
    table = add_problem_bootstrap(curve_table(np.arange(1, 13), acc, flops=flops), problems=3000,
                                  replicates=400, seed=3)
    (fit,) = fit_log_flops(table).itertuples()
    assert fit.status == "ok"
    assert fit.slope == pytest.approx(0.08, abs=0.01)
    assert fit.slope_low <= 0.08 <= fit.slope_high
    # The bootstrap by hand: one least-squares line per replicate.
    x = np.log10(flops)
    lines = np.array([np.polyfit(x, r, 1) for r in stacked(table).T])  # (replicate, [slope, intercept])
    assert fit.slope_se == pytest.approx(np.std(lines[:, 0], ddof=1), rel=1e-6)
    assert (fit.slope_low, fit.slope_high) == pytest.approx(tuple(np.quantile(lines[:, 0], [0.025, 0.975])))
    assert (fit.intercept_low, fit.intercept_high) == pytest.approx(
        tuple(np.quantile(lines[:, 1], [0.025, 0.975])))
    assert (fit.log10_flops_min, fit.log10_flops_max) == pytest.approx((11, 15))
    assert fit.bootstrap == 400


def test_log_flops_degenerate_groups() -> None:
    one = curve_table(np.array([1]), np.array([0.3]))
    (fit,) = fit_log_flops(one).itertuples()
    assert fit.status == "failed" and np.isnan(fit.slope)
    two = curve_table(np.array([1, 2]), np.array([0.3, 0.4]))
    (fit,) = fit_log_flops(two).itertuples()
    assert fit.status == "warning" and np.isnan(fit.slope_se) and "interpolates" in fit.reason
    assert fit.slope == pytest.approx(0.1 / np.log10(2))


def test_log_flops_keeps_strategies_apart_by_default() -> None:
    fits = fit_log_flops(make_accuracy_table())
    assert set(fits["strategy"]) == {"greedy", "sampling", "rebase"}
    pooled = fit_log_flops(make_accuracy_table(), keys=("model", "dataset", "method"))
    assert "strategy" not in pooled.columns and len(pooled) < len(fits)


# --- compute-optimal ------------------------------------------------------------------------------


def test_power_law_recovers_planted_alpha_beta() -> None:
    rng = np.random.default_rng(3)
    log_n = np.repeat(np.log10([1.6e8, 4.1e8, 1e9, 1.4e9, 2.8e9, 6.9e9, 1.2e10]), 5)
    log_c = PAPER_ALPHA * log_n + PAPER_BETA + rng.normal(0, 0.05, len(log_n))
    fit = fit_power_law(log_n, log_c)
    assert fit["status"] == "ok" and fit["model_sizes"] == 7 and fit["points"] == 35
    assert fit["alpha"] == pytest.approx(PAPER_ALPHA, abs=0.05)
    assert fit["alpha_low"] <= PAPER_ALPHA <= fit["alpha_high"]
    assert fit["beta_low"] <= PAPER_BETA <= fit["beta_high"]
    exact = fit_power_law(log_n, PAPER_ALPHA * log_n + PAPER_BETA)
    assert (exact["alpha"], exact["beta"]) == pytest.approx((PAPER_ALPHA, PAPER_BETA), abs=1e-9)


def test_power_law_needs_two_sizes() -> None:
    fit = fit_power_law(np.full(4, 9.0), np.array([12.0, 12.5, 13.0, 13.5]))
    assert fit["status"] == "failed" and "need at least 2" in fit["reason"] and np.isnan(fit["alpha"])


def test_winners_pick_best_point_within_each_budget() -> None:
    rows = [  # model, params, method, n, accuracy, flops
        ("small", 1e8, "majority_vote", 1, 0.20, 1e10),
        ("small", 1e8, "majority_vote", 4, 0.30, 4e10),
        ("small", 1e8, "majority_vote", 16, 0.33, 1.6e11),
        ("small", 1e8, "pass_at_n", 16, 0.90, 1.6e11),  # an oracle: never selected
        ("large", 1e9, "majority_vote", 1, 0.30, 1e11),
        ("large", 1e9, "best_of_n_last", 1, 0.30, 1e11),
        ("large", 1e9, "majority_vote", 4, 0.45, 4e11),
    ]
    columns = ["model", "model_params", "method", "n", "accuracy", "flops_per_problem"]
    table = pd.DataFrame(rows, columns=columns)
    table = table.assign(dataset="d", strategy="sampling")
    winners = compute_budget_winners(table, budgets=[5e9, 1e10, 5e10, 1e11, 2e11, 5e11])
    got = [(w.budget, w.model, w.n, w.accuracy) for w in winners.itertuples()]
    assert got == [
        (1e10, "small", 1, 0.20),
        (5e10, "small", 4, 0.30),
        (1e11, "small", 4, 0.30),  # tie at 0.30 with large@1e11: the cheaper point wins
        (2e11, "small", 16, 0.33),
        (5e11, "large", 4, 0.45),
    ]
    assert winners["log10_params"].tolist() == pytest.approx([8, 8, 8, 8, 9])


def planted_compute_optimal_table(alpha: float, beta: float) -> tuple[pd.DataFrame, np.ndarray]:
    """Accuracy-vs-FLOPs curves for five sizes whose winners follow log10 C = α·log10 N + β.

    Model i wins on [s_{i-1}, s_i] in log10 FLOPs, the switch points halfway between consecutive
    centres α·log10 N_i + β; equally spaced log N make each winning interval centred on its
    centre, so least squares over a uniform budget grid returns α and β. Each model rises at
    slope m per decade from its start and caps; the next model starts late enough to pass the
    cap exactly at the switch point.
    """
    log_n = np.array([8.0, 8.5, 9.0, 9.5, 10.0])
    centres = alpha * log_n + beta
    half = (centres[1] - centres[0]) / 2
    switches = np.concatenate([[centres[0] - half], (centres[:-1] + centres[1:]) / 2, [centres[-1] + half]])
    caps, slope = 0.2 + 0.15 * np.arange(5), 0.5
    starts = np.concatenate([[switches[0] - 0.1], switches[1:-1] - caps[:-1] / slope])
    frames = []
    for i in range(5):
        x = np.arange(starts[i], switches[-1] + 0.1, 0.001)
        acc = np.minimum(caps[i], slope * (x - starts[i]))
        params = int(round(10 ** log_n[i]))
        frames.append(curve_table(np.arange(1, len(x) + 1), acc, model=f"m{i}", params=params, flops=10**x))
    budgets = 10 ** np.linspace(switches[0], switches[-1], 400)
    return pd.concat(frames, ignore_index=True), budgets


def test_compute_optimal_recovers_planted_power_law_end_to_end() -> None:
    table, budgets = planted_compute_optimal_table(PAPER_ALPHA, PAPER_BETA)
    result = fit_compute_optimal(table, budgets=budgets)
    (fit,) = result.fits.itertuples()
    assert fit.status == "warning" and fit.reason == NO_REPLICATES and fit.model_sizes == 5
    assert fit.alpha == pytest.approx(PAPER_ALPHA, abs=0.01)
    assert fit.beta == pytest.approx(PAPER_BETA, abs=0.1)
    assert np.isnan(fit.alpha_low) and fit.bootstrap == 0
    # Replicates equal to the point estimates: every refit is the same line.
    exact = table.assign(accuracy_replicates=[np.full(3, a) for a in table["accuracy"]])
    (same,) = fit_compute_optimal(exact, budgets=budgets).fits.itertuples()
    assert same.status == "ok" and same.bootstrap == 3
    assert same.alpha_low == same.alpha == same.alpha_high and same.beta_low == same.beta == same.beta_high
    # Each model wins one contiguous run of budgets, smallest first.
    order = result.winners.sort_values("budget")["model"]
    assert order.drop_duplicates().tolist() == ["m0", "m1", "m2", "m3", "m4"]


def test_compute_optimal_with_one_model_size_says_so() -> None:
    table = make_accuracy_table(models={"only": 10**9})
    result = fit_compute_optimal(table)
    (fit,) = result.fits.itertuples()
    assert fit.status == "failed" and "need at least 2" in fit.reason
    assert not result.winners.empty and set(result.winners["model"]) == {"only"}


def test_compute_optimal_default_grid_spans_observed_flops_per_dataset() -> None:
    table = make_accuracy_table(datasets=("math", "gsm8k"))
    result = fit_compute_optimal(table, num_budgets=10)
    assert result.fits["dataset"].tolist() == ["gsm8k", "math"]
    for dataset, rows in result.winners.groupby("dataset"):
        flops = table.loc[table["dataset"] == dataset, "flops_per_problem"]
        assert len(rows) == 10
        assert rows["budget"].min() == pytest.approx(flops.min())
        assert rows["budget"].max() == pytest.approx(flops.max())
    assert "pass_at_n" not in set(result.winners["method"])


def brute_force_winner(points: pd.DataFrame, budget: float) -> int:
    """The winner's row number, by the rule: most accurate within budget, then cheaper, then smaller."""
    fits = [i for i in range(len(points)) if points["flops_per_problem"].iloc[i] <= budget]
    if not fits:
        return -1
    return min(fits, key=lambda i: (-points["accuracy"].iloc[i], points["flops_per_problem"].iloc[i],
                                    points["model_params"].iloc[i], points["model"].iloc[i]))


# Small integer grids make ties in accuracy and in FLOPs common.
point_rows = st.lists(st.tuples(st.sampled_from([("m0", 10**8), ("m1", 10**9), ("m2", 10**10)]),
                                st.integers(1, 6), st.integers(0, 4)), min_size=1, max_size=14)


@settings(max_examples=150, deadline=None)
@given(rows=point_rows, budgets=st.lists(st.integers(0, 7), min_size=1, max_size=6))
def test_winning_points_match_brute_force(
    rows: list[tuple[tuple[str, int], int, int]], budgets: list[int]
) -> None:
    points = pd.DataFrame({
        "model": [m for (m, _), _, _ in rows], "model_params": [p for (_, p), _, _ in rows],
        "flops_per_problem": [float(f) for _, f, _ in rows], "accuracy": [a / 4 for _, _, a in rows],
    })  # fmt: skip
    grid = np.sort(np.asarray(budgets, dtype=float))
    got = winning_points(points, points["accuracy"].to_numpy()[:, None], grid)[:, 0]
    expected = [brute_force_winner(points, b) for b in grid]
    # Equal winners up to exact duplicates (same model, FLOPs and accuracy are interchangeable).
    key = points[["model", "flops_per_problem", "accuracy"]].to_numpy()
    def named(index: list[int]) -> list[tuple | None]:
        return [tuple(key[i]) if i >= 0 else None for i in index]

    assert named(list(got)) == named(expected)


def test_replicate_winners_are_the_winners_of_each_replicate_table() -> None:
    table = make_accuracy_table(models={"a": 10**8, "b": 4 * 10**8, "c": 16 * 10**8}, replicates=50, seed=3)
    table = table[table["strategy"] == "sampling"]
    points = table[table["method"] != "pass_at_n"]
    reps = stacked(points)  # (point, replicate)
    grid = np.geomspace(points["flops_per_problem"].min(), points["flops_per_problem"].max(), 32)
    index = winning_points(points, reps, grid)  # (budget, replicate)
    for r in range(0, 50, 7):
        replicate = points.assign(accuracy=reps[:, r])
        winners = compute_budget_winners(replicate, budgets=grid)
        assert winners["model"].tolist() == points["model"].to_numpy()[index[:, r]].tolist(), r
