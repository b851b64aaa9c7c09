"""REBASE, reward-balanced tree search (Wu et al., 2024, §3.1.2), batched across a shard's problems.

Per problem: sample N first steps (budget B0 = N). At each depth every new node is scored by
the PRM; the C_i nodes that finished reduce the budget, B_i = B_{i-1} − C_i; each open node j
gets W_j = Round(B_i · softmax(R_j / T_b)) children, rounded so they sum to exactly B_i
(``sweep/inference/search/allocation.py``); nodes that get none are pruned. The search stops when the
budget is spent, so every tree ends with exactly N finished leaves: a solution, or a path cut
by the depth or token cap, or a failed request (``finish`` says which). All trees advance one
depth together: one generation batch and one scoring batch per depth for the whole shard.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from actors.protocol import Engine
from sweep.data.prompting import PromptedProblem
from sweep.inference.scorers import Scorer
from sweep.inference.search.allocation import allocate_children
from sweep.inference.search.tree import Tree, grow
from sweep.inference.search.uct import SearchNode
from sweep.inference.strategies.base import GenerationConfig, StrategyOutput
from sweep.inference.strategies.tree_search import TreeSearchSettings, leaf_samples


class RebaseSettings(TreeSearchSettings):
    name: Literal["rebase"]
    balance_temperature: float = Field(
        default=0.1, ge=0, description="T_b of softmax(R / T_b): lower puts more children on the best nodes."
    )


def run_rebase(
    problems: list[PromptedProblem],
    *,
    settings: RebaseSettings,
    engine: Engine,
    scorer: Scorer | None,
    generation: GenerationConfig,
    seed: int,
) -> StrategyOutput:
    assert scorer is not None, "config validation requires a reward model"
    params = settings.expansion(delimiter=scorer.delimiter, generation=generation)
    trees = [Tree(problem=p) for p in problems]
    remaining = {id(t): settings.budget for t in trees}
    frontier: list[tuple[Tree, SearchNode, int]] = [(t, t.root, settings.budget) for t in trees]
    while frontier:
        grown = grow(frontier, engine=engine, params=params, scorer=scorer)
        frontier = []
        for tree in trees:
            fresh = grown.get(id(tree), [])
            if not fresh:
                continue
            remaining[id(tree)] -= sum(node.terminal for node in fresh)
            open_nodes = [node for node in fresh if not node.terminal]
            assert len(open_nodes) == remaining[id(tree)], "open nodes at a depth equal the budget left"
            counts = allocate_children(
                [node.score or 0.0 for node in open_nodes], remaining[id(tree)], settings.balance_temperature
            )
            for node, count in zip(open_nodes, counts, strict=True):
                if count:
                    frontier.append((tree, node, count))
                else:
                    node.finish = "pruned"
    samples = []
    for tree in trees:
        leaves = [node for node in tree.nodes if node.terminal]
        assert len(leaves) == settings.budget
        samples.extend(leaf_samples(tree, leaves, budget=settings.budget, seed=seed))
    return StrategyOutput(samples=samples, trees=trees)
