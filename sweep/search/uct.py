"""MCTS node statistics and UCT selection (Wu et al., 2024, appendix).

UCT(node) = Q + C · sqrt(ln N_parent / N_node), with C = 1 in the paper; Q is the running
mean of the process-reward values backed up through the node. Unvisited children are
taken first (their UCT is infinite), in order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class SearchNode:
    """One node of a search tree: a partial solution ending after ``text``'s last step."""

    node_id: int
    parent: SearchNode | None
    text: str = ""
    depth: int = 0
    visits: int = 0
    value_sum: float = 0.0
    terminal: bool = False
    children: list[SearchNode] = field(default_factory=list)

    @property
    def q(self) -> float:
        return self.value_sum / self.visits if self.visits else 0.0

    def backup(self, value: float) -> None:
        """Add ``value`` to this node and every ancestor (running means)."""
        node: SearchNode | None = self
        while node is not None:
            node.visits += 1
            node.value_sum += value
            node = node.parent


def uct_score(child: SearchNode, parent_visits: int, c: float = 1.0) -> float:
    if child.visits == 0:
        return math.inf
    return child.q + c * math.sqrt(math.log(max(parent_visits, 1)) / child.visits)


def select_child(node: SearchNode, c: float = 1.0) -> SearchNode:
    """The child with the highest UCT; ties go to the earlier child."""
    if not node.children:
        raise ValueError("a node without children has nothing to select")
    scores = [uct_score(child, node.visits, c) for child in node.children]
    return node.children[scores.index(max(scores))]
