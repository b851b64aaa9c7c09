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

from actors.protocol import Engine
from sweep.data.prompting import PromptedProblem
from sweep.inference.scorers import Scorer
from sweep.inference.search.tree import Tree, grow
from sweep.inference.search.uct import SearchNode
from sweep.inference.strategies.base import GenerationConfig, StrategyOutput
from sweep.inference.strategies.tree_search import TreeSearchSettings, leaf_samples


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


def run_beam(
    problems: list[PromptedProblem],
    *,
    settings: BeamSettings,
    engine: Engine,
    scorer: Scorer | None,
    generation: GenerationConfig,
    seed: int,
) -> StrategyOutput:
    assert scorer is not None, "config validation requires a reward model"
    params = settings.expansion(delimiter=scorer.delimiter, generation=generation)
    beams = settings.budget // settings.beam_width
    trees = [Tree(problem=p) for p in problems]
    finished = {id(t): 0 for t in trees}
    frontier: list[tuple[Tree, SearchNode, int]] = [(t, t.root, settings.budget) for t in trees]
    while frontier:
        grown = grow(frontier, engine=engine, params=params, scorer=scorer)
        frontier = []
        for tree in trees:
            fresh = grown.get(id(tree), [])
            finished[id(tree)] += sum(node.terminal for node in fresh)
            ranked = sorted((n for n in fresh if not n.terminal), key=lambda n: (-(n.score or 0.0), n.node_id))
            keep = max(beams - finished[id(tree)], 0)
            for node in ranked[keep:]:
                node.finish = "pruned"
            frontier += [(tree, node, settings.beam_width) for node in ranked[:keep]]
    samples = []
    for tree in trees:
        leaves = [node for node in tree.nodes if node.terminal]
        samples.extend(leaf_samples(tree, leaves, budget=settings.budget, seed=seed))
    return StrategyOutput(samples=samples, trees=trees)
