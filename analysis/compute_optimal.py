"""Compute-optimal model size: for each FLOPs budget, the model whose best point within the
budget is most accurate; then the power law log10 C = α·log10 N + β over (budget C, optimal
size N), per dataset.

The winners' selection (``winning_points``) is vectorised over columns, so the point table and
every bootstrap replicate go through the same selection and the same line; intervals and
failures follow ``analysis.fits``. pass@n is left out of the candidates by default: it needs
an oracle verifier.

Left out: the other fits (``analysis.saturation``, ``analysis.log_flops``) and the figure
(``analysis.plots.plot_compute_optimal``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from analysis.bootstrap import CONFIDENCE
from analysis.fits import NO_REPLICATES, interval_columns, least_squares, replicates_of
from analysis.methods import ORACLE_METHODS

#: Wu et al. (2024), Pythia on MATH: log10 C = 1.19·log10 N + 2.03 (C: FLOPs budget, N: params).
PAPER_ALPHA = 1.19
PAPER_BETA = 2.03


@dataclass(frozen=True)
class ComputeOptimalFit:
    """Compute-optimal model size per FLOPs budget, and the power law through it.

    ``winners``: one row per (dataset, budget) with at least one point within budget —
    ``dataset, budget, log10_budget, model, model_params, log10_params, strategy, method, n,
    accuracy, flops_per_problem`` (the winning point).
    ``fits``: one row per dataset — ``points, model_sizes`` (distinct optimal sizes), and
    log10 C = α·log10 N + β as ``alpha, alpha_se, alpha_low, alpha_high, beta, …, bootstrap, r2,
    status, reason``; the intervals refit winners and line on every bootstrap replicate.
    Wu et al. (2024) report α = 1.19, β = 2.03 on Pythia (``PAPER_ALPHA``, ``PAPER_BETA``).
    """

    winners: pd.DataFrame
    fits: pd.DataFrame


WINNER_COLUMNS = [
    "dataset", "budget", "log10_budget", "model", "model_params", "log10_params",
    "strategy", "method", "n", "accuracy", "flops_per_problem",
]  # fmt: skip


def compute_budget_winners(
    df: pd.DataFrame,
    *,
    budgets: Sequence[float] | np.ndarray | None = None,
    num_budgets: int = 32,
    exclude_methods: Sequence[str] = ORACLE_METHODS,
) -> pd.DataFrame:
    """For each dataset and FLOPs budget, the model with the highest accuracy at flops ≤ budget.

    A model's accuracy at a budget is the best over all its (strategy, method, n) points that fit
    in it. Ties go to the cheaper point, then to the smaller model (``winning_points``).
    ``budgets`` (FLOPs per problem) default to ``num_budgets`` log-spaced values spanning each
    dataset's observed FLOPs. pass@n is excluded by default: it needs an oracle verifier, so no
    deployed system attains it. Budgets below every model's cheapest point have no row.
    """
    tables = []
    for dataset, part in _candidates(df, exclude_methods).groupby("dataset", sort=True):
        grid = _budget_grid(part["flops_per_problem"], budgets, num_budgets)  # (budget,)
        index = winning_points(part, part["accuracy"].to_numpy(dtype=float)[:, None], grid)[:, 0]
        found = index >= 0
        tables.append(part.iloc[index[found]].assign(budget=grid[found], dataset=dataset))
    if not tables:
        return pd.DataFrame(columns=WINNER_COLUMNS)
    out = pd.concat(tables, ignore_index=True)
    out["log10_budget"] = np.log10(out["budget"])
    out["log10_params"] = np.log10(out["model_params"].astype(float))
    return out[WINNER_COLUMNS].reset_index(drop=True)


def _candidates(df: pd.DataFrame, exclude_methods: Sequence[str]) -> pd.DataFrame:
    data = df[~df["method"].isin(list(exclude_methods))]
    return data[(data["flops_per_problem"] > 0) & data["accuracy"].notna() & (data["model_params"] > 0)]


def _budget_grid(flops: pd.Series, budgets: Sequence[float] | np.ndarray | None, num: int) -> np.ndarray:
    if budgets is not None:
        return np.sort(np.asarray(budgets, dtype=float))
    low, high = float(flops.min()), float(flops.max())
    return np.geomspace(low, high, num) if high > low else np.array([low])


def winning_points(points: pd.DataFrame, accuracy: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """(budget, column) -> row number in ``points`` of each budget's winner when the points'
    accuracies are ``accuracy[:, column]`` (point, column); -1 where no point fits the budget.

    Per model, a running maximum over its points by FLOPs: at a budget, the model's best point
    within it, the cheapest of equally accurate ones. Across models, the most accurate, then the
    cheaper point, then the smaller model. NaN accuracy: the point is left out. Vectorised over
    columns, so the point table and every bootstrap replicate go through the same selection.
    """
    flops = points["flops_per_problem"].to_numpy(dtype=float)
    params = points["model_params"].to_numpy(dtype=float)
    models = points["model"].astype(str).to_numpy()
    budgets, columns = len(grid), accuracy.shape[1]
    best_acc = np.full((budgets, columns), -np.inf)
    best_flops = np.full((budgets, columns), np.inf)
    best = np.full((budgets, columns), -1)
    for _, model in sorted({(p, m) for p, m in zip(params, models)}):
        mine = np.nonzero(models == model)[0]
        mine = mine[np.argsort(flops[mine], kind="stable")]  # (step,) -> point, by FLOPs
        acc = np.where(np.isnan(accuracy[mine]), -np.inf, accuracy[mine])  # (step, column)
        running = np.maximum.accumulate(acc, axis=0)
        record = acc > np.vstack([np.full((1, columns), -np.inf), running[:-1]])
        steps = np.arange(len(mine))[:, None]
        holder = np.maximum.accumulate(np.where(record, steps, 0), axis=0)  # the cheapest best step
        last = np.searchsorted(flops[mine], grid, side="right") - 1  # (budget,) last step within
        at = np.clip(last, 0, None)
        acc_k = np.where((last >= 0)[:, None], running[at], -np.inf)  # (budget, column)
        flops_k = flops[mine][holder[at]]
        better = (acc_k > -np.inf) & (
            (acc_k > best_acc) | ((acc_k == best_acc) & (flops_k < best_flops))
        )
        best_acc = np.where(better, acc_k, best_acc)
        best_flops = np.where(better, flops_k, best_flops)
        best = np.where(better, mine[holder[at]], best)
    return best


def fit_power_law(log10_params: np.ndarray, log10_budget: np.ndarray) -> dict[str, object]:
    """log10 C = α·log10 N + β by scipy.stats.linregress, with 95 % t intervals.

    Returns ``points, model_sizes, alpha, alpha_se, alpha_low, alpha_high, beta, …, r2, status,
    reason``. Needs ≥ 2 distinct N. The t intervals treat the points as independent draws;
    budgets on a grid are not, so ``fit_compute_optimal`` replaces them with the bootstrap's.
    """
    x = np.asarray(log10_params, dtype=float)
    y = np.asarray(log10_budget, dtype=float)
    sizes = len(np.unique(x))
    out: dict[str, object] = {"points": len(x), "model_sizes": sizes}
    line = {"r2": np.nan, "status": "failed", "reason": None}
    for name in ("alpha", "beta"):
        line |= {name: np.nan, f"{name}_se": np.nan, f"{name}_low": np.nan, f"{name}_high": np.nan}
    if sizes < 2:
        line["reason"] = f"{sizes} distinct compute-optimal model size(s); need at least 2"
        return out | line
    fit = stats.linregress(x, y)
    # The values by the same least squares as the bootstrap's refits, so equal winners give
    # bitwise-equal lines; linregress for the standard errors.
    slope, intercept = (float(v) for v in least_squares(x, y))
    dof = len(x) - 2
    t = float(stats.t.ppf(0.5 + CONFIDENCE / 2, dof)) if dof > 0 else np.nan
    se = (fit.stderr, fit.intercept_stderr) if dof > 0 else (np.nan, np.nan)
    for name, value, err in (("alpha", slope, se[0]), ("beta", intercept, se[1])):
        line |= {name: value, f"{name}_se": float(err), f"{name}_low": value - t * err,
                 f"{name}_high": value + t * err}
    line["r2"] = float(fit.rvalue**2) if np.ptp(y) > 0 else np.nan
    if dof <= 0:
        return out | line | {"status": "warning", "reason": "2 points for 2 parameters: no intervals"}
    return out | line | {"status": "ok"}


def fit_compute_optimal(
    df: pd.DataFrame,
    *,
    budgets: Sequence[float] | np.ndarray | None = None,
    num_budgets: int = 32,
    exclude_methods: Sequence[str] = ORACLE_METHODS,
    confidence: float = CONFIDENCE,
) -> ComputeOptimalFit:
    """Compute-optimal model size vs FLOPs budget, per dataset, and α, β of log10 C = α·log10 N + β.

    See ``compute_budget_winners`` for the selection and ``fit_power_law`` for the regression.
    α and β are the line through the winners; their intervals are percentile intervals of the
    same selection and line on every bootstrap replicate of the table (``winning_points``),
    over the same budget grid, so their width comes from the problems, not from how many budgets
    the grid has. A replicate whose budgets are all won by one size has no line; ``bootstrap``
    counts those that have one. Wu et al. (2024) fit α = 1.19, β = 2.03 on Pythia models (MATH).
    A dataset whose budgets are all won by one model size gets a "failed" fit row saying so.
    """
    winners = compute_budget_winners(
        df, budgets=budgets, num_budgets=num_budgets, exclude_methods=exclude_methods
    )
    candidates = _candidates(df, exclude_methods)
    rows = []
    for dataset in sorted(df["dataset"].dropna().unique()):
        part = winners[winners["dataset"] == dataset]
        available = df.loc[df["dataset"] == dataset, "model_params"].nunique()
        row = {"dataset": dataset} | fit_power_law(part["log10_params"], part["log10_budget"])
        if available < 2:
            row["reason"] = f"{available} model size(s) in the data; need at least 2"
        if row["status"] != "failed":
            points = candidates[candidates["dataset"] == dataset]
            row |= _power_law_intervals(points, budgets, num_budgets, confidence)
            notes = [r for r in (row["reason"], row.pop("note")) if r]
            row["status"] = "warning" if notes else "ok"
            row["reason"] = "; ".join(notes) or None
        else:
            row["bootstrap"] = 0
        rows.append(row)
    columns = ["dataset", "points", "model_sizes"]
    for name in ("alpha", "beta"):
        columns += [name, f"{name}_se", f"{name}_low", f"{name}_high"]
    columns += ["bootstrap", "r2", "status", "reason"]
    return ComputeOptimalFit(winners=winners, fits=pd.DataFrame(rows, columns=columns))


def _power_law_intervals(
    points: pd.DataFrame, budgets: Sequence[float] | np.ndarray | None, num_budgets: int, confidence: float
) -> dict[str, object]:
    """α and β for one dataset's candidate points, with their bootstrap columns and a note (or
    None). The point line and the replicates' lines come from one call of the same code, so a
    replicate with the same winners has bitwise the same line."""
    replicates = replicates_of(points)
    accuracy = points["accuracy"].to_numpy(dtype=float)[:, None]  # (point, 1)
    columns = accuracy if replicates is None else np.hstack([accuracy, replicates])  # (point, 1 + replicate)
    grid = _budget_grid(points["flops_per_problem"], budgets, num_budgets)
    index = winning_points(points, columns, grid)  # (budget, column)
    log_params = np.log10(points["model_params"].to_numpy(dtype=float))
    size = np.where(index >= 0, log_params[index], np.nan)  # (budget, column) log10 N of the winner
    won = np.isfinite(size[:, 0])  # budgets some point fits (the same in every column)
    alpha, beta = least_squares(np.ascontiguousarray(size[won].T), np.log10(grid[won]))  # (column,)
    reps = None if replicates is None else np.stack([alpha[1:], beta[1:]])
    out = interval_columns(("alpha", "beta"), (float(alpha[0]), float(beta[0])), reps, confidence)
    if replicates is None:
        return out | {"note": NO_REPLICATES}
    lost = replicates.shape[1] - int(out["bootstrap"])
    note = f"{lost} of {replicates.shape[1]} replicates had one winning size: no line" if lost else None
    return out | {"note": note}
