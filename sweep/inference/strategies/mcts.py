"""Monte Carlo tree search over reasoning steps (Wu et al., 2024, appendix), batched across problems.

Each iteration, in every problem's tree at once: select a leaf by UCT (Q + C·sqrt(ln N_parent /
N_node), C = 1) among nodes that can still grow, expand it (the root into ``root_children``
steps, any other node into ``children``), score the new steps with the PRM and back each
score up as a running mean. The budget counts expansions; a tree whose every path has
finished stops early (recorded as ``exhausted``). The samples are the finished leaves; a tree
with none contributes its open leaves instead, so every problem has rows.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt, model_validator

from sweep.inference.search.tree import Tree
from sweep.inference.search.uct import SearchNode, select_leaf
from sweep.inference.strategies.base import StrategySettings
from sweep.inference.strategies.tree_search import Expand, TreeSearchSettings, TreeStrategy


class MCTSSettings(TreeSearchSettings):
    name: Literal["mcts"]
    root_children: PositiveInt | dict[PositiveInt, PositiveInt] = Field(
        default=4,
        description="Children of the root's expansion, or per budget (paper: {32: 4, 64: 8, 128: 16}).",
    )
    children: PositiveInt = Field(default=2, description="Children of every other expansion.")
    exploration: float = Field(default=1.0, ge=0, description="C of UCT.")

    @model_validator(mode="after")
    def _root_children_per_budget(self) -> MCTSSettings:
        if isinstance(self.root_children, dict) and set(self.root_children) != set(self.budgets):
            raise ValueError(f"root_children must give a count for each budget {self.budgets}")
        return self

    def split(self) -> list[StrategySettings]:
        return [
            self.model_copy(update={"budgets": [b], "root_children": self.root_count(b)}) for b in self.budgets
        ]

    def root_count(self, budget: int) -> int:
        return self.root_children[budget] if isinstance(self.root_children, dict) else self.root_children

    def expected_rows(self, problems: int) -> int | None:
        return None  # as many leaves as the search finishes


def search_mcts(trees: list[Tree], *, settings: MCTSSettings, expand: Expand) -> list[list[SearchNode]]:
    spent = {id(t): 0 for t in trees}
    while True:
        requests: list[tuple[Tree, SearchNode, int]] = []
        for tree in trees:
            if tree.stopped or spent[id(tree)] >= settings.budget:
                continue
            leaf = select_leaf(tree.root, settings.exploration)
            if leaf is None:
                tree.stopped = "exhausted"
                continue
            requests.append(
                (tree, leaf, settings.root_count(settings.budget) if leaf.parent is None else settings.children)
            )
            spent[id(tree)] += 1
        if not requests:
            break
        for fresh in expand(requests).values():
            for node in fresh:
                node.backup(node.score or 0.0)
                node.mark_exhausted()
    found = []
    for tree in trees:
        leaves = [node for node in tree.nodes if not node.children and node.parent is not None]
        finished = [node for node in leaves if node.terminal]
        for node in leaves:
            if not node.terminal:
                node.finish = "open"
        found.append(finished or leaves)
    return found


run_mcts = TreeStrategy(search_mcts)
