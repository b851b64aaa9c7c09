"""The bootstrap over problems behind every interval of the analysis.

An accuracy figure is uncertain for three reasons: which problems the dataset drew, which
samples the model drew for each problem, and which random n-subsets the voting estimators
averaged (``subsets.py``). A problem's estimate (the mean over its subsets, or pass@n's closed
form) carries the last two, and problems are independent draws. So Efron's nonparametric
bootstrap with problems as the unit covers all three: a replicate redraws the problems with
replacement, and its accuracy is the weighted mean of the per-problem estimates, each weighted
by how often the replicate drew that problem. Resampling samples within problems as well would
count the within-problem variance twice (Davison & Hinkley, 1997, §3.8: with many first-stage
units, resample those only).

One draw of weights serves every (model, strategy, method, n) of a dataset, so replicate curves
are paired: two models' replicates saw the same problems, and fits refit on the replicates
(``analysis.fits``) compare them as the data do. Intervals are percentile intervals (Efron &
Tibshirani, 1993, ch. 13): the (1 − confidence)/2 and (1 + confidence)/2 quantiles of the
replicates. A replicate of a mean of values in [0, 1] lies in [0, 1], so accuracy intervals
do too, and their width depends only on the data, never on how densely a grid was drawn.
Percentile rather than BCa: the fits reuse the replicates, and BCa would need a jackknife
refit per problem.

Left out: where the per-problem estimates come from (``analysis.estimators``) and the refits
(``analysis.fits``).
"""

from __future__ import annotations

import warnings

import numpy as np

REPLICATES = 1000  # bootstrap replicates: enough for stable 2.5% / 97.5% quantiles
CONFIDENCE = 0.95
# Elements of one dense (cell, problem) or (replicate, problem) block: bounds the working set.
BLOCK_ELEMENTS = 1 << 22
SMALL_PRODUCT = 1 << 26  # multiply-adds below which a product skips BLAS


def problem_weights(problems: int, *, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """(replicate, problem) -> how often a draw of ``problems`` problems with replacement picks it."""
    draws = rng.integers(0, problems, size=(replicates, problems))  # (replicate, draw) -> problem
    cells = draws + np.arange(replicates)[:, None] * problems
    counts = np.bincount(cells.ravel(), minlength=replicates * problems)
    return counts.reshape(replicates, problems).astype(np.float64)


def replicate_means(
    cell: np.ndarray,
    problem: np.ndarray,
    value: np.ndarray,
    *,
    cells: int,
    problems: int,
    replicates: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """(cell, replicate) -> the replicate's weighted mean of each cell's per-problem values.

    ``cell``, ``problem``, ``value``: one entry per (cell, problem) estimate, at most one per
    pair; ``problem`` numbers the problems 0..problems-1, shared by every cell (one dataset).
    Every cell sees the same weights (``problem_weights``, drawn from ``rng`` in blocks, so the
    same rng state gives the same replicates). A cell without a problem averages over the
    problems it has; NaN where a replicate drew none of them.
    """
    cell = np.asarray(cell, dtype=np.int64)
    order = np.argsort(cell, kind="stable")
    cell, problem, value = cell[order], np.asarray(problem)[order], np.asarray(value, dtype=np.float64)[order]
    bounds = np.searchsorted(cell, np.arange(cells + 1))  # cell c's entries: bounds[c]:bounds[c + 1]
    out = np.empty((cells, replicates))
    per_block = max(BLOCK_ELEMENTS // max(problems, 1), 1)  # cells, or replicates, per block
    start = rng.bit_generator.state
    for c0 in range(0, cells, per_block):
        c1 = min(c0 + per_block, cells)
        rows = slice(bounds[c0], bounds[c1])
        values = np.zeros((c1 - c0, problems))  # (cell, problem)
        present = np.zeros((c1 - c0, problems))  # (cell, problem) -> 1: the cell has it
        values[cell[rows] - c0, problem[rows]] = value[rows]
        present[cell[rows] - c0, problem[rows]] = 1.0
        partial = np.nonzero(present.min(axis=1) == 0)[0]  # cells lacking some problem
        rng.bit_generator.state = start  # every block of cells sees the same weights
        for r0 in range(0, replicates, per_block):
            weights = problem_weights(problems, replicates=min(per_block, replicates - r0), rng=rng)
            total = np.broadcast_to(weights.sum(axis=1), (c1 - c0, len(weights)))  # complete cells
            drawn = total.copy()
            drawn[partial] = _product(present[partial], weights)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[c0:c1, r0 : r0 + len(weights)] = _product(values, weights) / drawn
    return out


def _product(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """left @ right.T. BLAS for large products; small ones by einsum, since BLAS threads take
    longer to start and synchronise than such a product takes (tens of ms on busy cores)."""
    if left.shape[0] * left.shape[1] * right.shape[0] >= SMALL_PRODUCT:
        return left @ right.T
    return np.einsum("cp,rp->cr", left, right, optimize=False)


def percentile_interval(
    replicates: np.ndarray, *, confidence: float = CONFIDENCE
) -> tuple[np.ndarray, np.ndarray]:
    """The percentile interval of each row of ``replicates`` (..., replicate), NaN replicates
    left out; NaN where a row has none."""
    tail = (1.0 - confidence) / 2.0
    replicates = np.asarray(replicates, dtype=np.float64)
    if replicates.shape[-1] == 0:
        nan = np.full(replicates.shape[:-1], np.nan)
        return nan, nan.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
        low, high = np.nanquantile(replicates, [tail, 1.0 - tail], axis=-1)
    return low, high


def replicate_std(replicates: np.ndarray) -> np.ndarray:
    """The bootstrap standard error of each row of ``replicates`` (..., replicate), NaN left out."""
    replicates = np.asarray(replicates, dtype=np.float64)
    finite = np.isfinite(replicates).sum(axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.where(finite >= 2, np.nanstd(replicates, axis=-1, ddof=1), np.nan)
