"""Curve fits over the accuracy table (one row per model, dataset, strategy, method, n): what
every fit shares, the way its intervals are made and how it fails.

Three fits, one module each, each returning DataFrames (or a dataclass of them) with one row per
fitted group:

- ``analysis.saturation.fit_saturation``: acc(n) = a − b·exp(−c·n). Wu et al. (2024), Theorem 1:
  majority voting's accuracy converges to a limit at an exponential rate in n, so ``a``
  estimates that limit.
- ``analysis.log_flops.fit_log_flops``: acc = slope·log10(FLOPs) + intercept, the straight part
  of the paper's accuracy-vs-compute curves (before they saturate).
- ``analysis.compute_optimal.fit_compute_optimal``: for each FLOPs budget, the model whose best
  point within the budget is most accurate; then log10 C = α·log10 N + β over (budget C,
  optimal size N).

Intervals: every fit is refit on each bootstrap replicate of the table (the column
``accuracy_replicates`` that ``analysis.estimators.compute_accuracy`` returns: replicate b of
every row drew the same problems, ``analysis/bootstrap.py``), and ``<param>_low``/``_high`` are
the 95 % percentile interval of the refits, ``<param>_se`` their standard deviation and
``bootstrap`` how many refits succeeded (``interval_columns``). They cover the parameter the
same fit would give on the population of problems and samples, so they reflect which problems
were drawn, not how many points a curve or a budget grid has: the points of one curve share
their problems and are not independent, so residual-based (t) intervals would be too narrow,
and narrower still on a denser grid. FLOPs per problem are held at their point estimates (the
x positions of the design). A table without replicates gets NaN intervals and says so in
``reason``.

A fit that cannot be made (too few points, degenerate data) is a row with NaN parameters,
``status == "failed"`` and a ``reason`` (``failed_columns``); no fit raises. Fits are unweighted.

Left out: the fits themselves (the three modules above), the plots (``analysis.plots``) and the
estimators that make the input table (``analysis.estimators``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd

from analysis.bootstrap import percentile_interval, replicate_std

REPLICATES = "accuracy_replicates"  # the accuracy table's column of bootstrap replicates
NO_REPLICATES = f"no bootstrap replicates ({REPLICATES}): no intervals"


def group_rows(df: pd.DataFrame, keys: Sequence[str]) -> Iterator[tuple[tuple, pd.DataFrame]]:
    """(key tuple, rows) per group, NaN keys kept, in sorted order."""
    if df.empty:
        return iter(())
    return ((key if isinstance(key, tuple) else (key,), rows)
            for key, rows in df.groupby(list(keys), sort=True, dropna=False))


def replicates_of(rows: pd.DataFrame) -> np.ndarray | None:
    """(row, replicate) accuracies of ``rows`` from the table's replicate column; None when the
    table has none (or its rows disagree on how many)."""
    if REPLICATES not in rows.columns or rows.empty:
        return None
    arrays = [np.asarray(r, dtype=float) if r is not None else np.empty(0) for r in rows[REPLICATES]]
    lengths = {len(r) for r in arrays}
    if len(lengths) != 1 or 0 in lengths:
        return None
    return np.stack(arrays)


def interval_columns(
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


def failed_columns(names: Sequence[str], reason: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for name in names:
        out |= {name: np.nan, f"{name}_se": np.nan, f"{name}_low": np.nan, f"{name}_high": np.nan}
    return out | {"bootstrap": 0, "r2": np.nan, "status": "failed", "reason": reason}


def least_squares(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slope and intercept of each row of ``y`` (..., point) on ``x`` (..., point); NaN where x is
    constant or y has NaN."""
    x, y = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    dx = x - x.mean(-1, keepdims=True)
    sxx = (dx * dx).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(sxx > 0, (dx * y).sum(-1) / sxx, np.nan)
    return slope, y.mean(-1) - slope * x.mean(-1)


def r_squared(y: np.ndarray, residuals: np.ndarray) -> float:
    total = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum(residuals**2)) / total if total > 0 else np.nan


def first_of(rows: pd.DataFrame, column: str) -> object:
    return rows[column].iloc[0] if column in rows and len(rows) else np.nan


def min_or_nan(x: np.ndarray) -> float:
    return float(x.min()) if len(x) else np.nan


def max_or_nan(x: np.ndarray) -> float:
    return float(x.max()) if len(x) else np.nan
