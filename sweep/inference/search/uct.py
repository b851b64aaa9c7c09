"""Search-tree nodes, MCTS statistics and UCT selection (Wu et al., 2024, appendix).

UCT(node) = Q + C · sqrt(ln N_parent / N_node), with C = 1 in the paper; Q is the running
mean of the process-reward values backed up through the node. Unvisited children are
taken first (their UCT is infinite), in order. Exhausted children (finished, or every
descendant finished) are never selected, so selection always ends at an expandable leaf.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(eq=False)
class SearchNode:
    """One node of a search tree: a partial solution ending after its own step."""

    node_id: int
    parent: SearchNode | None
    text: str = ""  # the partial solution: every step from the root to here, joined
    depth: int = 0
    visits: int = 0
    value_sum: float = 0.0
    terminal: bool = False  # a finished solution (or cut by a cap, or failed): never expanded
    children: list[SearchNode] = field(default_factory=list)
    step: str = ""  # this node's own step
    tokens: int = 0  # tokens generated for this step
    path_tokens: int = 0  # tokens generated from the root to here
    score: float | None = None  # the reward model's score of this step
    finish: str | None = None  # why the node ends a path: done, depth_cap, token_cap, error, pruned, open
    context_tokens: float = 0.0  # this node's share of the uncached context its request encoded
    reward_tokens: int = 0  # tokens the reward model read for this node beyond its parent's
    reward_read: int = 0  # length of the reward model's input for this node
    error: str | None = None
    exhausted: bool = False

    @property
    def q(self) -> float:
        return self.value_sum / self.visits if self.visits else 0.0

    @property
    def path(self) -> list[SearchNode]:
        """The nodes from the root's first child down to here (the root's path is empty)."""
        nodes, node = [], self
        while node.parent is not None:
            nodes.append(node)
            node = node.parent
        return nodes[::-1]

    @property
    def steps(self) -> list[str]:
        """The steps from the root to here (the root has none)."""
        return [node.step for node in self.path]

    @property
    def path_scores(self) -> list[float]:
        return [node.score if node.score is not None else 0.0 for node in self.path]

    def backup(self, value: float) -> None:
        """Add ``value`` to this node and every ancestor (running means)."""
        node: SearchNode | None = self
        while node is not None:
            node.visits += 1
            node.value_sum += value
            node = node.parent

    def mark_exhausted(self) -> None:
        """Propagate exhaustion upward: a node is exhausted when all its children are."""
        node: SearchNode | None = self
        while node is not None and (
            node.terminal or (node.children and all(c.exhausted for c in node.children))
        ):
            node.exhausted = True
            node = node.parent


def uct_score(child: SearchNode, parent_visits: int, c: float = 1.0) -> float:
    if child.visits == 0:
        return math.inf
    return child.q + c * math.sqrt(math.log(max(parent_visits, 1)) / child.visits)


def select_child(node: SearchNode, c: float = 1.0) -> SearchNode:
    """The non-exhausted child with the highest UCT; ties go to the earlier child."""
    candidates = [child for child in node.children if not child.exhausted]
    if not candidates:
        raise ValueError("a node without open children has nothing to select")
    scores = [uct_score(child, node.visits, c) for child in candidates]
    return candidates[scores.index(max(scores))]


def select_leaf(root: SearchNode, c: float = 1.0) -> SearchNode | None:
    """Descend by UCT to a leaf that can be expanded; None when the whole tree is exhausted."""
    if root.exhausted:
        return None
    node = root
    while node.children:
        node = select_child(node, c)
    return node
