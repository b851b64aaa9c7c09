"""Adaptive stopping rules for self-consistency: when to stop drawing samples for a problem.

Samples are drawn one after another; after each *round* of ``window`` draws (and after the
last draw allowed, ``n_max``) a rule looks at the answers drawn so far and says stop or go on.
The answer is then the vote of the drawn samples (``vote``). Three rules, each with a threshold:

- ``esc``: Early-Stopping Self-Consistency (Li et al., 2024). Stop when the last ``threshold``
  answers agree (all answered, one answer). With ``window == threshold``, the paper's form:
  samples come in windows of w and the rule stops after a window whose w answers all agree.
- ``beta``: Adaptive-Consistency (Aggarwal et al., 2023), the Beta criterion on the two leading
  answers with v1 and v2 votes: stop when P(p1 > p2) = P(p > 1/2 | p ~ Beta(v1 + 1, v2 + 1))
  = I_{1/2}(v2 + 1, v1 + 1) >= threshold (the regularised incomplete beta function). With no
  answer yet it is 1/2; one answer alone gives 3/4, three agreeing 15/16.
- ``weighted``: score-weighted (CISC-style): each answered sample votes with its reward score
  (a probability in [0, 1]; NaN: no vote). Stop when the leading answer's share of the summed
  scores >= threshold, once at least two samples have voted.

Each rule stops at the first checked prefix whose criterion reaches the threshold (ESC: its
run length), so a higher threshold never stops earlier, and a threshold no criterion reaches
(ESC: above ``n_max``; the others: above 1) draws all ``n_max`` samples.

Everything is vectorised over leading axes: ``keys`` is (..., sample), the answer key numbers
of the samples in draw order (-1: no answer). One stable sort by key per row gives each draw
its answer's running tally (``tally``); the leading and runner-up counts, runs and weighted
shares of every prefix follow from running maxima, without a loop over draws. The sweep's live
``adaptive`` strategy and the offline replay (``analysis/adaptive.py``) call the same functions.

Left out: drawing samples, grading, and what stopping costs (the FLOPs rule,
``sweep/inference/flops.py``). The Dirichlet criterion over all answers (Adaptive-Consistency's
other rule) has no closed form and is not implemented.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, NotRequired, TypedDict, Unpack

import numpy as np
from scipy.special import betainc

Rule = Literal["esc", "beta", "weighted"]
RULES: tuple[Rule, ...] = ("esc", "beta", "weighted")
MIN_WEIGHTED_VOTES = 2  # the weighted rule's share means little over a single vote
BETA_TABLE_LIMIT = 1 << 22  # entries of the (v1, v2) -> confidence table; beyond, per unique pair


@dataclass(frozen=True)
class StoppingRule:
    """One rule at one threshold, checked after every ``window`` draws."""

    rule: Rule
    threshold: float
    window: int = 1

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"unknown stopping rule {self.rule!r}; known: {', '.join(RULES)}")
        if not isinstance(self.window, int | np.integer) or self.window < 1:
            raise ValueError(f"window must be a positive integer, got {self.window!r}")
        if np.isnan(self.threshold):
            raise ValueError("threshold must be a number, got NaN")
        if self.rule == "esc" and (self.threshold < 1 or self.threshold != int(self.threshold)):
            raise ValueError(f"esc's threshold is a number of agreeing answers (>= 1), got {self.threshold}")

    @property
    def reads_scores(self) -> bool:
        return self.rule == "weighted"


@dataclass(frozen=True)
class Tallies:
    """Running tallies of draws: entry t of a (row, sample) array describes the first t + 1 draws.

    Rows are the flattened leading axes of ``keys``. The weighted tallies are None without scores."""

    keys: np.ndarray  # (row, sample) -> answer key, -1: none
    rank: np.ndarray  # (row, sample) -> the draw's rank for breaking ties, lowest first
    count: np.ndarray  # (row, sample) -> draws so far of this draw's answer, itself included; 0: none
    leader: np.ndarray  # (row, sample) -> votes of the leading answer (v1)
    runner_up: np.ndarray  # (row, sample) -> votes of the best other answer (v2)
    run: np.ndarray  # (row, sample) -> answered draws ending here with this draw's answer
    shape: tuple[int, ...]  # the leading axes
    voted: np.ndarray | None = None  # (row, sample) -> answered with a score: a weighted vote
    weight: np.ndarray | None = None  # (row, sample) -> summed scores so far of this draw's answer
    weight_leader: np.ndarray | None = None  # (row, sample) -> summed scores of the leading answer
    weight_total: np.ndarray | None = None  # (row, sample) -> summed scores of all votes
    weighted_votes: np.ndarray | None = None  # (row, sample) -> weighted votes so far


def tally(keys: np.ndarray, scores: np.ndarray | None = None, *, rank: np.ndarray | None = None) -> Tallies:
    """The running tallies of ``keys`` (..., sample) in draw order.

    ``scores`` (..., sample): each draw's reward score, NaN: none (no weighted vote); None: no
    scores (no weighted tallies). ``rank`` (..., sample): the order that breaks ties between
    answers, lowest first (an answer's rank is its lowest among its draws); default the draw
    order, so ties go to the answer seen first. The offline replay passes the stored sample
    index, as the fixed-n voting estimators break ties (``analysis/subsets.py``). Ranks must lie
    in [0, sample). Tallies are causal: those of the first L draws are the first L columns."""
    keys = np.asarray(keys)
    if keys.ndim < 1 or keys.shape[-1] < 1:
        raise ValueError(f"keys must be (..., sample) with at least one sample, got shape {keys.shape}")
    shape, n = keys.shape[:-1], keys.shape[-1]
    # Counts, ranks and run offsets (< (n + 1)^2) in the narrowest integer that holds them.
    index = np.int32 if (n + 1) ** 2 < np.iinfo(np.int32).max else np.int64
    keys = keys.reshape(-1, n)
    rows = keys.shape[0]
    answered = keys >= 0
    slot = np.arange(n, dtype=index)
    rank = np.broadcast_to(slot, keys.shape) if rank is None else np.asarray(rank).reshape(rows, n).astype(index)

    # One stable sort by answer: each answer's draws become a run, in draw order.
    small = keys.max(initial=0) < np.iinfo(np.int16).max
    order = np.argsort(keys.astype(np.int16) if small else keys, axis=1, kind="stable")  # (row, slot) -> draw
    inverse = np.empty_like(order)  # (row, draw) -> slot
    np.put_along_axis(inverse, order, np.broadcast_to(slot.astype(order.dtype), keys.shape), axis=1)
    sorted_keys = np.take_along_axis(keys, order, axis=1)
    starts = np.ones(keys.shape, dtype=bool)
    starts[:, 1:] = sorted_keys[:, 1:] != sorted_keys[:, :-1]
    run_start = np.maximum.accumulate(np.where(starts, slot, index(0)), axis=1)  # (row, slot) -> run's first slot

    def per_draw(values_sorted: np.ndarray) -> np.ndarray:  # (row, slot) -> (row, draw)
        return np.take_along_axis(values_sorted, inverse, axis=1)

    count = np.where(answered, per_draw(slot - run_start + index(1)), index(0))
    leader = np.maximum.accumulate(count, axis=1)
    tallies = Tallies(
        keys=keys,
        rank=rank,
        count=count,
        leader=leader,
        runner_up=_runner_up(keys, count, leader),
        run=_runs(keys, index),
        shape=shape,
    )
    if scores is None:
        return tallies
    scores = np.asarray(scores, dtype=np.float64).reshape(rows, n)
    if (scores < 0).any():
        raise ValueError("scores must be non-negative (reward probabilities); got a negative one")
    voted = answered & ~np.isnan(scores)
    weights = np.where(voted, scores, 0.0)
    cumulative = np.cumsum(np.take_along_axis(weights, order, axis=1), axis=1)  # (row, slot)
    before = np.take_along_axis(cumulative, np.maximum(run_start - 1, 0), axis=1)
    weight = np.where(answered, per_draw(cumulative - np.where(run_start > 0, before, 0.0)), 0.0)
    return replace(
        tallies,
        voted=voted,
        weight=weight,
        weight_leader=np.maximum.accumulate(weight, axis=1),  # scores >= 0: tallies only grow
        weight_total=np.cumsum(weights, axis=1),
        weighted_votes=np.cumsum(voted, axis=1, dtype=index),
    )


def _runner_up(keys: np.ndarray, count: np.ndarray, leader: np.ndarray) -> np.ndarray:
    """(row, sample) -> votes of the best answer other than the leader (v2).

    The leader changes only when a draw lifts its answer above the old lead; from then on (an
    *epoch*) the runner-up is the old leader's count or any other answer's count as it grows, a
    running maximum restarted at each epoch."""
    n = keys.shape[1]
    index = count.dtype.type
    previous = np.zeros_like(leader)
    previous[:, 1:] = leader[:, :-1]
    rises = leader > previous  # the draw's answer now leads alone
    last_rise = np.maximum.accumulate(np.where(rises, np.arange(n, dtype=index), index(-1)), axis=1)
    holder = np.where(last_rise >= 0, np.take_along_axis(keys, np.maximum(last_rise, 0), axis=1), -1)
    holder_before = np.full_like(holder, -1)
    holder_before[:, 1:] = holder[:, :-1]
    new_epoch = rises & (keys != holder_before)
    # At an epoch's start the dethroned leader's count; else other answers' counts.
    value = np.where(new_epoch, previous, np.where(keys != holder, count, index(0)))
    offset = np.cumsum(new_epoch, axis=1, dtype=index) * index(n + 1)
    return np.maximum.accumulate(offset + value, axis=1) - offset


def _runs(keys: np.ndarray, index: type) -> np.ndarray:
    """(row, sample) -> answered draws in a row, ending here, with this draw's answer."""
    n = keys.shape[1]
    answered = keys >= 0
    starts = np.ones(keys.shape, dtype=bool)
    starts[:, 1:] = (keys[:, 1:] != keys[:, :-1]) | ~answered[:, :-1]
    draw = np.arange(n, dtype=index)
    last_start = np.maximum.accumulate(np.where(starts, draw, index(0)), axis=1)
    return np.where(answered, draw - last_start + index(1), index(0))


def beta_confidence(leader: np.ndarray, runner_up: np.ndarray) -> np.ndarray:
    """P(p1 > p2) for the two leading answers with ``leader`` and ``runner_up`` votes:
    P(p > 1/2) for p ~ Beta(v1 + 1, v2 + 1), i.e. I_{1/2}(v2 + 1, v1 + 1)."""
    leader, runner_up = np.asarray(leader), np.asarray(runner_up)
    size = int(max(leader.max(initial=0), runner_up.max(initial=0))) + 1
    if size * size <= BETA_TABLE_LIMIT:  # a table over every (v1, v2): one betainc per pair
        v1, v2 = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
        table = betainc(v2 + 1.0, v1 + 1.0, 0.5).ravel()
        return table[leader.astype(np.int32) * np.int32(size) + runner_up]
    leader, runner_up = leader.astype(np.int64), runner_up.astype(np.int64)
    pairs, inverse = np.unique(leader * size + runner_up, return_inverse=True)
    return betainc(pairs % size + 1.0, pairs // size + 1.0, 0.5)[inverse].reshape(leader.shape)


def criterion(tallies: Tallies, rule: Rule) -> np.ndarray:
    """(row, sample) -> the rule's statistic after each prefix; the rule stops at the first
    checked prefix where it reaches the threshold."""
    if rule == "esc":
        return tallies.run.astype(np.float64)
    if rule == "beta":
        return beta_confidence(tallies.leader, tallies.runner_up)
    if rule == "weighted":
        if tallies.weight_leader is None or tallies.weight_total is None or tallies.weighted_votes is None:
            raise ValueError("the weighted rule needs scores")
        with np.errstate(invalid="ignore", divide="ignore"):
            share = tallies.weight_leader / tallies.weight_total
        enough = (tallies.weighted_votes >= MIN_WEIGHTED_VOTES) & (tallies.weight_total > 0)
        return np.where(enough, share, 0.0)
    raise ValueError(f"unknown stopping rule {rule!r}; known: {', '.join(RULES)}")


def first_stop(value: np.ndarray, *, threshold: float, window: int = 1, samples: int | None = None) -> np.ndarray:
    """(row,) -> draws made when the rule stops, in [1, samples]: the first prefix of a whole
    number of rounds of ``window`` draws whose ``value`` (row, drawn) reaches ``threshold``; all
    ``samples`` draws when none does (the last draw allowed is always a stop).

    ``samples``: the most draws allowed (default: all of ``value``'s). When ``value`` covers
    fewer, rows whose rule has not fired within them get 0: not decided yet."""
    drawn = value.shape[-1]
    samples = drawn if samples is None else samples
    hit = _hits(value, threshold=threshold, window=window, samples=samples)
    return np.where(hit.any(axis=-1), hit.argmax(axis=-1) + 1, samples if drawn == samples else 0)


def _hits(value: np.ndarray, *, threshold: float, window: int, samples: int) -> np.ndarray:
    """(row, drawn) -> the rule is checked after this draw (a whole round, or the last draw
    allowed) and its ``value`` reaches ``threshold`` there."""
    drawn = value.shape[-1]
    assert drawn <= samples
    count = np.arange(1, drawn + 1)
    checked = (count % window == 0) | (count == samples)  # (drawn,)
    return (value >= threshold) & checked


class RuleArgs(TypedDict):
    """The keywords that name a rule in ``stop_index`` and ``fired``."""

    rule: Rule
    threshold: float
    # Draws per round, the rule is checked after each; default 1, and for ``esc`` its threshold
    # (the paper's windows).
    window: NotRequired[int | None]


def _criterion(
    keys: np.ndarray, scores: np.ndarray | None, *, rule: Rule, threshold: float, window: int | None = None
) -> tuple[StoppingRule, Tallies, np.ndarray]:
    """The rule with its default window, the tallies of ``keys`` and the rule's criterion on them."""
    spec = StoppingRule(rule, threshold, window or (int(threshold) if rule == "esc" else 1))
    tallies = tally(keys, scores)
    return spec, tallies, criterion(tallies, spec.rule)


def stop_index(keys: np.ndarray, scores: np.ndarray | None = None, **rule: Unpack[RuleArgs]) -> np.ndarray:
    """(...) -> how many of the draws ``keys`` (..., sample) the rule makes before it stops, in
    [1, sample]; ``sample`` also when it never fires."""
    spec, tallies, value = _criterion(keys, scores, **rule)
    stop = first_stop(value, threshold=spec.threshold, window=spec.window)
    return stop.reshape(tallies.shape)


def fired(keys: np.ndarray, scores: np.ndarray | None = None, **rule: Unpack[RuleArgs]) -> np.ndarray:
    """(...) -> whether the rule fires at a checked prefix of the draws so far (the last one
    included), as opposed to running out of draws: what a live sampler asks after each round."""
    spec, tallies, value = _criterion(keys, scores, **rule)
    # The draws so far are all there are yet: the last one is checked as if it were the last allowed.
    hit = _hits(value, threshold=spec.threshold, window=spec.window, samples=value.shape[-1])
    return hit.any(axis=-1).reshape(tallies.shape)


def vote(tallies: Tallies, stop: np.ndarray, *, weighted: bool = False) -> np.ndarray:
    """(...) -> the winning answer key among the first ``stop`` (...) draws; -1: none answered
    (weighted: none answered with a score).

    Majority vote: the answer with most draws; weighted: the largest summed score. Ties go to
    the tied answer with the lowest rank among its (weighted: scored) draws, as majority and
    weighted vote do in ``analysis/subsets.py``."""
    stop = np.asarray(stop).reshape(-1)
    rows, n = tallies.keys.shape
    assert stop.shape == (rows,) and (stop >= 1).all() and (stop <= n).all()
    last = (stop - 1)[:, None]  # (row, 1)
    drawn = np.arange(n) < stop[:, None]  # (row, sample)
    every = np.arange(rows)
    if weighted:
        if tallies.weight is None or tallies.weight_leader is None or tallies.voted is None:
            raise ValueError("a weighted vote needs scores")
        best = np.take_along_axis(tallies.weight_leader, last, axis=1)  # (row, 1)
        lead = np.where(drawn, tallies.weight, -1.0).argmax(axis=1)  # a draw of a leading answer
        winner = tallies.keys[every, lead]
        leading = drawn & (tallies.keys >= 0) & (tallies.weight == best)
        # Another answer as heavy, or no weight at all (any voter's answer may lead): a tie.
        tied = (leading & (tallies.keys != winner[:, None])).any(axis=1) | (best[:, 0] <= 0)
    else:
        best = np.take_along_axis(tallies.leader, last, axis=1)
        lead = np.where(drawn, tallies.count, -1).argmax(axis=1)
        winner = np.where(best[:, 0] > 0, tallies.keys[every, lead], -1)
        tied = (np.take_along_axis(tallies.runner_up, last, axis=1) == best)[:, 0] & (best[:, 0] > 0)
    if tied.any():
        winner[tied] = _break_ties(tallies, np.nonzero(tied)[0], drawn, best, weighted=weighted)
    return winner.reshape(tallies.shape)


def _break_ties(
    tallies: Tallies, rows: np.ndarray, drawn: np.ndarray, best: np.ndarray, *, weighted: bool
) -> np.ndarray:
    """(tied row,) -> the answer, among those tied for the lead, with the lowest-ranked voter."""
    keys, drawn, best = tallies.keys[rows], drawn[rows], best[rows]
    n = keys.shape[1]
    if weighted:
        assert tallies.weight is not None and tallies.voted is not None
        leading = drawn & (keys >= 0) & (tallies.weight[rows] == best)
        voter = drawn & tallies.voted[rows]
    else:
        leading = drawn & (tallies.count[rows] == best)
        voter = drawn & (keys >= 0)
    # (row, key) -> the answer ties the lead; key -1 lands in the last column, never set.
    tied = np.zeros((len(rows), int(keys.max(initial=0)) + 2), dtype=bool)
    r, t = np.nonzero(leading)
    tied[r, keys[r, t]] = True
    candidate = voter & tied[np.arange(len(rows))[:, None], keys]
    pick = np.where(candidate, tallies.rank[rows], n).argmin(axis=1)  # ranks lie in [0, n)
    return np.where(candidate.any(axis=1), keys[np.arange(len(rows)), pick], -1)
