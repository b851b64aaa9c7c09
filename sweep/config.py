"""Typed sweep configuration: grid.yaml is parsed and validated here, once, at the edge.

Each stage declares its own settings: datasets and prompts in ``sweep.data.settings``, models
in ``actors.settings``, each strategy's beside it in ``sweep.inference.strategies`` (with
``GenerationConfig`` in ``strategies.base``). This module composes them into ``SweepConfig``,
adds what only the driver reads (reward models, the scheduler) and checks the rules that span
sections (names, shard sizes, which reward model a strategy reads).

Everything downstream receives these models and never re-reads YAML. Unknown keys are
errors (``extra="forbid"``) so a typo is caught before any Ray or engine starts, and so are
duplicate keys, numbers past the bounds below and non-finite floats. Engine options are not
re-declared: ``engine:`` passes straight to vLLM (``sweep.preflight`` checks its
``max_model_len`` against the token caps). What needs the filesystem (dataset files, local
model folders) is checked by ``load_config``, not by the models: a manifest's config validates
on any machine.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from actors.models import BUILTIN_MODELS, ModelPathError, locate_model
from actors.protocol import DEFAULT_REQUEST_TIMEOUT_S
from actors.settings import ModelConfig
from sweep.data.settings import (
    NAME_PATTERN,
    ArithmeticDataset,
    DatasetConfig,
    FileDataset,
    GenericDataset,
    HuggingFaceDataset,
    PromptConfig,
    Strict,
)
from sweep.inference.scorers.registry import SCORERS, reads_policy
from sweep.inference.strategies import STRATEGIES, StrategySettings
from sweep.inference.strategies.base import MAX_TOKENS, GenerationConfig

# The stages' settings this module composes, importable from here as before the stages split.
__all__ = [
    "ArithmeticDataset",
    "ConfigError",
    "DatasetConfig",
    "FileDataset",
    "GenerationConfig",
    "GenericDataset",
    "HuggingFaceDataset",
    "ModelConfig",
    "PromptConfig",
    "RewardModelConfig",
    "SchedulerConfig",
    "SweepConfig",
    "load_config",
]

# Upper bounds. Generous for the largest real sweeps (large_language_monkeys draws 10,000
# samples per problem; the longest model contexts are about 1M tokens), yet small enough that
# one machine plans the grid and holds one shard's rows in memory: a shard's samples are built
# in one process (problems per shard × samples per problem ≤ MAX_SHARD_ROWS, about 1-4 GB of
# text at a few KB a row). The bounds of a stage's own settings live with them (MAX_TOKENS,
# sweep.data.settings.MAX_PROBLEMS, actors.settings.MAX_REPLICAS).
MAX_SAMPLES = 65_536  # samples, or a search's budget, per problem; also any other per-problem count
MAX_SHARD_SIZE = 65_536  # problems per shard
MAX_SHARD_ROWS = 1_048_576  # sample rows one shard writes (shard_size × samples per problem)
MAX_CONFIG_BYTES = 16 * 1024 * 1024  # a grid file larger than this is not a grid
# Integer settings of a strategy bounded by something other than MAX_SAMPLES, by field name.
STRATEGY_INT_BOUNDS: dict[str, int] = {
    "max_tokens": MAX_TOKENS,
    "step_max_tokens": MAX_TOKENS,
    "max_depth": MAX_TOKENS,
}


class ConfigError(Exception):
    """A user-caused configuration error; the message names the field or path."""


class RewardModelConfig(ModelConfig):
    """A process reward model, served by engine actors like the policies (same spec, same actor)."""

    kind: str = Field(
        default="step_token", description="Scorer kind, a key of sweep.inference.scorers.registry.SCORERS."
    )
    tag: str | None = Field(
        default=None, description="Text put after each step; the PRM is read there (default: the kind's)."
    )
    good: str | None = Field(default=None, description="step_token: the token whose probability scores a step.")
    bad: str | None = Field(default=None, description="step_token: the competing token (softmax over the two).")
    step_mode: Literal["delimiter", "step_marker"] = "delimiter"
    delimiter: str = Field(default="\n\n", description="Step separator in completions.")

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in SCORERS:
            raise ValueError(f"unknown reward model kind {value!r}; known: {sorted(SCORERS)}")
        return value

    @property
    def reads_policy(self) -> bool:
        """The kind scores with the policy's own engine: no model, no engine of its own."""
        return reads_policy(self.kind)

    def scorer_settings(self) -> dict[str, str]:
        """The scorer's keyword settings; unset ones take the kind's own defaults."""
        return self.model_dump(include={"kind", "tag", "good", "bad", "step_mode", "delimiter"}, exclude_none=True)


class SchedulerConfig(Strict):
    shard_size: int = Field(default=16, gt=0, le=MAX_SHARD_SIZE, description="Problems per shard.")
    max_inflight_per_engine: int = Field(
        default=3, gt=0, le=1024, description="Shards queued on one engine replica."
    )
    max_attempts: int = Field(default=3, gt=0, le=100, description="Tries per shard before the sweep fails.")
    engine_max_restarts: int = Field(
        default=3, ge=0, le=1000, description="Ray restarts of a dead engine actor."
    )
    request_timeout_s: float = Field(
        default=DEFAULT_REQUEST_TIMEOUT_S,
        gt=0,
        le=7 * 24 * 3600,
        description="Deadline of one engine call, in seconds: the engine aborts what is still running "
        "then (error rows); the shard's wait ends 2 min later (the shard is retried).",
    )


class SweepConfig(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    output: str = Field(description="Results folder: a local path or a pyarrow filesystem URI.")
    seed: int = Field(
        default=0,
        ge=0,
        le=2**32 - 1,
        description="Engine seed (vLLM takes 0..2^32-1); shard seeds derive from it.",
    )
    models: list[ModelConfig] = Field(min_length=1)
    datasets: list[DatasetConfig] = Field(min_length=1)
    strategies: list[StrategySettings] = Field(min_length=1)
    reward_models: list[RewardModelConfig] = Field(
        default_factory=list, description="PRMs that strategies name with `reward_model:`."
    )
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)

    @field_validator("output")
    @classmethod
    def _output_given(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("empty; give a results folder (it would write into the working directory)")
        return value

    @field_validator("strategies", mode="before")
    @classmethod
    def _parse_strategies(cls, value: Any) -> Any:
        """Validate each entry against the settings model its registered name declares."""
        if not isinstance(value, list):
            return value
        parsed = []
        for index, entry in enumerate(value):
            if not isinstance(entry, dict) or "name" not in entry:
                raise ValueError(f"entry {index} needs a `name` (one of {sorted(STRATEGIES)})")
            name = entry["name"]
            if name not in STRATEGIES:
                raise ValueError(f"entry {index}: unknown strategy {name!r}; known: {sorted(STRATEGIES)}")
            try:
                settings = STRATEGIES[name].settings.model_validate(entry)
            except ValidationError as exc:
                raise ValueError(f"entry {index} ({name}): {_format_errors(exc)}") from None
            problems = _out_of_bounds(settings.model_dump())
            if problems:
                raise ValueError(f"entry {index} ({name}): {'; '.join(problems)}")
            parsed.append(settings)
        return parsed

    def reward_engines(self) -> list[RewardModelConfig]:
        """The reward models that run on engines of their own (the rest read the policy's)."""
        return [r for r in self.reward_models if not r.reads_policy]

    @model_validator(mode="after")
    def _unique_labels(self) -> SweepConfig:
        for kind, labels in (
            ("models", [m.name for m in self.models]),
            ("datasets", [d.name for d in self.datasets]),
            ("strategies", [s.label for s in self.strategies]),
            ("reward_models", [r.name for r in self.reward_models]),
        ):
            duplicates = sorted({x for x in labels if labels.count(x) > 1})
            if duplicates:
                raise ValueError(f"{kind}: duplicate names {duplicates}")
        for strategy in self.strategies:
            rows = self.scheduler.shard_size * strategy.n_max
            if rows > MAX_SHARD_ROWS:
                raise ValueError(
                    f"scheduler.shard_size: {self.scheduler.shard_size} problems × {strategy.n_max} samples "
                    f"(strategies.{strategy.label}) is {rows} rows a shard, above the limit "
                    f"{MAX_SHARD_ROWS}; "
                    f"lower shard_size to at most {MAX_SHARD_ROWS // strategy.n_max}"
                )
        known = {r.name: r for r in self.reward_models}
        for strategy in self.strategies:
            wanted = strategy.reward_model
            if wanted is not None and wanted not in known:
                raise ValueError(
                    f"strategies.{strategy.label}.reward_model: unknown reward model {wanted!r}; "
                    f"declared: {sorted(known)}"
                )
            if strategy.steps_at_delimiter and known[strategy.reward_model].step_mode != "delimiter":
                raise ValueError(
                    f"strategies.{strategy.label}: tree search stops each step at the reward model's "
                    f"delimiter; reward_models.{wanted}.step_mode must be 'delimiter'"
                )
        return self


def _out_of_bounds(value: Any, field: str = "", bound: int = MAX_SAMPLES) -> list[str]:
    """What in a strategy's dumped settings is non-finite or above its bound, by field path.

    Every float must be finite; every integer is a count per problem (≤ MAX_SAMPLES) unless
    STRATEGY_INT_BOUNDS names its field. A strategy's new fields are covered without a change here.
    """
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            path = f"{field}.{key}" if field else str(key)
            if isinstance(key, int) and not isinstance(key, bool):
                found += _out_of_bounds(key, f"{path} (key)", bound)
            found += _out_of_bounds(item, path, STRATEGY_INT_BOUNDS.get(str(key), bound))
        return found
    if isinstance(value, list | tuple):
        return [p for item in value for p in _out_of_bounds(item, field, bound)]
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{field}: must be a finite number, got {value}"]
    if isinstance(value, int) and not isinstance(value, bool) and value > bound:
        return [f"{field}: {value} is above the limit {bound}"]
    return []


def _format_errors(exc: ValidationError) -> str:
    return "; ".join(_format_error(err) for err in exc.errors())


def _format_error(err: Any) -> str:
    where = ".".join(str(p) for p in err["loc"])
    # A validator's own message already names its field; pydantic's "Value error, " adds nothing.
    own = err["type"] == "value_error" and "error" in err.get("ctx", {})
    message = str(err["ctx"]["error"]) if own else err["msg"]
    return f"{where}: {message}" if where else message


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (yaml lets the last win).

    Keys brought in by a merge (``<<: *anchor``) may be overridden: that is what merges are for.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}  # key -> its line
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
                seen[key] = key_node.start_mark.line
            except TypeError:
                continue  # an unhashable key: the base class reports it
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"duplicate key {key!r} on line {key_node.start_mark.line + 1} "
                    f"(first given on line {first + 1})",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path) -> Any:
    """The grid file's YAML document; ConfigError for anything that is not a readable text grid."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: {size} bytes is not a grid file (the limit is {MAX_CONFIG_BYTES})")
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not a text file (invalid UTF-8 at byte {exc.start}); give the grid YAML"
        ) from None
    if "\x00" in text:
        raise ConfigError(f"{path}: not a text file (it holds NUL bytes); give the grid YAML")
    stream = io.StringIO(text)
    stream.name = str(path)  # type: ignore[misc]  # yaml's error marks name the file
    try:
        return yaml.load(stream, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid YAML: nested too deeply") from None


def load_config(path: str | Path) -> SweepConfig:
    """Read and validate a grid YAML; raise ConfigError naming the path or field."""
    path = Path(path)
    raw = _read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        config = SweepConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_format_errors(exc)}") from None
    for section, model in [("models", m) for m in config.models] + [
        ("reward_models", r) for r in config.reward_models
    ]:
        reads_policy = section == "reward_models" and model.reads_policy  # no model of its own
        if model.path is None and model.name not in BUILTIN_MODELS and not reads_policy:
            raise ConfigError(
                f"{path}: {section}.{model.name}: unknown model; give `path:` or use a built-in name "
                f"({sorted(BUILTIN_MODELS)})"
            )
        if model.path is not None:
            try:
                locate_model(model.path)
            except ModelPathError as exc:
                raise ConfigError(f"{path}: {section}.{model.name}.path: {exc}") from None
    datasets = []
    for dataset in config.datasets:
        data_path = dataset.data_file
        if data_path is not None:
            # Relative paths resolve against the working directory, then the config's folder.
            candidates = [data_path] if data_path.is_absolute() else [data_path, path.parent / data_path]
            found = next((c for c in candidates if c.is_file()), None)
            if found is None:
                raise ConfigError(f"{path}: datasets.{dataset.name}.path: no such file {data_path}")
            dataset = dataset.model_copy(update={"path": found.resolve()})
        datasets.append(dataset)
    return config.model_copy(update={"datasets": datasets})
