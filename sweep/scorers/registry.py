"""Scorer kinds by name: a ``reward_models:`` entry's ``kind`` is validated against this dict."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sweep.scorers import Scorer
from sweep.scorers.step_token import StepTokenScorer

SCORERS: dict[str, Callable[..., Scorer]] = {"step_token": StepTokenScorer}


def build_scorer(kind: str, *, engine: Any, settings: dict[str, Any]) -> Scorer:
    """The scorer of ``kind`` reading ``engine``, configured by the entry's scorer settings."""
    return SCORERS[kind](engine=engine, **settings)
