"""Curve fits over the accuracy table (one row per model, dataset, strategy, method, n).

Three fits, each returning DataFrames (or a dataclass of them) with one row per fitted group:

- ``fit_saturation``: acc(n) = a − b·exp(−c·n). Wu et al. (2024), Theorem 1: majority voting's
  accuracy converges to a limit at an exponential rate in n, so ``a`` estimates that limit.
- ``fit_log_flops``: acc = slope·log10(FLOPs) + intercept, the straight part of the paper's
  accuracy-vs-compute curves (before they saturate).
- ``fit_compute_optimal``: for each FLOPs budget, the model whose best point within the budget
  is most accurate; then log10 C = α·log10 N + β over (budget C, optimal size N).

A fit that cannot be made (too few points, no convergence, degenerate data) is a row with NaN
parameters, ``status == "failed"`` and a ``reason``; no fit raises. Intervals are 95 %,
t-distributed with the fit's residual degrees of freedom. Fits are unweighted: the bootstrap
CIs in the input collapse to zero width at accuracy 0 or 1, so they make poor weights.

Left out: the plots (``analysis.report``) and the estimators that make the input table
(``analysis.estimators``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

#: Wu et al. (2024), Pythia on MATH: log10 C = 1.19·log10 N + 2.03 (C: FLOPs budget, N: params).
PAPER_ALPHA = 1.19
PAPER_BETA = 2.03

SATURATION_KEYS = ("model", "dataset", "strategy", "method")
LOG_FLOPS_KEYS = ("model", "dataset", "strategy", "method")
CONFIDENCE = 0.95


# ---------------------------------------------------------------------------------------------
# Saturation: acc(n) = a − b·exp(−c·n)
# ---------------------------------------------------------------------------------------------


def saturation_curve(n: np.ndarray | float, a: float, b: float, c: float) -> np.ndarray:
    """a − b·exp(−c·n): the model ``fit_saturation`` fits."""
    return a - b * np.exp(-c * np.asarray(n, dtype=float))


def fit_saturation(df: pd.DataFrame, *, min_points: int = 3) -> pd.DataFrame:
    """Fit acc(n) = a − b·exp(−c·n) per (model, dataset, strategy, method).

    Bounds 0 ≤ a ≤ 1, b ≥ 0, c > 0. Returns one row per group with ``model_params``, ``points``,
    ``n_min``, ``n_max``, for each of a, b, c the estimate, ``_se``, ``_low``, ``_high``; ``r2``,
    ``rmse``, ``status`` ("ok" | "warning" | "failed") and ``reason`` (missing when "ok").
    Groups with fewer than ``min_points`` distinct n are "failed" rows. With exactly 3 points
    the fit interpolates, so standard errors are NaN ("warning"). A flat curve has no rate:
    b = 0 and c = NaN ("warning").
    """
    rows = []
    for key, group in _groups(df, SATURATION_KEYS):
        group = group.dropna(subset=["n", "accuracy"]).sort_values("n")
        n = group["n"].to_numpy(dtype=float)  # (points,)
        acc = group["accuracy"].to_numpy(dtype=float)  # (points,)
        row = dict(zip(SATURATION_KEYS, key))
        row["model_params"] = _first(group, "model_params")
        row |= {"points": len(n), "n_min": _min(n), "n_max": _max(n)}
        row |= _fit_one_saturation(n, acc, min_points=min_points)
        rows.append(row)
    columns = [*SATURATION_KEYS, "model_params", "points", "n_min", "n_max"]
    for name in ("a", "b", "c"):
        columns += [name, f"{name}_se", f"{name}_low", f"{name}_high"]
    columns += ["r2", "rmse", "status", "reason"]
    return pd.DataFrame(rows, columns=columns)


def _fit_one_saturation(n: np.ndarray, acc: np.ndarray, *, min_points: int) -> dict[str, object]:
    if len(np.unique(n)) < min_points:
        return _failed_saturation(f"{len(np.unique(n))} distinct n values; need at least {min_points}")
    if len(np.unique(n)) < len(n):
        return _failed_saturation("duplicate n values in one group")
    if np.ptp(acc) == 0:
        # Nothing to saturate: the limit is the value itself and the rate is unidentifiable.
        out = _failed_saturation("flat curve: b = 0 and the rate c is unidentifiable")
        out |= {"a": float(acc[0]), "b": 0.0, "r2": np.nan, "rmse": 0.0, "status": "warning"}
        return out

    p0 = _saturation_start(n, acc)
    lower, upper = [0.0, 0.0, 1e-12], [1.0, np.inf, np.inf]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            params, cov = optimize.curve_fit(
                saturation_curve, n, acc, p0=p0, bounds=(lower, upper), method="trf", maxfev=20_000
            )
        except (RuntimeError, ValueError) as error:
            return _failed_saturation(f"curve_fit did not converge: {error}")
    if not np.all(np.isfinite(params)):
        return _failed_saturation("curve_fit returned non-finite parameters")

    residuals = acc - saturation_curve(n, *params)
    dof = len(n) - 3
    se = np.sqrt(np.diag(cov)) if dof > 0 else np.full(3, np.nan)
    se = np.where(np.isfinite(se), se, np.nan)
    half = _t_quantile(dof) * se
    out: dict[str, object] = {}
    for i, name in enumerate(("a", "b", "c")):
        out |= {name: params[i], f"{name}_se": se[i], f"{name}_low": params[i] - half[i],
                f"{name}_high": params[i] + half[i]}
    out |= {"r2": _r2(acc, residuals), "rmse": float(np.sqrt(np.mean(residuals**2)))}

    notes = []
    if dof <= 0:
        notes.append("3 points for 3 parameters: no standard errors")
    elif np.isnan(se).any():
        notes.append("covariance could not be estimated")
    if params[1] <= 1e-9:
        notes.append("b at its lower bound 0 (curve not increasing): c is unidentifiable")
    if params[0] >= 1 - 1e-9:
        notes.append("a at its upper bound 1: its interval is unreliable")
    if any(issubclass(w.category, optimize.OptimizeWarning) for w in caught) and not notes:
        notes.append("; ".join(str(w.message) for w in caught))
    out |= {"status": "warning" if notes else "ok", "reason": "; ".join(notes) or None}
    return out


def _saturation_start(n: np.ndarray, acc: np.ndarray) -> list[float]:
    """Starting point: for a log-spaced grid of rates c, (a, b) is linear least squares; keep the best.

    acc = a − b·exp(−c·n) is linear in (a, b) once c is fixed, so a coarse scan over c gives
    curve_fit a start near the global optimum whatever scale n is on (1..8 or 1..4096).
    """
    best: tuple[float, list[float]] = (np.inf, [float(np.clip(acc.max(), 0.01, 0.99)), 0.1, 1.0 / n.mean()])
    for c in np.geomspace(0.05 / n.max(), 5.0 / n.min(), 40):
        design = np.column_stack([np.ones_like(n), -np.exp(-c * n)])  # (points, 2)
        (a, b), *_ = np.linalg.lstsq(design, acc, rcond=None)
        a, b = float(np.clip(a, 1e-6, 1 - 1e-6)), float(max(b, 1e-6))
        sse = float(np.sum((acc - saturation_curve(n, a, b, c)) ** 2))
        if sse < best[0]:
            best = (sse, [a, b, float(c)])
    return best[1]


def _failed_saturation(reason: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for name in ("a", "b", "c"):
        out |= {name: np.nan, f"{name}_se": np.nan, f"{name}_low": np.nan, f"{name}_high": np.nan}
    return out | {"r2": np.nan, "rmse": np.nan, "status": "failed", "reason": reason}


# ---------------------------------------------------------------------------------------------
# Accuracy vs log10 FLOPs
# ---------------------------------------------------------------------------------------------


def fit_log_flops(df: pd.DataFrame, *, keys: Sequence[str] = LOG_FLOPS_KEYS) -> pd.DataFrame:
    """Least-squares line accuracy = slope·log10(flops_per_problem) + intercept, per group.

    Groups by (model, dataset, strategy, method) by default: sampling's and REBASE's majority
    vote are different curves, so they are not pooled (pass ``keys`` to pool). ``slope`` is
    accuracy gained per decade of FLOPs. Returns the estimates with ``_se``, ``_low``, ``_high``,
    ``r2``, ``points``, the log10 FLOPs range, ``status`` and ``reason``. Needs ≥ 2 distinct
    FLOPs values; with exactly 2 the line interpolates and has no intervals ("warning").
    The line ignores saturation; use ``fit_saturation`` where the curve has flattened.
    """
    keys = tuple(keys)
    rows = []
    for key, group in _groups(df, keys):
        group = group[(group["flops_per_problem"] > 0) & group["accuracy"].notna()]
        x = np.log10(group["flops_per_problem"].to_numpy(dtype=float))  # (points,)
        y = group["accuracy"].to_numpy(dtype=float)  # (points,)
        row: dict[str, object] = dict(zip(keys, key))
        row["model_params"] = _first(group, "model_params")
        row |= {"points": len(x), "log10_flops_min": _min(x), "log10_flops_max": _max(x)}
        row |= _line(x, y, names=("slope", "intercept"))
        rows.append(row)
    columns = [*keys, "model_params", "points", "log10_flops_min", "log10_flops_max"]
    for name in ("slope", "intercept"):
        columns += [name, f"{name}_se", f"{name}_low", f"{name}_high"]
    columns += ["r2", "status", "reason"]
    return pd.DataFrame(rows, columns=columns)


def _line(x: np.ndarray, y: np.ndarray, *, names: tuple[str, str]) -> dict[str, object]:
    """scipy.stats.linregress of y on x with t intervals; NaN and a reason when impossible."""
    slope, intercept = names
    out: dict[str, object] = {}
    for name in names:
        out |= {name: np.nan, f"{name}_se": np.nan, f"{name}_low": np.nan, f"{name}_high": np.nan}
    out |= {"r2": np.nan, "status": "failed", "reason": None}
    if len(np.unique(x)) < 2:
        return out | {"reason": f"{len(np.unique(x))} distinct x values; need at least 2"}
    fit = stats.linregress(x, y)
    dof = len(x) - 2
    se = (fit.stderr, fit.intercept_stderr) if dof > 0 else (np.nan, np.nan)
    t = _t_quantile(dof)
    for name, value, err in ((slope, fit.slope, se[0]), (intercept, fit.intercept, se[1])):
        out |= {name: float(value), f"{name}_se": float(err), f"{name}_low": float(value - t * err),
                f"{name}_high": float(value + t * err)}
    r2 = float(fit.rvalue**2) if np.ptp(y) > 0 else np.nan
    if dof <= 0:
        return out | {"r2": r2, "status": "warning", "reason": "2 points for 2 parameters: no intervals"}
    return out | {"r2": r2, "status": "ok"}


# ---------------------------------------------------------------------------------------------
# Compute-optimal model size
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ComputeOptimalFit:
    """Compute-optimal model size per FLOPs budget, and the power law through it.

    ``winners``: one row per (dataset, budget) with at least one point within budget —
    ``dataset, budget, log10_budget, model, model_params, log10_params, strategy, method, n,
    accuracy, flops_per_problem`` (the winning point).
    ``fits``: one row per dataset — ``points, model_sizes`` (distinct optimal sizes), and
    log10 C = α·log10 N + β as ``alpha, alpha_se, alpha_low, alpha_high, beta, …, r2, status,
    reason``. Wu et al. (2024) report α = 1.19, β = 2.03 on Pythia (``PAPER_ALPHA``, ``PAPER_BETA``).
    """

    winners: pd.DataFrame
    fits: pd.DataFrame


WINNER_COLUMNS = [
    "dataset", "budget", "log10_budget", "model", "model_params", "log10_params",
    "strategy", "method", "n", "accuracy", "flops_per_problem",
]


def compute_budget_winners(
    df: pd.DataFrame,
    *,
    budgets: Sequence[float] | np.ndarray | None = None,
    num_budgets: int = 32,
    exclude_methods: Sequence[str] = ("pass_at_n",),
) -> pd.DataFrame:
    """For each dataset and FLOPs budget, the model with the highest accuracy at flops ≤ budget.

    A model's accuracy at a budget is the best over all its (strategy, method, n) points that fit
    in it. Ties go to the cheaper point, then to the smaller model. ``budgets`` (FLOPs per problem)
    default to ``num_budgets`` log-spaced values spanning each dataset's observed FLOPs.
    pass@n is excluded by default: it needs an oracle verifier, so no deployed system attains it.
    Budgets below every model's cheapest point have no row.
    """
    data = df[~df["method"].isin(list(exclude_methods))]
    data = data[(data["flops_per_problem"] > 0) & data["accuracy"].notna() & (data["model_params"] > 0)]
    tables = []
    for dataset, part in data.groupby("dataset", sort=True):
        grid = _budget_grid(part["flops_per_problem"], budgets, num_budgets)  # (budget,)
        candidates = [_model_best_within(model_rows, grid) for _, model_rows in part.groupby("model")]
        table = pd.concat(candidates, ignore_index=True).dropna(subset=["accuracy"])
        table = table.sort_values(
            ["budget", "accuracy", "flops_per_problem", "model_params"], ascending=[True, False, True, True]
        )
        winners = table.drop_duplicates("budget", keep="first").assign(dataset=dataset)
        tables.append(winners)
    if not tables:
        return pd.DataFrame(columns=WINNER_COLUMNS)
    out = pd.concat(tables, ignore_index=True)
    out["log10_budget"] = np.log10(out["budget"])
    out["log10_params"] = np.log10(out["model_params"].astype(float))
    return out[WINNER_COLUMNS].reset_index(drop=True)


def _budget_grid(flops: pd.Series, budgets: Sequence[float] | np.ndarray | None, num: int) -> np.ndarray:
    if budgets is not None:
        return np.sort(np.asarray(budgets, dtype=float))
    low, high = float(flops.min()), float(flops.max())
    return np.geomspace(low, high, num) if high > low else np.array([low])


def _model_best_within(rows: pd.DataFrame, grid: np.ndarray) -> pd.DataFrame:
    """For one model: at each budget, its most accurate point with flops ≤ budget (NaN if none)."""
    # Sort by flops, and at equal flops put the most accurate first, so the running argmax
    # keeps the cheapest of equally accurate points.
    rows = rows.sort_values(["flops_per_problem", "accuracy"], ascending=[True, False]).reset_index(drop=True)
    acc = rows["accuracy"].to_numpy(dtype=float)  # (point,) sorted by flops
    previous_best = np.concatenate([[-np.inf], np.maximum.accumulate(acc)[:-1]])
    # A point is a new record when it beats everything cheaper; the latest record at or below a
    # budget is the cheapest of the most accurate points within it.
    best_index = pd.Series(np.arange(len(acc))).where(acc > previous_best).ffill().astype(int).to_numpy()
    last = np.searchsorted(rows["flops_per_problem"].to_numpy(dtype=float), grid, side="right") - 1
    picked = rows.iloc[best_index[np.clip(last, 0, None)]].reset_index(drop=True)
    picked = picked[["model", "model_params", "strategy", "method", "n", "accuracy", "flops_per_problem"]]
    picked.loc[last < 0, "accuracy"] = np.nan
    return picked.assign(budget=grid)


def fit_power_law(log10_params: np.ndarray, log10_budget: np.ndarray) -> dict[str, object]:
    """log10 C = α·log10 N + β by scipy.stats.linregress, with 95 % t intervals.

    Returns ``points, model_sizes, alpha, alpha_se, alpha_low, alpha_high, beta, …, r2, status,
    reason``. Needs ≥ 2 distinct N. Budgets on a grid are not independent observations, so the
    intervals describe the fit through the grid, not sampling noise in the sweep.
    """
    x = np.asarray(log10_params, dtype=float)
    y = np.asarray(log10_budget, dtype=float)
    sizes = len(np.unique(x))
    out: dict[str, object] = {"points": len(x), "model_sizes": sizes}
    line = _line(x, y, names=("alpha", "beta"))
    if sizes < 2:
        line["reason"] = f"{sizes} distinct compute-optimal model size(s); need at least 2"
    return out | line


def fit_compute_optimal(
    df: pd.DataFrame,
    *,
    budgets: Sequence[float] | np.ndarray | None = None,
    num_budgets: int = 32,
    exclude_methods: Sequence[str] = ("pass_at_n",),
) -> ComputeOptimalFit:
    """Compute-optimal model size vs FLOPs budget, per dataset, and α, β of log10 C = α·log10 N + β.

    See ``compute_budget_winners`` for the selection and ``fit_power_law`` for the regression.
    Wu et al. (2024) fit α = 1.19, β = 2.03 on Pythia models (MATH). A dataset whose budgets are
    all won by one model size gets a "failed" fit row saying so.
    """
    winners = compute_budget_winners(
        df, budgets=budgets, num_budgets=num_budgets, exclude_methods=exclude_methods
    )
    rows = []
    for dataset in sorted(df["dataset"].dropna().unique()):
        part = winners[winners["dataset"] == dataset]
        available = df.loc[df["dataset"] == dataset, "model_params"].nunique()
        row = {"dataset": dataset} | fit_power_law(part["log10_params"], part["log10_budget"])
        if available < 2:
            row["reason"] = f"{available} model size(s) in the data; need at least 2"
        rows.append(row)
    columns = ["dataset", "points", "model_sizes"]
    for name in ("alpha", "beta"):
        columns += [name, f"{name}_se", f"{name}_low", f"{name}_high"]
    columns += ["r2", "status", "reason"]
    return ComputeOptimalFit(winners=winners, fits=pd.DataFrame(rows, columns=columns))


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _groups(df: pd.DataFrame, keys: Sequence[str]):
    """(key tuple, rows) per group, NaN keys kept, in sorted order."""
    if df.empty:
        return iter(())
    return ((key if isinstance(key, tuple) else (key,), rows)
            for key, rows in df.groupby(list(keys), sort=True, dropna=False))


def _t_quantile(dof: int) -> float:
    return float(stats.t.ppf(0.5 + CONFIDENCE / 2, dof)) if dof > 0 else np.nan


def _r2(y: np.ndarray, residuals: np.ndarray) -> float:
    total = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum(residuals**2)) / total if total > 0 else np.nan


def _first(rows: pd.DataFrame, column: str) -> object:
    return rows[column].iloc[0] if column in rows and len(rows) else np.nan


def _min(x: np.ndarray) -> float:
    return float(x.min()) if len(x) else np.nan


def _max(x: np.ndarray) -> float:
    return float(x.max()) if len(x) else np.nan
