"""Inference strategies, registered by name.

Each strategy is a settings model (validated from one ``strategies:`` entry of the grid)
plus a callable with the shared signature ``run(problems, *, settings, engine, scorer,
generation, seed) -> StrategyOutput`` (the samples and, for tree search, the trees): a plain
function, or for a tree search its search function wrapped in ``TreeStrategy``
(``tree_search.py``). Config validation checks names against ``STRATEGIES``; the runner and
``/solve`` look strategies up here; nothing branches on names.
"""

from __future__ import annotations

from sweep.inference.strategies.adaptive import AdaptiveSettings, run_adaptive
from sweep.inference.strategies.base import RawSample, Strategy, StrategyOutput, StrategySettings
from sweep.inference.strategies.beam import BeamSettings, run_beam
from sweep.inference.strategies.mcts import MCTSSettings, run_mcts
from sweep.inference.strategies.rebase import RebaseSettings, run_rebase
from sweep.inference.strategies.sampling import GreedySettings, SamplingSettings, run_sampling
from sweep.inference.strategies.tree_search import TreeSearchSettings

STRATEGIES: dict[str, Strategy] = {
    "greedy": Strategy(settings=GreedySettings, run=run_sampling),
    "sampling": Strategy(settings=SamplingSettings, run=run_sampling),
    "rebase": Strategy(settings=RebaseSettings, run=run_rebase),
    "mcts": Strategy(settings=MCTSSettings, run=run_mcts),
    "beam": Strategy(settings=BeamSettings, run=run_beam),
    "adaptive": Strategy(settings=AdaptiveSettings, run=run_adaptive),
}

__all__ = ["STRATEGIES", "RawSample", "Strategy", "StrategyOutput", "StrategySettings", "TreeSearchSettings"]
