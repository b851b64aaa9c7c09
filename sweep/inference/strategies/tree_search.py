"""What the tree-search strategies share: their settings and how a tree becomes sample rows.

A tree strategy entry lists ``budgets``; each budget is its own search (one shard kind per
budget), because a search with budget 8 is not a subset of one with budget 16. The leaves a
search returns are its samples: majority, weighted and best-of-n voting then run over them
at n = budget, and their scores are the PRM scores the search computed along each path.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, PositiveInt, field_validator

from sweep.inference.search.tree import ExpansionParams, Tree
from sweep.inference.search.uct import SearchNode
from sweep.inference.strategies.base import GenerationConfig, RawSample, SampleCost, StrategySettings


class TreeSearchSettings(StrategySettings):
    evaluation_fields: ClassVar[frozenset[str]] = frozenset({"label"})

    budgets: list[PositiveInt] = Field(min_length=1, description="Search budgets; one search per budget.")
    reward_model: str = Field(description="The `reward_models:` entry that scores every new step.")
    step_max_tokens: PositiveInt = Field(default=256, description="Token cap of one step.")
    max_tokens: PositiveInt = Field(default=1024, description="Token cap of a whole path, root to leaf.")
    max_depth: PositiveInt = Field(default=32, description="Steps per path at most.")

    @field_validator("budgets")
    @classmethod
    def _sorted_unique(cls, value: list[int]) -> list[int]:
        return sorted(set(value))

    @property
    def n_values(self) -> list[int]:
        return list(self.budgets)

    @property
    def budget(self) -> int:
        assert len(self.budgets) == 1, "a shard's settings carry one budget (see split)"
        return self.budgets[0]

    def split(self) -> list[StrategySettings]:
        return [self.model_copy(update={"budgets": [b]}) for b in self.budgets]

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
