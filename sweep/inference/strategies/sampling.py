"""Greedy decoding and seeded sampling: one request per problem drawing ``n_max`` samples.

Every n ≤ n_max in the grid is evaluated later from subsets of these samples (majority
voting, and in later strategies best-of-n and weighted voting), so the sample-count axis
never regenerates.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, PositiveInt

from actors.protocol import Engine, GenerationRequest
from sweep.data.prompting import PromptedProblem
from sweep.inference.scorers import Scorer
from sweep.inference.strategies.base import (
    GenerationConfig,
    RawSample,
    StrategyOutput,
    StrategySettings,
    sorted_unique,
)


class GreedySettings(StrategySettings):
    fixed: ClassVar[frozenset[str]] = frozenset({"reward_model", "temperature", "top_p"})

    name: Literal["greedy"]
    temperature: float = Field(default=0.0, ge=0, le=0, description="Greedy decoding: always 0.")


class SamplingSettings(StrategySettings):
    name: Literal["sampling"]
    evaluation_fields: ClassVar[frozenset[str]] = frozenset({"label", "n"})
    n: list[PositiveInt] = Field(min_length=1, description="Sample counts evaluated; n_max are drawn once.")

    _sorted_unique = sorted_unique("n")

    @property
    def n_values(self) -> list[int]:
        return list(self.n)

    def drawing(self, n: int) -> StrategySettings | None:
        """Any count: one request draws them (up to n_max, the sweep's draws are a superset)."""
        return self.model_copy(update={"n": [n]}) if n > 0 else None


def run_sampling(
    problems: list[PromptedProblem],
    *,
    settings: GreedySettings | SamplingSettings,
    engine: Engine,
    scorer: Scorer | None = None,
    generation: GenerationConfig,
    seed: int,
) -> StrategyOutput:
    """One request per problem, all sent in one batch; one RawSample per completion.

    Samples are scored after generation (by the runner), not here: ``scorer`` is unused."""
    sampling = settings.sampling(generation, n=settings.n_max)
    requests = [
        GenerationRequest(
            request_id=p.problem.problem_id,
            messages=p.messages,
            prompt=p.prompt,
            sampling=sampling,
            seed=seed + index,
        )
        for index, p in enumerate(problems)
    ]
    results = engine.generate(requests)
    samples: list[RawSample] = []
    for problem, result in zip(problems, results, strict=True):
        # A failed request still yields n_max rows, each carrying the error.
        samples.extend(
            RawSample.drawn(result, index, problem_id=problem.problem.problem_id, sample_index=index)
            for index in range(settings.n_max)
        )
    return StrategyOutput(samples)
