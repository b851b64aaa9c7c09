"""Scorer kinds by name: a ``reward_models:`` entry's ``kind`` is validated against this dict."""

from __future__ import annotations

from typing import Any

from sweep.inference.scorers import Scorer
from sweep.inference.scorers.base import StepScorer
from sweep.inference.scorers.pooling import PoolingScorer
from sweep.inference.scorers.self_logprob import SelfLogprobScorer
from sweep.inference.scorers.step_token import StepTokenScorer

SCORERS: dict[str, type[StepScorer]] = {
    "step_token": StepTokenScorer,
    "self_logprob": SelfLogprobScorer,
    "pooling": PoolingScorer,
}


def reads_policy(kind: str) -> bool:
    """Whether a kind scores with the policy's own engine (declared on the kind, ``StepScorer``):
    its entry names no model, and no engine is started for it."""
    return SCORERS[kind].reads_policy


def build_scorer(settings: dict[str, Any], *, engine: Any) -> Scorer:
    """The scorer a ``reward_models:`` entry's settings (``scorer_settings()``, ``kind``
    included) describe, reading ``engine``."""
    kind, rest = settings["kind"], {k: v for k, v in settings.items() if k != "kind"}
    return SCORERS[kind](engine=engine, **rest)
