"""The accuracy–compute Pareto frontier of the accuracy table.

A point (flops, accuracy) is dominated when another point has flops ≤ and accuracy ≥ with at
least one of the two strict. The frontier is every point that is not dominated, found in
O(n log n) by sorting on FLOPs and taking a running maximum of accuracy. Identical points do
not dominate each other, so duplicates on the frontier are all kept.

Left out: which methods count (the caller filters, e.g. drops pass@n, an oracle) and drawing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def compute_frontier(
    df: pd.DataFrame,
    *,
    by: str | Sequence[str] | None = None,
    x: str = "flops_per_problem",
    y: str = "accuracy",
) -> pd.DataFrame:
    """The non-dominated rows of ``df`` (lower ``x`` and higher ``y`` are better).

    ``by=None`` gives one frontier over all rows; ``by="strategy"`` (or a list of columns) one
    per group. Returns the frontier rows with all their columns, sorted by ``by`` then ``x``,
    with the original index. Rows with NaN ``x`` or ``y`` are never on a frontier.
    """
    data = df.dropna(subset=[x, y])
    if by is None:
        mask = _non_dominated(data[x].to_numpy(dtype=float), data[y].to_numpy(dtype=float))
        return data[mask].sort_values([x, y], ascending=[True, False], kind="stable")
    keys = [by] if isinstance(by, str) else list(by)
    mask = np.zeros(len(data), dtype=bool)
    for positions in data.groupby(keys, sort=False, dropna=False).indices.values():
        mask[positions] = _non_dominated(
            data[x].to_numpy(dtype=float)[positions], data[y].to_numpy(dtype=float)[positions]
        )
    return data[mask].sort_values([*keys, x, y], ascending=[True] * len(keys) + [True, False], kind="stable")


def _non_dominated(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Boolean mask of points no other point dominates (minimise x, maximise y)."""
    if len(x) == 0:
        return np.zeros(0, dtype=bool)
    # One slot per distinct x, in increasing order: the best y at that x, then the best y at any
    # strictly smaller x. A point survives iff it is the best at its own x and strictly beats
    # everything cheaper (an equal y at a smaller x dominates it).
    unique_x, slot = np.unique(x, return_inverse=True)  # slot: (point,) -> index into unique_x
    best_at = np.full(len(unique_x), -np.inf)
    np.maximum.at(best_at, slot, y)
    best_before = np.concatenate([[-np.inf], np.maximum.accumulate(best_at)[:-1]])
    return (y == best_at[slot]) & (y > best_before[slot])
