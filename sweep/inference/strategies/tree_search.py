"""What the tree-search strategies share: settings, a driver, and how a tree becomes sample rows.

A tree strategy entry lists ``budgets``; each budget is its own search (one shard kind per
budget), because a search with budget 8 is not a subset of one with budget 16. The leaves a
search returns are its samples: majority, weighted and best-of-n voting then run over them
at n = budget, and their scores are the PRM scores the search computed along each path.

Each strategy module (``beam``, ``rebase``, ``mcts``) writes only its search: which nodes of
every problem's tree grow next, and which leaves the search returns. ``TreeStrategy`` turns
such a search into a strategy with the shared signature: it plants one tree per problem,
hands the search a batched ``expand`` (generate, then score with the PRM, see
``sweep/inference/search/tree.py``) and writes the leaves as samples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar, Protocol

from pydantic import Field, PositiveInt

from actors.protocol import Engine
from sweep.data.prompting import PromptedProblem
from sweep.inference.scorers import Scorer
from sweep.inference.search.tree import ExpansionParams, Tree, grow
from sweep.inference.search.uct import SearchNode
from sweep.inference.strategies.base import (
    GenerationConfig,
    RawSample,
    SampleCost,
    StrategyOutput,
    StrategySettings,
    sorted_unique,
)

# One search step for every tree at once: (tree, node, children) requests -> id(tree) -> its
# new nodes, each scored by the PRM (``grow`` with the engine, expansion and scorer bound).
Expand = Callable[[list[tuple[Tree, SearchNode, int]]], dict[int, list[SearchNode]]]


class TreeSearchSettings(StrategySettings):
    evaluation_fields: ClassVar[frozenset[str]] = frozenset({"label"})

    budgets: list[PositiveInt] = Field(min_length=1, description="Search budgets; one search per budget.")
    reward_model: str = Field(description="The `reward_models:` entry that scores every new step.")
    step_max_tokens: PositiveInt = Field(default=256, description="Token cap of one step.")
    max_tokens: PositiveInt = Field(default=1024, description="Token cap of a whole path, root to leaf.")
    max_depth: PositiveInt = Field(default=32, description="Steps per path at most.")

    _sorted_unique = sorted_unique("budgets")

    @property
    def n_values(self) -> list[int]:
        return list(self.budgets)

    @property
    def budget(self) -> int:
        assert len(self.budgets) == 1, "a shard's settings carry one budget (see split)"
        return self.budgets[0]

    def split(self) -> list[StrategySettings]:
        return [self.model_copy(update={"budgets": [b]}) for b in self.budgets]

    steps_at_delimiter: ClassVar[bool] = True

    def token_caps(self, generation: GenerationConfig) -> dict[str, int]:
        return {
            f"strategies.{self.label}.max_tokens": self.max_tokens,
            f"strategies.{self.label}.step_max_tokens": self.step_max_tokens,
        }

    def generated_tokens_cap(self, generation: GenerationConfig) -> int:
        return self.max_tokens  # a whole path, root to leaf

    def expansion(self, *, delimiter: str, generation: GenerationConfig) -> ExpansionParams:
        return ExpansionParams(
            temperature=self.temperature,
            top_p=self.top_p,
            step_max_tokens=self.step_max_tokens,
            max_tokens=self.max_tokens,
            max_depth=self.max_depth,
            delimiter=delimiter,
            stop=tuple(generation.stop),
        )

    def generation_identity(self) -> dict[str, Any]:
        return self.model_dump(exclude=set(self.evaluation_fields))


def leaf_samples(tree: Tree, leaves: list[SearchNode], *, budget: int, seed: int) -> list[RawSample]:
    """One sample row per leaf; the tree's compute is spread evenly over its leaves.

    The root prompt is charged whole, as sampling charges its prompt: the first expansion's
    uncached context is that prompt (or less, when the prefix cache held it), so it is not
    counted again as context. Later expansions re-send the prompt and the path; what the
    prefix cache did not serve of those is ``context_tokens``."""
    generated = sum(n.tokens for n in tree.nodes)
    context = sum(n.context_tokens for n in tree.nodes if n.parent is not None and n.parent.parent is not None)
    reward = sum(n.reward_tokens for n in tree.nodes)
    cost = SampleCost(
        prompt_tokens=tree.prompt_tokens,
        completion_tokens=generated / len(leaves),
        context_tokens=context / len(leaves),
        reward_tokens=reward / len(leaves),
    )
    return [
        RawSample(
            problem_id=tree.problem.problem.problem_id,
            sample_index=index,
            prompt=tree.prompt or "",
            prompt_tokens=tree.prompt_tokens,
            completion=leaf.text,
            completion_tokens=leaf.path_tokens,
            finish_reason=leaf.finish,
            cumulative_logprob=None,
            latency_s=tree.latency_s,
            seed=seed,
            error=leaf.error,
            step_scores=leaf.path_scores,
            budget=budget,
            node_id=leaf.node_id,
            cost=cost,
        )
        for index, leaf in enumerate(leaves)
    ]


def search_by_depth(
    trees: list[Tree],
    *,
    budget: int,
    expand: Expand,
    choose: Callable[[Tree, list[SearchNode]], list[tuple[SearchNode, int]]],
) -> None:
    """Grow every tree a depth at a time (beam search, REBASE): the root into ``budget`` first
    steps; then ``choose(tree, fresh)`` picks which of a tree's new nodes grow, and into how many
    children, until no tree has any left to grow."""
    frontier: list[tuple[Tree, SearchNode, int]] = [(t, t.root, budget) for t in trees]
    while frontier:
        grown = expand(frontier)
        frontier = [(tree, node, k) for tree in trees for node, k in choose(tree, grown.get(id(tree), []))]


class TreeSearch(Protocol):
    def __call__(self, trees: list[Tree], *, settings: Any, expand: Expand) -> list[list[SearchNode]]:
        """Search every tree (one per problem) together; returns each tree's leaves, in its order."""
        ...


@dataclass(frozen=True)
class TreeStrategy:
    """A tree search as a strategy: called with the shared strategy signature."""

    search: TreeSearch

    def __call__(
        self,
        problems: list[PromptedProblem],
        *,
        settings: TreeSearchSettings,
        engine: Engine,
        scorer: Scorer | None,
        generation: GenerationConfig,
        seed: int,
    ) -> StrategyOutput:
        assert scorer is not None, "config validation requires a reward model"
        params = settings.expansion(delimiter=scorer.delimiter, generation=generation)
        trees = [Tree(problem=p) for p in problems]
        expand: Expand = partial(grow, engine=engine, params=params, scorer=scorer)
        leaves = self.search(trees, settings=settings, expand=expand)
        samples = [
            sample
            for tree, found in zip(trees, leaves, strict=True)
            for sample in leaf_samples(tree, found, budget=settings.budget, seed=seed)
        ]
        return StrategyOutput(samples=samples, trees=trees)
