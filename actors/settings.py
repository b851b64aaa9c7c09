"""A model's settings (``models:`` entries): what the engine pool needs to start its actors.

Declared here, beside what reads them (``actors.spec`` resolves an entry into an engine spec);
``sweep.config`` composes them (and extends them for reward models). Engine options pass
straight to vLLM (``engine:``), never re-declared.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"  # the same rule as every label of a grid
MAX_REPLICAS = 1_024  # engine actors of one model


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ModelConfig(Strict):
    name: str = Field(pattern=NAME_PATTERN, description="Label used in results paths and tables.")
    path: str | None = Field(
        default=None,
        description="Local folder or hub id. Optional for built-in names (see actors.models.BUILTIN_MODELS).",
    )
    params: int | None = Field(
        default=None, gt=0, description="Parameter count for FLOPs; read from the model config when absent."
    )
    replicas: int = Field(default=1, ge=1, le=MAX_REPLICAS, description="Engine actors for data parallelism.")
    device: Literal["auto", "cpu", "gpu"] = Field(
        default="auto", description="auto: gpu when the Ray cluster has GPUs, else cpu."
    )
    engine: dict[str, Any] = Field(
        default_factory=dict, description="Keyword arguments passed unchanged to vLLM's engine args."
    )
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment for the engine actor.")
    resources: dict[str, float] = Field(
        default_factory=dict,
        description="Extra Ray resources per engine (per GPU bundle when tensor parallel), e.g. a custom "
        "resource that only one node type of cluster.yaml offers.",
    )

    @field_validator("engine")
    @classmethod
    def _engine_has_no_model(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "model" in value:
            raise ValueError("set the model with `path:`, not engine.model")
        return value

    @property
    def tensor_parallel_size(self) -> int:
        return int(self.engine.get("tensor_parallel_size", 1))
