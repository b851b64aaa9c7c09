"""PRM-guided beam search (the search-and-learn recipe), batched across a shard's problems.

Budget N candidates a step, beam width M: the root is expanded into N first steps; at each
depth every new step is scored by the PRM, finished paths are set aside, and the best
``N / M − finished`` open paths by score stay beams (the rest are pruned); each beam is
expanded into M candidates for the next step. The search ends when no beam is left (caps end
paths too), so it returns at least N / M finished leaves, and at most N.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt, model_validator

from sweep.inference.search.tree import Tree
from sweep.inference.search.uct import SearchNode
from sweep.inference.strategies.tree_search import Expand, TreeSearchSettings, TreeStrategy, search_by_depth


class BeamSettings(TreeSearchSettings):
    name: Literal["beam"]
    beam_width: PositiveInt = Field(default=4, description="M: candidates each kept beam expands into.")

    @model_validator(mode="after")
    def _budgets_divide(self) -> BeamSettings:
        bad = [b for b in self.budgets if b % self.beam_width]
        if bad:
            raise ValueError(f"budgets {bad} are not multiples of beam_width {self.beam_width}")
        return self

    def expected_rows(self, problems: int) -> int | None:
        return None  # between N / M and N finished leaves per problem


def search_beam(trees: list[Tree], *, settings: BeamSettings, expand: Expand) -> list[list[SearchNode]]:
    beams = settings.budget // settings.beam_width
    finished = {id(t): 0 for t in trees}

    def keep_best(tree: Tree, fresh: list[SearchNode]) -> list[tuple[SearchNode, int]]:
        finished[id(tree)] += sum(node.terminal for node in fresh)
        ranked = sorted((n for n in fresh if not n.terminal), key=lambda n: (-(n.score or 0.0), n.node_id))
        keep = max(beams - finished[id(tree)], 0)
        for node in ranked[keep:]:
            node.finish = "pruned"
        return [(node, settings.beam_width) for node in ranked[:keep]]

    search_by_depth(trees, budget=settings.budget, expand=expand, choose=keep_best)
    return [[node for node in tree.nodes if node.terminal] for tree in trees]


run_beam = TreeStrategy(search_beam)
