"""Inference strategies, registered by name.

Each strategy is a settings model (validated from one ``strategies:`` entry of the grid)
plus a plain function with the shared signature ``run(problems, *, settings, engine,
generation, seed) -> list[RawSample]``. Config validation checks names against
``STRATEGIES``; the scheduler looks strategies up here; nothing branches on names.
"""

from __future__ import annotations

from sweep.strategies.base import RawSample, Strategy, StrategySettings
from sweep.strategies.sampling import GreedySettings, SamplingSettings, run_sampling

STRATEGIES: dict[str, Strategy] = {
    "greedy": Strategy(settings=GreedySettings, run=run_sampling),
    "sampling": Strategy(settings=SamplingSettings, run=run_sampling),
}

__all__ = ["STRATEGIES", "RawSample", "Strategy", "StrategySettings"]
