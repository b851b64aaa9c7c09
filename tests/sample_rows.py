"""Sample rows for tests that write results by hand: every column of ``SAMPLES``, with defaults.

``sample_row(**fields)`` gives one row dict (FLOPs derived from tokens and ``model_params``
unless given); ``answered(key, answer)`` the answer columns of a sample that answered ``key``;
``write_shard`` writes rows as one shard file where a sweep would put it.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from sweep.results.schema import SAMPLES
from sweep.results.store import ResultsStore

DEFAULTS: dict[str, Any] = {
    "run_id": "run",
    "shard_id": "shard",
    "config_id": "cell",
    "settings": "{}",
    "model": "m",
    "model_params": 10**8,
    "strategy": "sampling",
    "dataset": "toy",
    "problem_id": "p0",
    "prompt_id": "q0",
    "sample_index": 0,
    "seed": 0,
    "temperature": 1.0,
    "completion": "",
    "extracted_answer": None,
    "answer_key": None,
    "correct": False,
    "prompt_tokens": 20,
    "completion_tokens": 100,
    "finish_reason": "stop",
    "cumulative_logprob": None,
    "latency_s": 0.1,
    "error": None,
    "reward_model": None,
    "step_scores": None,
    "score_last": None,
    "score_min": None,
    "score_prod": None,
    "score_mean": None,
    "reward_flops": 0.0,
    "context_flops": 0.0,
    "budget": None,
    "node_id": None,
}


def sample_row(**fields: Any) -> dict[str, Any]:
    """One row of ``SAMPLES``: ``fields`` over the defaults; unknown names are an error."""
    unknown = set(fields) - set(SAMPLES.names)
    assert not unknown, f"not columns of SAMPLES: {sorted(unknown)}"
    row = {**DEFAULTS, **fields}
    row.setdefault("prompt_flops", 2.0 * row["model_params"] * row["prompt_tokens"])
    row.setdefault("completion_flops", 2.0 * row["model_params"] * row["completion_tokens"])
    return row


def answered(key: str | None, answer: str) -> dict[str, Any]:
    """The answer columns of a sample whose extracted answer (its answer key) is ``key`` (None:
    nothing extracted), graded against the reference ``answer``."""
    return {
        "completion": "" if key is None else f"The answer is {key}.",
        "extracted_answer": key,
        "answer_key": key,
        "correct": key == answer,
    }


def write_shard(store: ResultsStore, rows: list[dict[str, Any]], *, shard_id: str | None = None) -> str:
    """Write ``rows`` (one model and strategy) as one shard file; returns its path."""
    shard_id = shard_id or rows[0]["shard_id"]
    path = store.samples_path(rows[0]["model"], rows[0]["strategy"], shard_id)
    store.write_table(path, pa.Table.from_pylist(rows, schema=SAMPLES), schema=SAMPLES, shard_id=shard_id)
    return path
