"""Run one shard: strategy → grading → FLOPs → one Parquet file (plus its prompts). No Ray here.

This is the whole unit of work. It is idempotent: it always writes the same file names,
atomically, so running it twice (a retry, a resumed sweep) never duplicates a row.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import pyarrow as pa

from actors.protocol import Engine
from sweep.config import GenerationConfig
from sweep.flops import forward_flops
from sweep.grading import grade_completions
from sweep.grid import Shard, digest
from sweep.scorers import AGGREGATIONS, RewardEngine, aggregate
from sweep.scorers.registry import build_scorer
from sweep.schema import PROMPTS, SAMPLES
from sweep.storage import ResultsStore
from sweep.strategies import STRATEGIES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunContext:
    """What every shard of one launch shares."""

    run_id: str
    store: ResultsStore
    generation: GenerationConfig
    model_params: dict[str, int]  # model label -> parameter count
    reward_params: dict[str, int] = field(default_factory=dict)  # reward model label -> parameters
    scorers: dict[str, dict[str, str]] = field(default_factory=dict)  # reward model label -> scorer settings


@dataclass(frozen=True)
class ShardReport:
    shard_id: str
    rows: int
    completion_tokens: int
    errors: int
    seconds: float


def run_shard(
    shard: Shard, *, engine: Engine, context: RunContext, reward_engine: RewardEngine | None = None
) -> ShardReport:
    start = time.perf_counter()
    strategy = STRATEGIES[shard.strategy.name]
    samples = strategy.run(
        list(shard.problems),
        settings=shard.strategy,
        engine=engine,
        generation=context.generation,
        seed=shard.seed,
    )
    by_id = {p.problem.problem_id: p.problem for p in shard.problems}
    grades = grade_completions([s.completion for s in samples], [by_id[s.problem_id] for s in samples])
    params = context.model_params[shard.model]
    reward = _score(shard, samples, reward_engine, context)
    prompt_ids = {s.problem_id: digest(s.prompt) for s in samples}

    table = pa.table(
        {
            "run_id": [context.run_id] * len(samples),
            "shard_id": [shard.shard_id] * len(samples),
            "model": [shard.model] * len(samples),
            "model_params": [params] * len(samples),
            "strategy": [shard.strategy.label] * len(samples),
            "dataset": [shard.dataset] * len(samples),
            "problem_id": [s.problem_id for s in samples],
            "prompt_id": [prompt_ids[s.problem_id] for s in samples],
            "sample_index": [s.sample_index for s in samples],
            "seed": [s.seed for s in samples],
            "temperature": [float(shard.strategy.temperature)] * len(samples),
            "completion": [s.completion for s in samples],
            "extracted_answer": [g.extracted for g in grades],
            "answer_key": [g.key for g in grades],
            "correct": [g.correct and s.error is None for g, s in zip(grades, samples, strict=True)],
            "prompt_tokens": [s.prompt_tokens for s in samples],
            "completion_tokens": [s.completion_tokens for s in samples],
            "finish_reason": [s.finish_reason for s in samples],
            "cumulative_logprob": [s.cumulative_logprob for s in samples],
            "prompt_flops": [forward_flops(params, s.prompt_tokens) for s in samples],
            "completion_flops": [forward_flops(params, s.completion_tokens) for s in samples],
            "latency_s": [s.latency_s for s in samples],
            "error": [s.error for s in samples],
            **reward,
        },
        schema=SAMPLES,
    )
    if table.num_rows != shard.expected_rows:
        raise RuntimeError(f"shard {shard.shard_id}: {table.num_rows} rows, expected {shard.expected_rows}")

    first = {}
    for s in samples:
        first.setdefault(s.problem_id, s)
    prompts = pa.table(
        {
            "model": [shard.model] * len(first),
            "dataset": [shard.dataset] * len(first),
            "problem_id": list(first),
            "prompt_id": [prompt_ids[k] for k in first],
            "prompt": [s.prompt for s in first.values()],
            "prompt_tokens": [s.prompt_tokens for s in first.values()],
        },
        schema=PROMPTS,
    )
    store = context.store
    # Prompts first: a complete samples file then always has its prompts beside it.
    store.write_table(store.prompts_path(shard.model, digest(sorted(set(prompt_ids.values())))), prompts, schema=PROMPTS)
    store.write_table(
        store.samples_path(shard.model, shard.strategy.label, shard.shard_id),
        table,
        schema=SAMPLES,
        shard_id=shard.shard_id,
    )
    return ShardReport(
        shard_id=shard.shard_id,
        rows=table.num_rows,
        completion_tokens=sum(s.completion_tokens for s in samples),
        errors=sum(s.error is not None for s in samples),
        seconds=time.perf_counter() - start,
    )


def _score(
    shard: Shard, samples: list, reward_engine: RewardEngine | None, context: RunContext
) -> dict[str, list]:
    """The reward columns: per-step scores and aggregates, or nulls when the strategy names no PRM."""
    name = getattr(shard.strategy, "reward_model", None)
    if name is None:
        return {
            "reward_model": [None] * len(samples),
            "step_scores": [None] * len(samples),
            **{f"score_{a}": [None] * len(samples) for a in AGGREGATIONS},
            "reward_flops": [0.0] * len(samples),
        }
    assert reward_engine is not None, "the scheduler passes the reward model's engine"
    settings = {k: v for k, v in context.scorers[name].items() if k != "kind"}
    scorer = build_scorer(context.scorers[name]["kind"], engine=reward_engine, settings=settings)
    scored = scorer.score([(s.prompt, s.completion) for s in samples])
    aggregates = [aggregate(r.scores) for r in scored]
    params = context.reward_params[name]
    return {
        "reward_model": [name] * len(samples),
        "step_scores": [r.scores for r in scored],
        **{f"score_{a}": [agg[a] for agg in aggregates] for a in AGGREGATIONS},
        "reward_flops": [forward_flops(params, r.reward_tokens) for r in scored],
    }
