"""Voting estimators on random n-subsets, vectorised over a block of problems with numpy.

A block is C problems with N samples each, stored densely: ``keys`` (problem, sample) -> answer
key number. One resample gives every sample a uniformly random draw position (an independent
permutation per problem, ``Generator.permuted``); the subset of size n is the first n positions,
so it is a uniform n-subset without replacement and subsets of growing n are nested. Positions
are never materialised: each sample gets the *level* of its position, the index of the smallest n
in the grid whose subset holds it, and everything below is a function of (sample -> level):

- votes per (problem, level, key) are one ``bincount``; a cumulative sum over levels gives the
  votes of each subset. Majority and weighted vote take the argmax over keys.
- best-of-n: samples sorted once by score; the best sample in the subset at level j is the first
  one in that order whose level is <= j, found with a running minimum.

Ties: majority and weighted vote go to the tied answer key with the lowest sample index among
its voters in the subset (the answer "seen first", as in ``summary.sql``); best-of-n to the
sample with the lowest index. Both depend on the subset only, so the mean over resamples
estimates the exact mean over all C(N, n) subsets; and since sample indices are exchangeable
draws, neither favours any answer (a fixed order, say by key, would favour the answers that sort
first). What it leaves out: reading data and closed-form estimators (``estimators.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SCORES = ("last", "min", "prod", "mean")
METHODS = (
    "majority_vote",
    *(f"weighted_vote_{s}" for s in SCORES),
    *(f"best_of_n_{s}" for s in SCORES),
)


@dataclass(frozen=True)
class Block:
    """C problems with N samples each."""

    keys: np.ndarray  # (problem, sample) -> answer key number, -1: no answer
    key_correct: np.ndarray  # (problem, key) -> that answer is right
    correct: np.ndarray  # (problem, sample) -> the sample is right
    scores: dict[str, np.ndarray]  # score name -> (problem, sample) -> score, NaN: none


def position_levels(n_values: list[int], samples: int) -> np.ndarray:
    """(position,) -> index of the smallest n in ``n_values`` (ascending) that is > position;
    ``len(n_values)`` for positions past the largest n."""
    return np.searchsorted(np.asarray(n_values), np.arange(samples), side="right").astype(np.int8)


def resample_hits(
    block: Block, *, n_values: list[int], resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """(problem, n, method) -> how many of ``resamples`` random n-subsets each method of
    ``METHODS`` got right. Methods whose score is all NaN get zeros without work."""
    c, samples = block.keys.shape
    levels = len(n_values)
    assert levels < 127 and max(n_values) <= samples
    n_keys = block.key_correct.shape[1]
    rows = np.arange(c)[:, None]  # (problem, 1)
    # Flat cell (problem, level, key) of a sample, key n_keys collecting the unanswered.
    key = np.where(block.keys < 0, n_keys, block.keys).astype(np.int64)  # (problem, sample)
    cells = c * (levels + 1) * (n_keys + 1)
    row_cell = np.arange(c, dtype=np.int64)[:, None] * (levels + 1)  # (problem, 1)
    base = np.broadcast_to(position_levels(n_values, samples), (c, samples))

    scored = {s: v for s, v in block.scores.items() if not np.isnan(v).all()}
    weights = {s: np.nan_to_num(v, nan=0.0).ravel() for s, v in scored.items()}
    # Keys with a vote but no score cannot win a weighted vote; count scored votes only if needed.
    answered = block.keys >= 0  # (problem, sample) -> votes in majority vote
    voters = {s: answered & ~np.isnan(v) for s, v in scored.items()}  # ... in weighted vote
    partial = {s for s, v in scored.items() if np.isnan(v[answered]).any()}
    # Best-of-n: samples by score, highest first, ties to the lower index (stable), NaN last.
    order = {s: np.argsort(-v, axis=1, kind="stable") for s, v in scored.items()}  # (problem, rank) -> sample
    best_correct = {
        s: np.take_along_axis(block.correct & ~np.isnan(v), order[s], axis=1) for s, v in scored.items()
    }  # (problem, rank) -> right and scored

    hits = np.zeros((c, levels, len(METHODS)), dtype=np.int32)
    for _ in range(resamples):
        level = rng.permuted(base, axis=1)  # (problem, sample) -> level of its draw position
        cell = ((row_cell + level) * (n_keys + 1) + key).ravel()

        def tally(w: np.ndarray | None) -> np.ndarray:  # (problem, level, key), subsets cumulative
            counts = np.bincount(cell, weights=w, minlength=cells).reshape(c, levels + 1, n_keys + 1)
            return counts[:, :levels, :n_keys].cumsum(axis=1)

        votes = tally(None)
        hits[:, :, 0] += pick(votes, votes > 0, answered, level, block)
        for s in scored:
            present = votes > 0 if s not in partial else tally(voters[s].ravel().astype(np.float64)) > 0
            i = METHODS.index(f"weighted_vote_{s}")
            hits[:, :, i] += pick(tally(weights[s]), present, voters[s], level, block)
            # First sample in score order at each level: running min of the levels in that order.
            running = np.minimum.accumulate(np.take_along_axis(level, order[s], axis=1), axis=1)
            seen = np.bincount((row_cell + running).ravel(), minlength=c * (levels + 1))
            first = samples - seen.reshape(c, levels + 1).cumsum(axis=1)[:, :levels]  # (problem, level)
            found = first < samples
            i = METHODS.index(f"best_of_n_{s}")
            hits[:, :, i] += found & best_correct[s][rows, np.minimum(first, samples - 1)]
    return hits


def pick(
    tally: np.ndarray, present: np.ndarray, voter: np.ndarray, level: np.ndarray, block: Block
) -> np.ndarray:
    """(problem, level) -> the present key with the largest tally is right; no present key: wrong.

    Ties go to the tied key with the lowest sample index among its voters in the subset: found by
    scanning, for each tied (problem, level) only, its samples in index order."""
    masked = np.where(present, tally, -np.inf)  # (problem, level, key)
    tied = present & (masked == masked.max(axis=2, keepdims=True))
    winner = masked.argmax(axis=2)  # (problem, level)
    tp, tl = np.nonzero(tied.sum(axis=2) > 1)  # (tie,) the ties to break
    if len(tp):
        keys = block.keys[tp]  # (tie, sample)
        ties = np.arange(len(tp))[:, None]
        candidate = (level[tp] <= tl[:, None]) & voter[tp] & tied[tp, tl][ties, np.maximum(keys, 0)]
        winner[tp, tl] = keys[ties[:, 0], candidate.argmax(axis=1)]
    return present.any(axis=2) & block.key_correct[np.arange(len(winner))[:, None], winner]
