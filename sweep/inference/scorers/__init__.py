"""Reward models that score solutions step by step: the interface every kind meets.

A scorer turns (prompt, completion) pairs into one score per step (``StepScores``); the
aggregates (last, min, prod, mean, ``aggregate``) feed best-of-n and weighted voting later.
Every scorer scores whole solutions (``score``, for sampled solutions) and the last step of a
partial one (``score_last``, for tree search, which scores each new node once). A batch the
engine refuses is read again by halves (``score_apart``), so one input too long for the reward
model fails alone.

This module holds only that interface (``Scorer``, ``RewardEngine``, ``StepScores``); the kinds
live beside it and are registered by name in ``SCORERS`` (``registry.py``), which a
``reward_models:`` entry's ``kind`` is validated against:

- ``step_token``: a causal-LM PRM in the Math-Shepherd style, read through next-token
  log-probabilities at a step tag (``step_token.py``).
- ``self_logprob``: the policy's own mean token log-probability per step, no extra model
  (``self_logprob.py``).
- ``pooling``: a PRM with a reward head served by vLLM's pooling runner (``pooling.py``).

Each kind is a ``StepScorer`` (``base.py``): the settings every kind accepts, its reading of a
solution into steps, and what it declares as data (``reads_policy``: it scores with the policy's
own engine; ``prefix_cached``: a partial solution's shared prefix comes from the cache).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from actors.protocol import DeadlineExceeded, RequestFailed

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass(frozen=True)
class StepScores:
    steps: list[str]
    scores: list[float]  # (step,) -> score in [0, 1]
    reward_tokens: int  # tokens the reward model processed for this solution (prefix-cached)


class RewardEngine(Protocol):
    """What a token-reading scorer needs from an engine (``VLLMEngine`` or its actor)."""

    def next_token_logprobs(
        self, prefixes: list[str], candidates: list[str]
    ) -> list[tuple[int, dict[str, float]]]: ...


class Scorer(Protocol):
    step_mode: str
    delimiter: str
    prefix_cached: bool  # whether a partial solution's shared prefix is read from the cache

    def score(self, items: Sequence[tuple[str, str]]) -> list[StepScores]:
        """Per-step scores of each (prompt, completion)."""
        ...

    def score_last(self, items: Sequence[tuple[str, list[str]]]) -> list[tuple[float, int]]:
        """For each (prompt, steps so far): the last step's score and the tokens the model read."""
        ...


AGGREGATIONS = ("last", "min", "prod", "mean")  # stored as score_<aggregation>


def aggregate(scores: Sequence[float]) -> dict[str, float | None]:
    """The step-score aggregates stored per sample; None when a solution has no steps."""
    if not scores:
        return dict.fromkeys(AGGREGATIONS)
    return {
        "last": scores[-1],
        "min": min(scores),
        "prod": math.prod(scores),
        "mean": sum(scores) / len(scores),
    }


def score_apart(
    read: Callable[[Sequence[Item]], list[Result]], items: Sequence[Item]
) -> list[Result | RequestFailed]:
    """``read(items)``, and when the engine refuses the batch (``RequestFailed``: an input too
    long for the reward model, say), the same by halves, so only the inputs it refuses come
    back failed (as their ``RequestFailed``) and every other one is scored. Costs nothing more
    when nothing fails; about log2(batch) more reads per refused input when something does."""
    if not items:
        return []
    try:
        return list(read(items))
    except DeadlineExceeded:
        raise  # the batch ran out of time: halves would too; the shard fails and is retried
    except RequestFailed as exc:
        if len(items) == 1:
            return [exc]
        middle = len(items) // 2
        return [*score_apart(read, items[:middle]), *score_apart(read, items[middle:])]
