"""REBASE, reward-balanced tree search (Wu et al., 2024, §3.1.2), batched across a shard's problems.

Per problem: sample N first steps (budget B0 = N). At each depth every new node is scored by
the PRM; the C_i nodes that finished reduce the budget, B_i = B_{i-1} − C_i; each open node j
gets W_j = Round(B_i · softmax(R_j / T_b)) children, rounded so they sum to exactly B_i
(``sweep/inference/search/allocation.py``); nodes that get none are pruned. The search stops
when the budget is spent, so every tree ends with exactly N finished leaves: a solution, or a
path cut by the depth or token cap, or a failed request (``finish`` says which). All trees
advance one depth together (``search_by_depth``): one generation batch and one scoring batch
per depth for the whole shard.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from sweep.inference.search.allocation import allocate_children
from sweep.inference.search.tree import Tree
from sweep.inference.search.uct import SearchNode
from sweep.inference.strategies.tree_search import Expand, TreeSearchSettings, TreeStrategy, search_by_depth


class RebaseSettings(TreeSearchSettings):
    name: Literal["rebase"]
    balance_temperature: float = Field(
        default=0.1, ge=0, description="T_b of softmax(R / T_b): lower puts more children on the best nodes."
    )


def search_rebase(trees: list[Tree], *, settings: RebaseSettings, expand: Expand) -> list[list[SearchNode]]:
    remaining = {id(t): settings.budget for t in trees}

    def balance(tree: Tree, fresh: list[SearchNode]) -> list[tuple[SearchNode, int]]:
        if not fresh:
            return []
        remaining[id(tree)] -= sum(node.terminal for node in fresh)
        open_nodes = [node for node in fresh if not node.terminal]
        assert len(open_nodes) == remaining[id(tree)], "open nodes at a depth equal the budget left"
        counts = allocate_children(
            [node.score or 0.0 for node in open_nodes], remaining[id(tree)], settings.balance_temperature
        )
        for node, count in zip(open_nodes, counts, strict=True):
            if not count:
                node.finish = "pruned"
        return [(node, count) for node, count in zip(open_nodes, counts, strict=True) if count]

    search_by_depth(trees, budget=settings.budget, expand=expand, choose=balance)
    leaves = [[node for node in tree.nodes if node.terminal] for tree in trees]
    assert all(len(found) == settings.budget for found in leaves)
    return leaves


run_rebase = TreeStrategy(search_rebase)
