"""Reward models that score solutions step by step, registered by name.

A scorer turns (prompt, completion) pairs into one score per step (``StepScores``); the
aggregates (last, min, prod, mean) feed best-of-n and weighted voting later. Kinds:
- ``step_token``: a causal-LM PRM in the Math-Shepherd style, read through next-token
  log-probabilities at a step tag (``sweep/scorers/step_token.py``).
Still to come (issue 3): ``pooling`` (vLLM's reward runner) and ``self_logprob``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


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
    def score(self, items: Sequence[tuple[str, str]]) -> list[StepScores]: ...


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
