"""The grid: models × strategies × problem chunks, as shards with deterministic ids.

A shard is the unit of work and of output: one Parquet file. Its id hashes everything that
determines its output (model identity, strategy settings, generation settings, prompt
settings and the exact prompts, the seed), so a rerun maps to the same file names and skips
what exists, and a changed setting maps to new files. The same identity without the problem
chunk is the shard's grid cell (``config_id``), stored on every row so grids stay apart. Problems are sorted before chunking so ids are stable
across machines.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sweep.config import GenerationConfig, SweepConfig
from sweep.data.prompting import PromptedProblem
from sweep.inference.strategies import StrategySettings


@dataclass(frozen=True)
class Shard:
    shard_id: str
    model: str
    strategy: StrategySettings
    dataset: str
    problems: tuple[PromptedProblem, ...]
    seed: int
    config_id: str = ""  # hash of ``settings``: the grid cell every row of this shard belongs to
    settings: str = "{}"  # JSON of what decides the rows' content, the problems aside

    @property
    def expected_rows(self) -> int | None:
        """Sample rows this shard writes; None when a search decides (MCTS)."""
        return self.strategy.expected_rows(len(self.problems))


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def digest(value: Any, length: int = 16) -> str:
    """A short, stable hash of a JSON-able value."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:length]


def build_shards(
    config: SweepConfig,
    *,
    prompted: dict[str, list[PromptedProblem]],
    model_identity: dict[str, dict[str, Any]],
    reward_identity: dict[str, dict[str, Any]] | None = None,
) -> list[Shard]:
    """All shards of the grid, in a deterministic order."""
    shards: list[Shard] = []
    size = config.scheduler.shard_size
    for model in config.models:
        for strategy in (kind for entry in config.strategies for kind in entry.split()):
            for dataset in config.datasets:
                ordered = sorted(prompted[dataset.name], key=lambda p: p.problem.problem_id)
                for start in range(0, len(ordered), size):
                    chunk = tuple(ordered[start : start + size])
                    identity = _shard_identity(
                        model=model_identity[model.name],
                        reward=(reward_identity or {}).get(strategy.reward_model or ""),
                        strategy=strategy,
                        generation=config.generation,
                        dataset=dataset.name,
                        prompt=dataset.prompt.model_dump(mode="json"),
                        chunk=chunk,
                        seed=config.seed,
                    )
                    shard_id = digest(identity)
                    cell = {k: v for k, v in identity.items() if k != "problems"}
                    shards.append(
                        Shard(
                            shard_id=shard_id,
                            model=model.name,
                            strategy=strategy,
                            dataset=dataset.name,
                            problems=chunk,
                            # Seeds derive from the shard's identity: stable, and distinct per shard.
                            seed=int(digest([config.seed, shard_id], 8), 16) % (2**31 - 1),
                            config_id=digest(cell),
                            settings=canonical_json(cell),
                        )
                    )
    return shards


def _shard_identity(
    *,
    model: dict[str, Any],
    reward: dict[str, Any] | None,
    strategy: StrategySettings,
    generation: GenerationConfig,
    dataset: str,
    prompt: dict[str, Any],
    chunk: tuple[PromptedProblem, ...],
    seed: int,
) -> dict[str, Any]:
    identity = {
        "model": model,
        "strategy": strategy.generation_identity(),
        "generation": generation.model_dump(),
        "dataset": dataset,
        "prompt": prompt,
        "problems": [
            [p.problem.problem_id, p.problem.answer, p.problem.grader, p.messages, p.prompt] for p in chunk
        ],
        "seed": seed,
    }
    if reward is not None:  # scores are part of the output; without one, ids stay as they were
        identity["reward"] = reward
    return identity
