"""The options of the Serve app, checked once: replicas or autoscaling, and the ``/sql`` limits.
``build_app(**options)``, ``app_builder``'s ``key=value`` arguments and the command line's flags
all come through ``ServeOptions``.

What it leaves out: the flags themselves (``sweep/serve/cli.py``), and the app that the options
configure (``sweep/serve/app.py``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from analysis.sandbox import DEFAULT_MAX_ROWS, DEFAULT_MEMORY_LIMIT, DEFAULT_TIMEOUT_S


class ServeOptions(BaseModel):
    """Options of the Serve app: ``build_app(**options)``, ``app_builder``'s ``key=value`` args, CLI flags."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    output: str = Field(description="The sweep's results folder.")
    run: str | None = Field(
        default=None, description="Run id whose grid /sql, /report and /solve read; default: the latest."
    )
    num_replicas: int | None = Field(
        default=None, ge=1, le=1024, description="Fixed replica count (default 1)."
    )
    min_replicas: int | None = Field(
        default=None, ge=0, le=1024, description="Autoscaling floor (needs max_replicas)."
    )
    max_replicas: int | None = Field(
        default=None, ge=1, le=1024, description="Autoscaling ceiling; setting it turns autoscaling on."
    )
    target_ongoing_requests: float = Field(default=8.0, gt=0, description="Autoscaling target per replica.")
    max_ongoing_requests: int = Field(
        default=32, ge=1, le=10_000, description="Requests one replica runs at once."
    )
    sql_max_rows: int | None = Field(
        default=DEFAULT_MAX_ROWS, ge=1, description="/sql row cap; None lifts it."
    )
    sql_timeout_s: float | None = Field(
        default=DEFAULT_TIMEOUT_S, gt=0, description="/sql statement timeout; None lifts it."
    )
    sql_memory_limit: str = Field(
        default=DEFAULT_MEMORY_LIMIT, description="DuckDB memory limit of one replica's queries."
    )

    @field_validator("run", "sql_max_rows", "sql_timeout_s", mode="before")
    @classmethod
    def _none_spelled_out(cls, value: Any) -> Any:
        # `serve run ... sql_timeout_s=none` passes strings.
        return None if isinstance(value, str) and value.strip().lower() in ("", "none", "null") else value

    @model_validator(mode="after")
    def _one_scaling_mode(self) -> ServeOptions:
        if self.max_replicas is None and self.min_replicas is not None:
            raise ValueError("min_replicas needs max_replicas (autoscaling)")
        if self.max_replicas is not None and self.num_replicas is not None:
            raise ValueError("set num_replicas (fixed) or min_replicas/max_replicas (autoscaling), not both")
        if self.max_replicas is not None and (self.min_replicas or 0) > self.max_replicas:
            raise ValueError(f"min_replicas {self.min_replicas} is above max_replicas {self.max_replicas}")
        return self

    def deployment_options(self) -> dict[str, Any]:
        """Keyword arguments of ``SweepService.options``."""
        scaling: dict[str, Any]
        if self.max_replicas is not None:
            scaling = {
                "autoscaling_config": {
                    "min_replicas": self.min_replicas if self.min_replicas is not None else 1,
                    "max_replicas": self.max_replicas,
                    "target_ongoing_requests": self.target_ongoing_requests,
                }
            }
        else:
            scaling = {"num_replicas": self.num_replicas or 1}
        return {**scaling, "max_ongoing_requests": self.max_ongoing_requests}
