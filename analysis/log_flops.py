"""The straight-line fit accuracy = slope·log10(FLOPs) + intercept per (model, dataset, strategy,
method): the straight part of the paper's accuracy-vs-compute curves, before they saturate.

Intervals and failures follow ``analysis.fits``. Left out: saturation (``analysis.saturation``)
and compute-optimal model size (``analysis.compute_optimal``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from analysis.bootstrap import CONFIDENCE
from analysis.fits import (
    NO_REPLICATES,
    failed_columns,
    first_of,
    group_rows,
    interval_columns,
    least_squares,
    max_or_nan,
    min_or_nan,
    replicates_of,
)

LOG_FLOPS_KEYS = ("model", "dataset", "strategy", "method")


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
    for key, group in group_rows(df, keys):
        group = group[(group["flops_per_problem"] > 0) & group["accuracy"].notna()]
        x = np.log10(group["flops_per_problem"].to_numpy(dtype=float))  # (points,)
        y = group["accuracy"].to_numpy(dtype=float)  # (points,)
        row: dict[str, object] = dict(zip(keys, key))
        row["model_params"] = first_of(group, "model_params")
        row |= {"points": len(x), "log10_flops_min": min_or_nan(x), "log10_flops_max": max_or_nan(x)}
        row |= _line(x, y, replicates_of(group), names=("slope", "intercept"), confidence=confidence)
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
        return failed_columns(names, f"{len(np.unique(x))} distinct x values; need at least 2")
    fit = stats.linregress(x, y)
    reps = None
    if replicates is not None:
        slope, intercept = least_squares(x, replicates.T)
        reps = np.stack([slope, intercept])
    out = interval_columns(names, (float(fit.slope), float(fit.intercept)), reps, confidence)
    out["r2"] = float(fit.rvalue**2) if np.ptp(y) > 0 else np.nan
    notes = []
    if len(x) == 2:
        notes.append("2 points for 2 parameters: the line interpolates")
    if replicates is None:
        notes.append(NO_REPLICATES)
    return out | {"status": "warning" if notes else "ok", "reason": "; ".join(notes) or None}
