"""Scorer kinds by name: a ``reward_models:`` entry's ``kind`` is validated against this dict."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sweep.scorers import Scorer
from sweep.scorers.pooling import PoolingScorer
from sweep.scorers.self_logprob import SelfLogprobScorer
from sweep.scorers.step_token import StepTokenScorer

SCORERS: dict[str, Callable[..., Scorer]] = {
    "step_token": StepTokenScorer,
    "self_logprob": SelfLogprobScorer,
    "pooling": PoolingScorer,
}
# Kinds that read the policy's own engine: their entry names no model of its own.
POLICY_SCORERS = frozenset({"self_logprob"})


def build_scorer(kind: str, *, engine: Any, settings: dict[str, Any]) -> Scorer:
    """The scorer of ``kind`` reading ``engine``, configured by the entry's scorer settings."""
    return SCORERS[kind](engine=engine, **settings)
