"""Run one shard: strategy → grading → FLOPs → Parquet files (samples, prompts, tree nodes). No Ray here.

This is the whole unit of work. It is idempotent: it always writes the same file names,
atomically, so running it twice (a retry, a resumed sweep) never duplicates a row. The
samples file is written last: once it exists, the shard's other files exist too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from actors.protocol import Engine, RequestFailed
from sweep.grid import Shard, digest
from sweep.inference.flops import forward_flops
from sweep.inference.grading.graders import grade_completions
from sweep.inference.scorers import AGGREGATIONS, RewardEngine, Scorer, aggregate, score_apart
from sweep.inference.scorers.registry import build_scorer
from sweep.inference.search.tree import Tree
from sweep.inference.search.uct import SearchNode
from sweep.inference.strategies import STRATEGIES, RawSample
from sweep.inference.strategies.base import GenerationConfig
from sweep.results.schema import NODES, PROMPTS, SAMPLES
from sweep.results.store import ResultsStore

log = logging.getLogger(__name__)

# Columns of the samples table that are a field of ``RawSample``, unchanged.
SAMPLE_FIELDS = (
    "problem_id",
    "sample_index",
    "seed",
    "completion",
    "prompt_tokens",
    "completion_tokens",
    "finish_reason",
    "cumulative_logprob",
    "latency_s",
    "error",
    "budget",
    "node_id",
    "round",
    "stop_reason",
)


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
    nodes: int = 0


def run_shard(
    shard: Shard, *, engine: Engine, context: RunContext, reward_engine: RewardEngine | None = None
) -> ShardReport:
    start = time.perf_counter()
    strategy = STRATEGIES[shard.strategy.name]
    reward_name = shard.strategy.reward_model
    scorer = _scorer(reward_name, reward_engine, context)
    output = strategy.run(
        list(shard.problems),
        settings=shard.strategy,
        engine=engine,
        scorer=scorer,
        generation=context.generation,
        seed=shard.seed,
    )
    samples = output.samples
    by_id = {p.problem.problem_id: p.problem for p in shard.problems}
    grades = grade_completions([s.completion for s in samples], [by_id[s.problem_id] for s in samples])
    params = context.model_params[shard.model]
    reward_params = context.reward_params.get(reward_name or "", params)
    reward = _reward_columns(samples, scorer, reward_name, reward_params)
    prompt_ids = {s.problem_id: digest(s.prompt) for s in samples}

    table = pa.table(
        {
            "run_id": [context.run_id] * len(samples),
            "shard_id": [shard.shard_id] * len(samples),
            "config_id": [shard.config_id] * len(samples),
            "settings": [shard.settings] * len(samples),
            "model": [shard.model] * len(samples),
            "model_params": [params] * len(samples),
            "strategy": [shard.strategy.label] * len(samples),
            "dataset": [shard.dataset] * len(samples),
            "prompt_id": [prompt_ids[s.problem_id] for s in samples],
            "temperature": [float(shard.strategy.temperature)] * len(samples),
            "extracted_answer": [g.extracted for g in grades],
            "answer_key": [g.key for g in grades],
            "correct": [g.correct and s.error is None for g, s in zip(grades, samples, strict=True)],
            "prompt_flops": [forward_flops(params, s.tokens("prompt_tokens")) for s in samples],
            "completion_flops": [forward_flops(params, s.tokens("completion_tokens")) for s in samples],
            "context_flops": [forward_flops(params, s.tokens("context_tokens")) for s in samples],
            **reward,
            # The sample's own fields, as they came out of the strategy (column order: the schema's).
            **attribute_columns(samples, *SAMPLE_FIELDS),
        },
        schema=SAMPLES,
    )
    expected = shard.expected_rows
    if expected is not None and table.num_rows != expected:
        raise RuntimeError(f"shard {shard.shard_id}: {table.num_rows} rows, expected {expected}")

    first: dict[str, RawSample] = {}
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
    # Prompts and nodes first: a complete samples file then always has them beside it.
    store.write_table(
        store.prompts_path(shard.model, digest(sorted(set(prompt_ids.values())))), prompts, schema=PROMPTS
    )
    nodes = 0
    if output.trees:
        node_table = nodes_table(
            output.trees, shard=shard, context=context, params=params, reward_params=reward_params
        )
        nodes = node_table.num_rows
        store.write_table(
            store.nodes_path(shard.model, shard.strategy.label, shard.shard_id),
            node_table,
            schema=NODES,
            shard_id=shard.shard_id,
        )
    store.write_table(
        store.samples_path(shard.model, shard.strategy.label, shard.shard_id),
        table,
        schema=SAMPLES,
        shard_id=shard.shard_id,
    )
    return ShardReport(
        shard_id=shard.shard_id,
        rows=table.num_rows,
        completion_tokens=sum(s.completion_tokens for s in samples)
        if not output.trees
        else sum(n.tokens for t in output.trees for n in t.nodes),
        errors=sum(s.error is not None for s in samples),
        seconds=time.perf_counter() - start,
        nodes=nodes,
    )


def attribute_columns(items: Sequence[object], *names: str) -> dict[str, list[Any]]:
    """Table columns read off ``items``, one per attribute: name -> that attribute of each item."""
    return {name: [getattr(item, name) for item in items] for name in names}


def _scorer(name: str | None, reward_engine: RewardEngine | None, context: RunContext) -> Scorer | None:
    if name is None:
        return None
    assert reward_engine is not None, "the scheduler passes the reward model's engine"
    return build_scorer(context.scorers[name], engine=reward_engine)


def _reward_columns(
    samples: list[RawSample], scorer: Scorer | None, name: str | None, params: int
) -> dict[str, list]:
    """Per-step scores and aggregates: from the search, from the scorer, or nulls without a PRM."""
    if scorer is None:
        return {
            "reward_model": [None] * len(samples),
            "step_scores": [None] * len(samples),
            **{f"score_{a}": [None] * len(samples) for a in AGGREGATIONS},
            "reward_flops": [0.0] * len(samples),
        }
    if all(s.step_scores is not None for s in samples):  # tree search scored every step already
        scores = [list(s.step_scores or []) for s in samples]
        tokens = [s.tokens("reward_tokens") for s in samples]
    else:
        # A sample the reward model refuses (too long for its context) keeps null scores; the
        # others of the shard are scored.
        scored = score_apart(scorer.score, [(s.prompt, s.completion) for s in samples])
        refused = sum(isinstance(r, RequestFailed) for r in scored)
        if refused:
            log.warning("%s: the reward model refused %d of %d samples; their scores are null", name, refused,
                        len(samples))
        scores = [None if isinstance(r, RequestFailed) else r.scores for r in scored]
        tokens = [0.0 if isinstance(r, RequestFailed) else float(r.reward_tokens) for r in scored]
    aggregates = [aggregate(v or []) for v in scores]
    return {
        "reward_model": [name] * len(samples),
        "step_scores": scores,
        **{f"score_{a}": [agg[a] for agg in aggregates] for a in AGGREGATIONS},
        "reward_flops": [forward_flops(params, t) for t in tokens],
    }


def nodes_table(
    trees: list[Tree], *, shard: Shard, context: RunContext, params: int, reward_params: int
) -> pa.Table:
    """Every node of every tree, root included; terminal nodes graded like samples."""
    rows = [(tree, node) for tree in trees for node in tree.nodes]
    terminal = [(tree, node) for tree, node in rows if node.terminal]
    grades = grade_completions(
        [node.text for _, node in terminal], [tree.problem.problem for tree, _ in terminal]
    )
    graded = {id(node): grade for (_, node), grade in zip(terminal, grades, strict=True)}
    budget = shard.strategy.n_max

    def column(get: Callable[[Tree, SearchNode], object]) -> list[object]:
        return [get(tree, node) for tree, node in rows]

    return pa.table(
        {
            "run_id": [context.run_id] * len(rows),
            "shard_id": [shard.shard_id] * len(rows),
            "config_id": [shard.config_id] * len(rows),
            "model": [shard.model] * len(rows),
            "strategy": [shard.strategy.label] * len(rows),
            "budget": [budget] * len(rows),
            "dataset": [shard.dataset] * len(rows),
            "problem_id": column(lambda t, n: t.problem.problem.problem_id),
            "tree_id": column(lambda t, n: f"{shard.shard_id}/{t.problem.problem.problem_id}"),
            "node_id": column(lambda t, n: n.node_id),
            "parent_id": column(lambda t, n: n.parent.node_id if n.parent is not None else None),
            "depth": column(lambda t, n: n.depth),
            "step": column(lambda t, n: n.step),
            "tokens": column(lambda t, n: n.tokens),
            "path_tokens": column(lambda t, n: n.path_tokens),
            "score": column(lambda t, n: n.score),
            "terminal": column(lambda t, n: n.terminal),
            "finish": column(lambda t, n: n.finish),
            "answer": column(lambda t, n: graded[id(n)].extracted if id(n) in graded else None),
            "correct": column(
                lambda t, n: graded[id(n)].correct and n.error is None if id(n) in graded else None
            ),
            "visits": column(lambda t, n: n.visits),
            "value": column(lambda t, n: n.q if n.visits else None),
            "policy_flops": column(lambda t, n: forward_flops(params, n.tokens)),
            "prefix_flops": column(lambda t, n: forward_flops(params, n.context_tokens)),
            "reward_flops": column(lambda t, n: forward_flops(reward_params, n.reward_tokens)),
            "error": column(lambda t, n: n.error),
        },
        schema=NODES,
    )
