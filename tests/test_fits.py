"""analysis/fits.py: each fit recovers parameters planted in synthetic data, and never raises."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from analysis.fits import (
    PAPER_ALPHA,
    PAPER_BETA,
    compute_budget_winners,
    fit_compute_optimal,
    fit_log_flops,
    fit_power_law,
    fit_saturation,
    saturation_curve,
)
from synthetic_accuracy import COLUMNS, make_accuracy_table

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
    })[COLUMNS]


# --- saturation -------------------------------------------------------------------------------


@pytest.mark.parametrize("a,b,c", [(0.6, 0.3, 0.4), (0.35, 0.2, 0.08), (0.9, 0.5, 1.0), (0.2, 0.1, 0.02)])
def test_saturation_recovers_planted_parameters_with_noise(a: float, b: float, c: float) -> None:
    rng = np.random.default_rng(1)
    n = np.unique(np.concatenate([NS, [3, 6, 12, 24, 48, 96]]))
    acc = saturation_curve(n, a, b, c) + rng.normal(0, 0.003, len(n))
    (fit,) = fit_saturation(curve_table(n, acc)).itertuples()
    assert fit.status == "ok", fit.reason
    assert fit.a == pytest.approx(a, abs=0.01)
    assert fit.c == pytest.approx(c, rel=0.25)
    assert fit.a_low <= a <= fit.a_high
    assert fit.c_low <= c <= fit.c_high
    assert fit.a_low < fit.a < fit.a_high and fit.a_se > 0
    assert fit.r2 > 0.95
    assert (fit.points, fit.n_min, fit.n_max) == (len(n), 1, 256)


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


def test_saturation_exactly_three_points_has_no_standard_errors() -> None:
    n = np.array([1, 4, 16])
    (fit,) = fit_saturation(curve_table(n, saturation_curve(n, 0.5, 0.3, 0.3))).itertuples()
    assert fit.status == "warning" and "no standard errors" in fit.reason
    assert fit.a == pytest.approx(0.5, abs=1e-3)
    assert np.isnan(fit.a_se) and np.isnan(fit.a_low)


def test_saturation_flat_curve_has_limit_but_no_rate() -> None:
    (fit,) = fit_saturation(curve_table(NS, np.full(len(NS), 0.4))).itertuples()
    assert fit.status == "warning" and "flat" in fit.reason
    assert (fit.a, fit.b) == (0.4, 0.0) and np.isnan(fit.c)


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
    assert (curves["status"] == "ok").all()
    assert (fits.loc[fits["method"] == "greedy", "status"] == "failed").all()


# --- accuracy vs log10 FLOPs --------------------------------------------------------------------


def test_log_flops_recovers_planted_line_with_t_intervals() -> None:
    rng = np.random.default_rng(2)
    flops = np.geomspace(1e11, 1e15, 12)
    acc = 0.08 * np.log10(flops) - 0.7 + rng.normal(0, 0.01, len(flops))
    (fit,) = fit_log_flops(curve_table(np.arange(1, 13), acc, flops=flops)).itertuples()
    assert fit.status == "ok"
    assert fit.slope == pytest.approx(0.08, abs=0.01)
    assert fit.slope_low <= 0.08 <= fit.slope_high
    assert fit.intercept_low <= -0.7 <= fit.intercept_high
    # The textbook standard error of the slope, by hand.
    x = np.log10(flops)
    residuals = acc - (fit.slope * x + fit.intercept)
    se = np.sqrt(np.sum(residuals**2) / (len(x) - 2) / np.sum((x - x.mean()) ** 2))
    assert fit.slope_se == pytest.approx(se, rel=1e-9)
    assert fit.slope_high - fit.slope == pytest.approx(stats.t.ppf(0.975, len(x) - 2) * se, rel=1e-9)
    assert (fit.log10_flops_min, fit.log10_flops_max) == pytest.approx((11, 15))


def test_log_flops_degenerate_groups() -> None:
    one = curve_table(np.array([1]), np.array([0.3]))
    (fit,) = fit_log_flops(one).itertuples()
    assert fit.status == "failed" and np.isnan(fit.slope)
    two = curve_table(np.array([1, 2]), np.array([0.3, 0.4]))
    (fit,) = fit_log_flops(two).itertuples()
    assert fit.status == "warning" and np.isnan(fit.slope_se)
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
    assert fit.status == "ok" and fit.model_sizes == 5
    assert fit.alpha == pytest.approx(PAPER_ALPHA, abs=0.01)
    assert fit.beta == pytest.approx(PAPER_BETA, abs=0.1)
    assert fit.alpha_low <= PAPER_ALPHA <= fit.alpha_high
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
