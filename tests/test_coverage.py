"""Coverage of the analysis's 95% intervals on simulated sweeps with a known truth.

A population of problem types (a right-answer chance per type and model, from a logistic model of
skill against difficulty) fixes the truth: each model's exact majority-vote accuracy at every n
(``majority_truth``), and the compute-optimal α the fit finds on those true curves. Each of
``SWEEPS`` sweeps then draws ``PROBLEMS`` problems from the population and ``SAMPLES`` samples
per (model, problem), estimates majority vote on random subsets with the analysis's own
resampling (``analysis/subsets.py``) and bootstraps over problems with its own code
(``analysis/bootstrap.py``), so an interval covers the truth only if it accounts for which
problems and which samples were drawn. All sweeps run at once, vectorised.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from synthetic_accuracy import bootstrap_sweeps, majority_truth, simulate_majority_vote

from analysis.bootstrap import percentile_interval
from analysis.compute_optimal import compute_budget_winners, fit_compute_optimal, fit_power_law

SWEEPS, PROBLEMS, SAMPLES, RESAMPLES, REPLICATES = 200, 100, 16, 8, 1000
N_VALUES = [1, 2, 4, 8, 16]
PARAMS = np.array([1.6e8, 4.1e8, 1.0e9, 2.8e9])
SKILL = np.array([-0.3, -0.1, 0.1, 0.3])  # close enough that more samples of a smaller model compete
TYPES = stats.norm.ppf((np.arange(40) + 0.5) / 40)  # (type,) problem difficulty
POPULATION = 1 / (1 + np.exp(-2.0 * (SKILL[None, :] - TYPES[:, None])))  # (type, model) -> q
TRUTH = np.array([[majority_truth(POPULATION[:, m], n).mean() for n in N_VALUES] for m in range(len(PARAMS))])
PROMPT_TOKENS, TOKENS = 100, 200
COVERAGE = (0.90, 0.99)


def accuracy_table(
    accuracy: np.ndarray, *, dataset: str, replicates: np.ndarray | None = None
) -> pd.DataFrame:
    """The accuracy table of one sweep: ``accuracy`` (model, n), ``replicates`` (model, n, replicate)."""
    models, ns = accuracy.shape
    table = pd.DataFrame({
        "model": np.repeat([f"m{m}" for m in range(models)], ns),
        "model_params": np.repeat(PARAMS, ns),
        "dataset": dataset, "strategy": "sampling", "method": "majority_vote",
        "n": np.tile(N_VALUES, models),
        "accuracy": accuracy.ravel(),
        "flops_per_problem": (2.0 * PARAMS[:, None] * (PROMPT_TOKENS + TOKENS * np.array(N_VALUES))).ravel(),
    })  # fmt: skip
    if replicates is not None:
        table["accuracy_replicates"] = list(replicates.reshape(models * ns, -1))
    return table


@pytest.fixture(scope="module")
def sweeps() -> dict[str, np.ndarray | pd.DataFrame]:
    simulated = simulate_majority_vote(
        POPULATION, sweeps=SWEEPS, problems=PROBLEMS, samples=SAMPLES, n_values=N_VALUES,
        resamples=RESAMPLES, seed=1,
    )  # fmt: skip
    models = len(PARAMS)
    cells = np.transpose(simulated.estimate, (0, 1, 3, 2)).reshape(SWEEPS, models * len(N_VALUES), PROBLEMS)
    replicates = bootstrap_sweeps(cells, replicates=REPLICATES, seed=2)  # (sweep, cell, replicate)
    accuracy = cells.mean(axis=2)  # (sweep, cell)
    tables = pd.concat(
        [
            accuracy_table(accuracy[s].reshape(models, -1), dataset=f"s{s:03d}",
                           replicates=replicates[s].reshape(models, len(N_VALUES), -1))
            for s in range(SWEEPS)
        ],
        ignore_index=True,
    )  # fmt: skip
    return {"estimate": simulated.estimate, "accuracy": accuracy, "replicates": replicates, "tables": tables}


def test_truth_is_what_the_estimator_estimates(sweeps: dict) -> None:
    """Over all sweeps' problems, the subset estimates average to the exact majority-vote truth."""
    estimate = sweeps["estimate"]  # (sweep, model, problem, n)
    mean = estimate.mean(axis=(0, 2))  # (model, n)
    se = estimate.mean(axis=2).std(axis=0, ddof=1) / np.sqrt(SWEEPS)
    assert np.all(np.abs(mean - TRUTH) < 4 * se), (mean - TRUTH) / se


def test_accuracy_interval_covers_the_truth(sweeps: dict) -> None:
    low, high = percentile_interval(sweeps["replicates"])  # (sweep, cell)
    covered = (low <= TRUTH.ravel()) & (TRUTH.ravel() <= high)
    coverage = covered.mean(axis=0)  # (cell,) over sweeps
    assert np.all((COVERAGE[0] <= coverage) & (coverage <= COVERAGE[1])), coverage.round(3)
    assert ((low >= 0) & (high <= 1)).all()
    # Not vacuous: the intervals are about as wide as the problems' noise, not wider.
    width = np.median(high - low, axis=0)
    assert np.all(width < 4 * 1.96 * sweeps["accuracy"].std(axis=0)), width


def test_alpha_interval_covers_the_truth(sweeps: dict) -> None:
    truth = fit_compute_optimal(accuracy_table(TRUTH, dataset="truth")).fits.iloc[0]
    winners = compute_budget_winners(accuracy_table(TRUTH, dataset="truth"))
    assert truth["model_sizes"] == len(PARAMS) and winners["n"].nunique() > 1  # a real trade-off
    fits = fit_compute_optimal(sweeps["tables"]).fits
    assert len(fits) == SWEEPS and (fits["bootstrap"] > 0.9 * REPLICATES).all()
    covered = (fits["alpha_low"] <= truth["alpha"]) & (truth["alpha"] <= fits["alpha_high"])
    assert COVERAGE[0] <= covered.mean() <= COVERAGE[1], covered.mean()
    assert (fits["alpha_high"] > fits["alpha_low"]).mean() > 0.5  # winners are uncertain: not vacuous


def test_alpha_width_does_not_depend_on_grid_density(sweeps: dict) -> None:
    """Twice the budgets, same data: the bootstrap width moves by less than 20 %, where the old
    linregress interval over the grid points narrows by about 1/√2."""
    width, regression = {}, {}
    for budgets in (32, 64):
        result = fit_compute_optimal(sweeps["tables"], num_budgets=budgets)
        width[budgets] = (result.fits["alpha_high"] - result.fits["alpha_low"]).mean()
        winners = result.winners.groupby("dataset")
        lines = [fit_power_law(w["log10_params"], w["log10_budget"]) for _, w in winners]
        regression[budgets] = np.nanmean([line["alpha_high"] - line["alpha_low"] for line in lines])
    assert abs(width[64] / width[32] - 1) < 0.2, width
    assert regression[64] / regression[32] < 0.8, regression  # the old interval's flaw
