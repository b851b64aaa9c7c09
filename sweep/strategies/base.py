"""The shared shape of a strategy: its settings base class, its output row and its signature."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from actors.protocol import Engine
    from sweep.config import GenerationConfig
    from sweep.prompting import PromptedProblem


class StrategySettings(BaseModel):
    """Base of every strategy's settings; subclasses add their own fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Fields that only change how stored samples are evaluated, not what is generated.
    evaluation_fields: ClassVar[frozenset[str]] = frozenset({"label"})

    name: str = Field(description="Registered strategy name.")
    label: str = Field(
        default="", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="Results label; defaults to name."
    )

    @model_validator(mode="before")
    @classmethod
    def _default_label(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("label"):
            data = {**data, "label": data.get("name", "")}
        return data

    @property
    def n_values(self) -> list[int]:
        """Sample counts evaluated from one generation of ``n_max`` samples."""
        return [1]

    @property
    def n_max(self) -> int:
        return max(self.n_values)

    def generation_identity(self) -> dict[str, Any]:
        """What determines the generated samples; part of the shard id."""
        return {**self.model_dump(exclude=set(self.evaluation_fields)), "n_max": self.n_max}


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


class StrategyFn(Protocol):
    def __call__(
        self,
        problems: list[PromptedProblem],
        *,
        settings: Any,
        engine: Engine,
        generation: GenerationConfig,
        seed: int,
    ) -> list[RawSample]: ...


@dataclass(frozen=True)
class Strategy:
    settings: type[StrategySettings]
    run: StrategyFn
