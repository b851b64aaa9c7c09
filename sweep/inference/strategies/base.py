"""The shared shape of a strategy: its settings base class, its output row and its signature."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from actors.protocol import Engine, GenerationResult
from sweep.data.prompting import PromptedProblem
from sweep.data.settings import Strict
from sweep.inference.scorers import Scorer
from sweep.inference.search.tree import Tree

MAX_TOKENS = 1_048_576  # tokens of one completion, step or search path


class GenerationConfig(Strict):
    """The grid's ``generation:`` section: what every strategy's requests share."""

    max_tokens: int = Field(
        default=512,
        gt=0,
        le=MAX_TOKENS,
        description="Completion token cap of flat strategies' samples; below every model's context.",
    )
    stop: list[str] = Field(default_factory=list, description="Extra stop strings.")


class StrategySettings(BaseModel):
    """Base of every strategy's settings; subclasses add their own fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Fields that only change how stored samples are evaluated, not what is generated.
    evaluation_fields: ClassVar[frozenset[str]] = frozenset({"label"})

    # Shared fields a strategy keeps at its own defaults instead of taking them from the grid
    # (greedy: temperature 0, no reward model). They are refused in its entry and left out of its
    # dumps, so its shard ids are what they were before the fields were shared.
    fixed: ClassVar[frozenset[str]] = frozenset()

    name: str = Field(description="Registered strategy name.")
    label: str = Field(
        default="", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="Results label; defaults to name."
    )
    # Declared here once, for every strategy, so that no reader probes for them.
    reward_model: str | None = Field(
        default=None, description="A `reward_models:` entry that scores every sample step by step."
    )
    temperature: float = Field(default=1.0, gt=0, description="Sampling temperature (> 0).")
    top_p: float = Field(default=1.0, gt=0, le=1)

    @model_validator(mode="before")
    @classmethod
    def _default_label(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        refused = sorted(cls.fixed & data.keys())
        if refused:
            kept = ", ".join(f"{k}={cls.model_fields[k].default!r}" for k in refused)
            raise ValueError(f"{data.get('name')} takes no {', '.join(refused)} (it runs with {kept})")
        if not data.get("label"):
            data = {**data, "label": data.get("name", "")}
        return data

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        schema = handler(core_schema)
        for key in cls.fixed:  # refused in an entry: not part of what a grid may say
            schema.get("properties", {}).pop(key, None)
        return schema

    @model_serializer(mode="wrap")
    def _without_fixed(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        dumped = handler(self)
        for key in self.fixed:
            dumped.pop(key, None)
        return dumped

    @property
    def n_values(self) -> list[int]:
        """Sample counts evaluated from one generation of ``n_max`` samples."""
        return [1]

    @property
    def n_max(self) -> int:
        return max(self.n_values)

    # Whether each step stops at the reward model's delimiter (tree search); config then requires
    # the reward model to split steps the same way.
    steps_at_delimiter: ClassVar[bool] = False

    def sampling(self, generation: GenerationConfig, *, n: int) -> dict[str, Any]:
        """vLLM's sampling parameters of one request of this strategy that draws ``n`` samples."""
        return {
            "n": n,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": generation.max_tokens,
            "stop": list(generation.stop) or None,
        }

    def token_caps(self, generation: GenerationConfig) -> dict[str, int]:
        """Every token cap this strategy's requests run under, by the grid field that sets it."""
        return {"generation.max_tokens": generation.max_tokens}

    def generated_tokens_cap(self, generation: GenerationConfig) -> int:
        """The most tokens one sample generates after its prompt."""
        return generation.max_tokens

    def drawing(self, n: int) -> StrategySettings | None:
        """The settings of one run that draws exactly ``n`` samples (or searches budget ``n``);
        None when this strategy cannot."""
        return next((kind for kind in self.split() if kind.n_max == n), None)

    def split(self) -> list[StrategySettings]:
        """The settings of each shard kind: one, or one per budget for tree search."""
        return [self]

    def expected_rows(self, problems: int) -> int | None:
        """Sample rows a shard of ``problems`` writes; None when the search decides."""
        return problems * self.n_max

    def generation_identity(self) -> dict[str, Any]:
        """What determines the generated samples; part of the shard id."""
        return {**self.model_dump(exclude=set(self.evaluation_fields)), "n_max": self.n_max}


def sorted_unique(name: str) -> Any:
    """A validator of the list field ``name`` that sorts it and drops repeats (sample counts,
    budgets): ``[4, 1, 4]`` and ``[1, 4]`` are one entry, with one shard id. Assign it in the
    settings class body: ``_sorted_unique = sorted_unique("n")``."""

    def _sorted_unique(cls: type, value: list[int]) -> list[int]:
        return sorted(set(value))

    return field_validator(name)(classmethod(_sorted_unique))


@dataclass(frozen=True)
class RawSample:
    """One generated sample before grading and FLOPs accounting."""

    problem_id: str
    sample_index: int
    prompt: str
    prompt_tokens: int
    completion: str
    completion_tokens: int
    finish_reason: str | None
    cumulative_logprob: float | None
    latency_s: float
    seed: int | None
    error: str | None
    step_scores: list[float] | None = None  # scored during the search (tree search)
    budget: int | None = None  # the tree search's budget; None for flat strategies
    node_id: int | None = None  # the leaf's node in the nodes table
    cost: SampleCost | None = None  # tree search: this leaf's share of its tree's compute
    round: int | None = None  # adaptive sampling: the round that drew it (0 first)
    stop_reason: str | None = None  # adaptive sampling: why its problem stopped drawing

    def tokens(self, kind: str) -> float:
        """The tokens of ``kind`` (a ``SampleCost`` field) this sample is charged: with a ``cost``
        (tree search, adaptive sampling), that; else its own prompt and completion, with no re-sent
        context and no reward-model read yet (the runner or ``/solve`` scores it afterwards)."""
        if self.cost is not None:
            return float(getattr(self.cost, kind))
        return 0.0 if kind in ("context_tokens", "reward_tokens") else float(getattr(self, kind))

    @classmethod
    def drawn(
        cls, result: GenerationResult, index: int, *, problem_id: str, sample_index: int, **extra: Any
    ) -> RawSample:
        """Completion ``index`` of a request's ``result`` as a sample; a completion the request did
        not return (it failed) is a row carrying the request's error."""
        completion = result.completions[index] if index < len(result.completions) else None
        return cls(
            problem_id=problem_id,
            sample_index=sample_index,
            prompt=result.prompt,
            prompt_tokens=result.prompt_tokens,
            completion=completion.text if completion else "",
            completion_tokens=completion.tokens if completion else 0,
            finish_reason=completion.finish_reason if completion else None,
            cumulative_logprob=completion.cumulative_logprob if completion else None,
            latency_s=result.latency_s,
            seed=result.seed,
            error=(result.error or "missing completion") if completion is None else None,
            **extra,
        )


@dataclass(frozen=True)
class SampleCost:
    """Tokens charged to one leaf. The root prompt is charged once per problem, as for a sampled
    request; the rest are its tree's totals spread evenly over the tree's leaves, so a problem's
    leaves sum to exactly what its search computed (the nodes table has each node's)."""

    prompt_tokens: float  # the root prompt, whole, whether or not the prefix cache held it
    completion_tokens: float
    context_tokens: float  # re-encoded by continuation requests: prefix-cache misses beyond the root
    reward_tokens: float


@dataclass
class StrategyOutput:
    samples: list[RawSample]
    trees: list[Tree] = field(default_factory=list)  # tree search: every node, for the nodes table


class StrategyFn(Protocol):
    def __call__(
        self,
        problems: list[PromptedProblem],
        *,
        settings: Any,
        engine: Engine,
        scorer: Scorer | None,
        generation: GenerationConfig,
        seed: int,
    ) -> StrategyOutput: ...


@dataclass(frozen=True)
class Strategy:
    settings: type[StrategySettings]
    run: StrategyFn
