"""The Arrow schemas of every results table, defined once. Writers cast to them; readers rely on them.

Tables (all Parquet, under the sweep's output folder):
- ``samples/model=<m>/strategy=<s>/<shard>.parquet``: one row per generated sample.
- ``problems/dataset=<d>/<hash>.parquet``: one row per problem (question, reference answer).
- ``prompts/model=<m>/<hash>.parquet``: the rendered prompt text, once per (model, problem, prompt).
- ``nodes/model=<m>/strategy=<s>/<shard>.parquet``: tree search only, one row per search-tree node.

Tree search writes its leaves as samples (``budget`` and ``node_id`` set). Like a sampled row,
a leaf carries its root prompt's ``prompt_flops`` (charged once per problem); its completion,
context and reward FLOPs are its tree's totals spread evenly over the tree's leaves, so a
problem's leaves sum to exactly what its search cost; the nodes table holds each node's own.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = "3"

# The columns several tables share, in the order each table lists them.
# Who wrote a row: the run, the shard and the grid cell. ``config_id`` hashes the settings that
# decide a row's content (the samples' ``settings``): rows of one grid cell share it, so two grids
# written into one folder never pass for one (readers key uniqueness on config_id).
_WRITTEN_BY = [
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("shard_id", pa.string(), nullable=False),
    pa.field("config_id", pa.string(), nullable=False),
]
# Which problem a row is about; a problem_id is unique within its dataset.
_PROBLEM = [
    pa.field("dataset", pa.string(), nullable=False),
    pa.field("problem_id", pa.string(), nullable=False),
]
_MODEL = pa.field("model", pa.string(), nullable=False)
_STRATEGY = pa.field("strategy", pa.string(), nullable=False)

SAMPLES = pa.schema(
    [
        *_WRITTEN_BY,
        # The settings that decide a row's content (model, engine, strategy, generation, prompt,
        # seed, reward model), as JSON; config_id is their hash.
        pa.field("settings", pa.string(), nullable=False),
        _MODEL,
        pa.field("model_params", pa.int64(), nullable=False),
        _STRATEGY,
        *_PROBLEM,
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("sample_index", pa.int32(), nullable=False),
        pa.field("seed", pa.int64()),
        pa.field("temperature", pa.float32(), nullable=False),
        pa.field("completion", pa.string(), nullable=False),
        pa.field("extracted_answer", pa.string()),
        pa.field("answer_key", pa.string()),
        pa.field("correct", pa.bool_(), nullable=False),
        pa.field("prompt_tokens", pa.int32(), nullable=False),
        pa.field("completion_tokens", pa.int32(), nullable=False),
        pa.field("finish_reason", pa.string()),
        pa.field("cumulative_logprob", pa.float64()),
        # Encoding the prompt once for this sample's request; samples of one request share it.
        pa.field("prompt_flops", pa.float64(), nullable=False),
        pa.field("completion_flops", pa.float64(), nullable=False),
        # Tree search: context re-encoded by its continuation requests (prefix-cache misses),
        # this leaf's share of its tree's; 0 for flat strategies. See sweep/inference/flops.py.
        pa.field("context_flops", pa.float64(), nullable=False),
        pa.field("latency_s", pa.float64(), nullable=False),
        pa.field("error", pa.string()),
        # Reward-model scores (null where the strategy used none): one score per solution step,
        # and its aggregates, so best-of-n and weighted voting are evaluated for any n later.
        pa.field("reward_model", pa.string()),
        pa.field("step_scores", pa.list_(pa.float64())),
        pa.field("score_last", pa.float64()),
        pa.field("score_min", pa.float64()),
        pa.field("score_prod", pa.float64()),
        pa.field("score_mean", pa.float64()),
        pa.field("reward_flops", pa.float64(), nullable=False),
        # Tree search: the search's budget (null for flat strategies) and the leaf's node.
        pa.field("budget", pa.int32()),
        pa.field("node_id", pa.int32()),
        # Adaptive sampling: the round that drew the sample, and why its problem stopped drawing
        # (rule, n_max, error); its budget is n_max. Null for other strategies.
        pa.field("round", pa.int32()),
        pa.field("stop_reason", pa.string()),
    ]
)

NODES = pa.schema(
    [
        *_WRITTEN_BY,
        _MODEL,
        _STRATEGY,
        pa.field("budget", pa.int32(), nullable=False),
        *_PROBLEM,
        pa.field("tree_id", pa.string(), nullable=False),  # one search: (shard, problem)
        pa.field("node_id", pa.int32(), nullable=False),  # 0: the root (the prompt, no step)
        pa.field("parent_id", pa.int32()),
        pa.field("depth", pa.int32(), nullable=False),
        pa.field("step", pa.string(), nullable=False),
        pa.field("tokens", pa.int32(), nullable=False),  # generated for this step
        pa.field("path_tokens", pa.int32(), nullable=False),  # generated from the root to here
        pa.field("score", pa.float64()),  # the reward model's score of this step
        pa.field("terminal", pa.bool_(), nullable=False),  # a finished path (never expanded)
        # Why a path ends here: done (solution finished), depth_cap, token_cap, error; pruned
        # (REBASE gave it no children), open (MCTS left it unexpanded); null for inner nodes.
        pa.field("finish", pa.string()),
        pa.field("answer", pa.string()),  # extracted from the path's text, terminal nodes only
        pa.field("correct", pa.bool_()),  # terminal nodes only
        pa.field("visits", pa.int32(), nullable=False),  # MCTS: backups through the node
        pa.field("value", pa.float64()),  # MCTS: running mean of backed-up scores
        pa.field("policy_flops", pa.float64(), nullable=False),  # generating this step
        pa.field("prefix_flops", pa.float64(), nullable=False),  # its share of uncached context
        pa.field("reward_flops", pa.float64(), nullable=False),  # reward-model tokens it added
        pa.field("error", pa.string()),
    ]
)

PROBLEMS = pa.schema(
    [
        *_PROBLEM,
        pa.field("question", pa.string(), nullable=False),
        pa.field("reference_answer", pa.string(), nullable=False),
        pa.field("grader", pa.string(), nullable=False),
        pa.field("level", pa.int32()),
        pa.field("subject", pa.string()),
    ]
)

PROMPTS = pa.schema(
    [
        _MODEL,
        *_PROBLEM,
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("prompt", pa.string(), nullable=False),
        pa.field("prompt_tokens", pa.int32(), nullable=False),
    ]
)
