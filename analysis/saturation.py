"""The saturation fit acc(n) = a − b·exp(−c·n) per (model, dataset, strategy, method).

Wu et al. (2024), Theorem 1: majority voting's accuracy converges to a limit at an exponential
rate in n, so ``a`` estimates that limit. The fit is least squares by variable projection
(``fit_saturation_columns``), vectorised over columns so the accuracies and every bootstrap
replicate are fitted in one pass; intervals and failures follow ``analysis.fits``.

Left out: the other fits (``analysis.log_flops``, ``analysis.compute_optimal``) and the
dashed curves drawn from these rows (``analysis.plots``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.bootstrap import CONFIDENCE
from analysis.fits import (
    NO_REPLICATES,
    failed_columns,
    first_of,
    group_rows,
    interval_columns,
    max_or_nan,
    min_or_nan,
    r_squared,
    replicates_of,
)

SATURATION_KEYS = ("model", "dataset", "strategy", "method")

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
    for key, group in group_rows(df, SATURATION_KEYS):
        group = group.dropna(subset=["n", "accuracy"]).sort_values("n")
        n = group["n"].to_numpy(dtype=float)  # (points,)
        acc = group["accuracy"].to_numpy(dtype=float)  # (points,)
        row = dict(zip(SATURATION_KEYS, key))
        row["model_params"] = first_of(group, "model_params")
        row |= {"points": len(n), "n_min": min_or_nan(n), "n_max": max_or_nan(n)}
        replicates = replicates_of(group)  # (point, replicate) or None
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
        reason = f"{len(np.unique(n))} distinct n values; need at least {min_points}"
        return failed_columns(("a", "b", "c"), reason) | {"rmse": np.nan}
    if len(np.unique(n)) < len(n):
        return failed_columns(("a", "b", "c"), "duplicate n values in one group") | {"rmse": np.nan}

    (a,), (b,), (c,), _ = fit_saturation_columns(n, acc[:, None])
    notes = []
    if np.ptp(acc) == 0:
        # Nothing to saturate: the limit is the value itself and the rate is unidentifiable.
        a, b, c = float(acc[0]), 0.0, np.nan
        notes.append("flat curve: b = 0 and the rate c is unidentifiable")
    residuals = acc - saturation_curve(n, a, b, 0.0 if np.isnan(c) else c)
    out = interval_columns(("a", "b", "c"), (a, b, c), _saturation_replicates(n, replicates), confidence)
    out |= {"r2": r_squared(acc, residuals) if np.ptp(acc) > 0 else np.nan,
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
