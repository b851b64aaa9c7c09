"""Curve fits over the accuracy table (one row per model, dataset, strategy, method, n).

Three fits, each returning DataFrames (or a dataclass of them) with one row per fitted group:

- ``fit_saturation``: acc(n) = a − b·exp(−c·n). Wu et al. (2024), Theorem 1: majority voting's
  accuracy converges to a limit at an exponential rate in n, so ``a`` estimates that limit.
- ``fit_log_flops``: acc = slope·log10(FLOPs) + intercept, the straight part of the paper's
  accuracy-vs-compute curves (before they saturate).
- ``fit_compute_optimal``: for each FLOPs budget, the model whose best point within the budget
  is most accurate; then log10 C = α·log10 N + β over (budget C, optimal size N).

Intervals: every fit is refit on each bootstrap replicate of the table (the column
``accuracy_replicates`` that ``analysis.estimators.compute_accuracy`` returns: replicate b of
every row drew the same problems, ``analysis/bootstrap.py``), and ``<param>_low``/``_high`` are
the 95 % percentile interval of the refits, ``<param>_se`` their standard deviation and
``bootstrap`` how many refits succeeded. They cover the parameter the same fit would give on
the population of problems and samples, so they reflect which problems were drawn, not how
many points a curve or a budget grid has: the points of one curve share their problems and are
not independent, so residual-based (t) intervals would be too narrow, and narrower still on a
denser grid. FLOPs per problem are held at their point estimates (the x positions of the
design). A table without replicates gets NaN intervals and says so in ``reason``.

A fit that cannot be made (too few points, degenerate data) is a row with NaN parameters,
``status == "failed"`` and a ``reason``; no fit raises. Fits are unweighted.

Left out: the plots (``analysis.plots``) and the estimators that make the input table
(``analysis.estimators``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from analysis.bootstrap import CONFIDENCE, percentile_interval, replicate_std

#: Wu et al. (2024), Pythia on MATH: log10 C = 1.19·log10 N + 2.03 (C: FLOPs budget, N: params).
PAPER_ALPHA = 1.19
PAPER_BETA = 2.03

SATURATION_KEYS = ("model", "dataset", "strategy", "method")
LOG_FLOPS_KEYS = ("model", "dataset", "strategy", "method")
REPLICATES = "accuracy_replicates"  # the accuracy table's column of bootstrap replicates
NO_REPLICATES = f"no bootstrap replicates ({REPLICATES}): no intervals"


# ---------------------------------------------------------------------------------------------
# Saturation: acc(n) = a − b·exp(−c·n)
# ---------------------------------------------------------------------------------------------

# The rate c is searched on a log grid from C_LOW / n_max to C_HIGH / n_min, then refined by
# golden-section search between the best grid point's neighbours.
C_LOW, C_HIGH, C_GRID, GOLDEN_STEPS = 1e-3, 30.0, 96, 60


def saturation_curve(n: np.ndarray | float, a: float, b: float, c: float) -> np.ndarray:
    """a − b·exp(−c·n): the model ``fit_saturation`` fits."""
    return a - b * np.exp(-c * np.asarray(n, dtype=float))


def fit_saturation(df: pd.DataFrame, *, min_points: int = 3, confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Fit acc(n) = a − b·exp(−c·n) per (model, dataset, strategy, method), on the accuracies and on
    each bootstrap replicate.

    Bounds 0 ≤ a ≤ 1, b ≥ 0, c > 0. Returns one row per group with ``model_params``, ``points``,
    ``n_min``, ``n_max``, for each of a, b, c the estimate, ``_se``, ``_low``, ``_high`` (the
    bootstrap's, see the module docstring); ``bootstrap``, ``r2``, ``rmse``, ``status`` ("ok" |
    "warning" | "failed") and ``reason`` (missing when "ok"). Groups with fewer than
    ``min_points`` distinct n are "failed" rows. With exactly 3 points the fit interpolates
    ("warning"). A flat curve has no rate: b = 0 and c = NaN ("warning"); so has a replicate.
    """
    rows = []
    for key, group in _groups(df, SATURATION_KEYS):
        group = group.dropna(subset=["n", "accuracy"]).sort_values("n")
        n = group["n"].to_numpy(dtype=float)  # (points,)
        acc = group["accuracy"].to_numpy(dtype=float)  # (points,)
        row = dict(zip(SATURATION_KEYS, key))
        row["model_params"] = _first(group, "model_params")
        row |= {"points": len(n), "n_min": _min(n), "n_max": _max(n)}
        replicates = _replicates_of(group)  # (point, replicate) or None
        row |= _fit_one_saturation(n, acc, replicates, min_points=min_points, confidence=confidence)
        rows.append(row)
    columns = [*SATURATION_KEYS, "model_params", "points", "n_min", "n_max"]
    for name in ("a", "b", "c"):
        columns += [name, f"{name}_se", f"{name}_low", f"{name}_high"]
    columns += ["bootstrap", "r2", "rmse", "status", "reason"]
    return pd.DataFrame(rows, columns=columns)


def _fit_one_saturation(
    n: np.ndarray, acc: np.ndarray, replicates: np.ndarray | None, *, min_points: int, confidence: float
) -> dict[str, object]:
    if len(np.unique(n)) < min_points:
        return _failed(("a", "b", "c"), f"{len(np.unique(n))} distinct n values; need at least {min_points}")
    if len(np.unique(n)) < len(n):
        return _failed(("a", "b", "c"), "duplicate n values in one group")

    (a,), (b,), (c,), _ = fit_saturation_columns(n, acc[:, None])
    notes = []
    if np.ptp(acc) == 0:
        # Nothing to saturate: the limit is the value itself and the rate is unidentifiable.
        a, b, c = float(acc[0]), 0.0, np.nan
        notes.append("flat curve: b = 0 and the rate c is unidentifiable")
    residuals = acc - saturation_curve(n, a, b, 0.0 if np.isnan(c) else c)
    out = _intervals(("a", "b", "c"), (a, b, c), _saturation_replicates(n, replicates), confidence)
    out |= {"r2": _r2(acc, residuals) if np.ptp(acc) > 0 else np.nan,
            "rmse": float(np.sqrt(np.mean(residuals**2)))}
    if len(n) == 3 and not notes:
        notes.append("3 points for 3 parameters: the fit interpolates")
    if b <= 1e-9 and not notes:
        notes.append("b at its lower bound 0 (curve not increasing): c is unidentifiable")
    if a >= 1 - 1e-9:
        notes.append("a at its upper bound 1: its interval is unreliable")
    if replicates is None:
        notes.append(NO_REPLICATES)
    return out | {"status": "warning" if notes else "ok", "reason": "; ".join(notes) or None}


def _saturation_replicates(n: np.ndarray, replicates: np.ndarray | None) -> np.ndarray | None:
    """(parameter, replicate) -> a, b, c refit on each replicate; c NaN where b = 0."""
    if replicates is None:
        return None
    a, b, c, _ = fit_saturation_columns(n, replicates)
    flat = np.ptp(replicates, axis=0) == 0
    a = np.where(flat, replicates[0], a)
    b = np.where(flat, 0.0, b)
    c = np.where(flat | (b <= 1e-9), np.nan, c)
    return np.stack([a, b, c])


def fit_saturation_columns(
    n: np.ndarray, acc: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares a, b, c (and the residual sum of squares) of a − b·exp(−c·n) for every column
    of ``acc`` (point, column) at once, with 0 ≤ a ≤ 1, b ≥ 0, c > 0; NaN for a column with NaN.

    Variable projection: for a fixed rate c the curve is linear in (a, b), so each (c, column)
    has a closed-form box-constrained least-squares (a, b); c is scanned on a log grid wide
    enough for any scale of n (1..8 or 1..4096) and refined by golden-section search around
    each column's best grid point.
    """
    n = np.asarray(n, dtype=float)  # (point,)
    y = np.asarray(acc, dtype=float).T  # (column, point)
    finite = np.isfinite(y).all(axis=1)
    y = np.where(finite[:, None], y, 0.0)
    grid = np.log(np.geomspace(C_LOW / n.max(), C_HIGH / n.min(), C_GRID))  # (rate,) log c
    _, _, sse = _linear_ab(np.exp(grid)[:, None, None], n, y[None])  # (rate, column)
    best = np.argmin(sse, axis=0)  # (column,)
    low, high = grid[np.maximum(best - 1, 0)], grid[np.minimum(best + 1, C_GRID - 1)]
    ratio = (np.sqrt(5.0) - 1) / 2

    def cost(log_c: np.ndarray) -> np.ndarray:  # (column,) -> residual sum of squares
        return _linear_ab(np.exp(log_c)[:, None], n, y)[2]

    x1, x2 = high - ratio * (high - low), low + ratio * (high - low)
    f1, f2 = cost(x1), cost(x2)
    for _ in range(GOLDEN_STEPS):
        left = f1 <= f2  # the minimum lies in [low, x2]: drop (x2, high], else [low, x1)
        low, high = np.where(left, low, x1), np.where(left, x2, high)
        x1, x2, f1, f2 = (
            np.where(left, high - ratio * (high - low), x2),
            np.where(left, x1, low + ratio * (high - low)),
            np.where(left, np.nan, f2),
            np.where(left, f1, np.nan),
        )
        fresh = cost(np.where(left, x1, x2))
        f1, f2 = np.where(left, fresh, f1), np.where(left, f2, fresh)
    log_c = np.where(f1 <= f2, x1, x2)
    # Keep the grid point where it beats the refinement (a minimum on the grid's edge).
    log_c = np.where(sse[best, np.arange(len(best))] < np.minimum(f1, f2), grid[best], log_c)
    c = np.exp(log_c)
    a, b, residual = _linear_ab(c[:, None], n, y)
    nan = np.where(finite, 1.0, np.nan)
    return a * nan, b * nan, c * nan, residual * nan


def _linear_ab(c: np.ndarray, n: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Box-constrained least squares of y ≈ a − b·exp(−c·n), 0 ≤ a ≤ 1, b ≥ 0, for fixed c.

    ``c`` broadcasts against ``y`` (..., point) with a trailing axis of 1. The problem is a convex
    quadratic in (a, b); its minimum is the unconstrained one when feasible, else on an edge of
    the box (b = 0, a = 0 or a = 1), where the 1-D minimum is clipped. Returns a, b and the
    residual sum of squares, each of y's shape without the point axis.
    """
    x = -np.exp(-c * n)  # (..., point): y = a + b·x
    m = n.shape[-1]
    sx, sxx = x.sum(-1), (x * x).sum(-1)
    sy, syy, sxy = y.sum(-1), (y * y).sum(-1), (x * y).sum(-1)
    sx, sxx = np.broadcast_to(sx, sxy.shape), np.broadcast_to(sxx, sxy.shape)

    def sse(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return syy - 2 * a * sy - 2 * b * sxy + m * a * a + 2 * a * b * sx + b * b * sxx

    with np.errstate(invalid="ignore", divide="ignore"):
        det = m * sxx - sx * sx
        b_free = (m * sxy - sx * sy) / det
        a_free = (sy - b_free * sx) / m
        b_at = {a: np.maximum(np.where(sxx > 0, (sxy - a * sx) / sxx, 0.0), 0.0) for a in (0.0, 1.0)}
    candidates = [
        (np.clip(sy / m, 0.0, 1.0), np.zeros_like(sy)),  # b = 0
        (np.zeros_like(sy), b_at[0.0]),  # a = 0
        (np.ones_like(sy), b_at[1.0]),  # a = 1
    ]
    feasible = (det > 1e-300) & np.isfinite(b_free) & (b_free >= 0) & (a_free >= 0) & (a_free <= 1)
    candidates.append((np.where(feasible, a_free, 0.0), np.where(feasible, b_free, 0.0)))
    costs = np.stack([sse(a, b) for a, b in candidates])  # (candidate, ...)
    costs[-1] = np.where(feasible, costs[-1], np.inf)
    pick = np.argmin(costs, axis=0)
    a = np.choose(pick, [a for a, _ in candidates])
    b = np.choose(pick, [b for _, b in candidates])
    return a, b, np.maximum(np.min(costs, axis=0), 0.0)


# ---------------------------------------------------------------------------------------------
# Accuracy vs log10 FLOPs
# ---------------------------------------------------------------------------------------------


def fit_log_flops(
    df: pd.DataFrame, *, keys: Sequence[str] = LOG_FLOPS_KEYS, confidence: float = CONFIDENCE
) -> pd.DataFrame:
    """Least-squares line accuracy = slope·log10(flops_per_problem) + intercept, per group, on the
    accuracies and on each bootstrap replicate.

    Groups by (model, dataset, strategy, method) by default: sampling's and REBASE's majority
    vote are different curves, so they are not pooled (pass ``keys`` to pool). ``slope`` is
    accuracy gained per decade of FLOPs. Returns the estimates with ``_se``, ``_low``, ``_high``
    (the bootstrap's), ``bootstrap``, ``r2``, ``points``, the log10 FLOPs range, ``status`` and
    ``reason``. Needs ≥ 2 distinct FLOPs values; with exactly 2 the line interpolates
    ("warning"). The line ignores saturation; use ``fit_saturation`` where the curve has flattened.
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
        row |= _line(x, y, _replicates_of(group), names=("slope", "intercept"), confidence=confidence)
        rows.append(row)
    columns = [*keys, "model_params", "points", "log10_flops_min", "log10_flops_max"]
    for name in ("slope", "intercept"):
        columns += [name, f"{name}_se", f"{name}_low", f"{name}_high"]
    columns += ["bootstrap", "r2", "status", "reason"]
    return pd.DataFrame(rows, columns=columns)


def _line(
    x: np.ndarray, y: np.ndarray, replicates: np.ndarray | None, *, names: tuple[str, str], confidence: float
) -> dict[str, object]:
    """Least squares of y on x, with bootstrap intervals from ``replicates`` (point, replicate)."""
    if len(np.unique(x)) < 2:
        return _failed(names, f"{len(np.unique(x))} distinct x values; need at least 2")
    fit = stats.linregress(x, y)
    reps = None
    if replicates is not None:
        slope, intercept = _least_squares(x, replicates.T)
        reps = np.stack([slope, intercept])
    out = _intervals(names, (float(fit.slope), float(fit.intercept)), reps, confidence)
    out["r2"] = float(fit.rvalue**2) if np.ptp(y) > 0 else np.nan
    notes = []
    if len(x) == 2:
        notes.append("2 points for 2 parameters: the line interpolates")
    if replicates is None:
        notes.append(NO_REPLICATES)
    return out | {"status": "warning" if notes else "ok", "reason": "; ".join(notes) or None}


def _least_squares(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slope and intercept of each row of ``y`` (..., point) on ``x`` (..., point); NaN where x is
    constant or y has NaN."""
    x, y = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    dx = x - x.mean(-1, keepdims=True)
    sxx = (dx * dx).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(sxx > 0, (dx * y).sum(-1) / sxx, np.nan)
    return slope, y.mean(-1) - slope * x.mean(-1)


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
    exclude_methods: Sequence[str] = ("pass_at_n",),
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
    slope, intercept = (float(v) for v in _least_squares(x, y))
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
    exclude_methods: Sequence[str] = ("pass_at_n",),
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
    replicates = _replicates_of(points)
    accuracy = points["accuracy"].to_numpy(dtype=float)[:, None]  # (point, 1)
    columns = accuracy if replicates is None else np.hstack([accuracy, replicates])  # (point, 1 + replicate)
    grid = _budget_grid(points["flops_per_problem"], budgets, num_budgets)
    index = winning_points(points, columns, grid)  # (budget, column)
    log_params = np.log10(points["model_params"].to_numpy(dtype=float))
    size = np.where(index >= 0, log_params[index], np.nan)  # (budget, column) log10 N of the winner
    won = np.isfinite(size[:, 0])  # budgets some point fits (the same in every column)
    alpha, beta = _least_squares(np.ascontiguousarray(size[won].T), np.log10(grid[won]))  # (column,)
    reps = None if replicates is None else np.stack([alpha[1:], beta[1:]])
    out = _intervals(("alpha", "beta"), (float(alpha[0]), float(beta[0])), reps, confidence)
    if replicates is None:
        return out | {"note": NO_REPLICATES}
    lost = replicates.shape[1] - int(out["bootstrap"])
    note = f"{lost} of {replicates.shape[1]} replicates had one winning size: no line" if lost else None
    return out | {"note": note}


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _groups(df: pd.DataFrame, keys: Sequence[str]) -> Iterator[tuple[tuple, pd.DataFrame]]:
    """(key tuple, rows) per group, NaN keys kept, in sorted order."""
    if df.empty:
        return iter(())
    return ((key if isinstance(key, tuple) else (key,), rows)
            for key, rows in df.groupby(list(keys), sort=True, dropna=False))


def _replicates_of(rows: pd.DataFrame) -> np.ndarray | None:
    """(row, replicate) accuracies of ``rows`` from the table's replicate column; None when the
    table has none (or its rows disagree on how many)."""
    if REPLICATES not in rows.columns or rows.empty:
        return None
    arrays = [np.asarray(r, dtype=float) if r is not None else np.empty(0) for r in rows[REPLICATES]]
    lengths = {len(r) for r in arrays}
    if len(lengths) != 1 or 0 in lengths:
        return None
    return np.stack(arrays)


def _intervals(
    names: Sequence[str], values: Sequence[float], replicates: np.ndarray | None, confidence: float
) -> dict[str, object]:
    """Each parameter's value, and ``_se``/``_low``/``_high`` from ``replicates`` (parameter,
    replicate), NaN refits left out; ``bootstrap``: how many refits of the first parameter are
    finite (a later one may be NaN alone: a flat replicate has a limit but no rate)."""
    out: dict[str, object] = {}
    if replicates is None:
        for name, value in zip(names, values):
            out |= {name: value, f"{name}_se": np.nan, f"{name}_low": np.nan, f"{name}_high": np.nan}
        return out | {"bootstrap": 0}
    low, high = percentile_interval(replicates, confidence=confidence)
    se = replicate_std(replicates)
    for i, (name, value) in enumerate(zip(names, values)):
        out |= {name: value, f"{name}_se": float(se[i]), f"{name}_low": float(low[i]),
                f"{name}_high": float(high[i])}
    return out | {"bootstrap": int(np.isfinite(replicates[0]).sum())}


def _failed(names: Sequence[str], reason: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for name in names:
        out |= {name: np.nan, f"{name}_se": np.nan, f"{name}_low": np.nan, f"{name}_high": np.nan}
    extra = {"rmse": np.nan} if "a" in names else {}
    return out | extra | {"bootstrap": 0, "r2": np.nan, "status": "failed", "reason": reason}


def _r2(y: np.ndarray, residuals: np.ndarray) -> float:
    total = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum(residuals**2)) / total if total > 0 else np.nan


def _first(rows: pd.DataFrame, column: str) -> object:
    return rows[column].iloc[0] if column in rows and len(rows) else np.nan


def _min(x: np.ndarray) -> float:
    return float(x.min()) if len(x) else np.nan


def _max(x: np.ndarray) -> float:
    return float(x.max()) if len(x) else np.nan
