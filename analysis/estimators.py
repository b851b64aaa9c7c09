"""Accuracy estimators for inference-scaling curves: greedy, majority vote, weighted vote,
best-of-n and pass@n as functions of the number of samples n, with their cost per problem.

A sweep draws n_max samples per problem once; every smaller n is evaluated from them. The voting
estimators (majority, weighted, best-of-n) average over ``resamples`` seeded random n-subsets of
each problem's samples, drawn by numpy on dense (problem, sample) blocks (``analysis/subsets.py``);
pass@n has a closed form. DuckDB reads the results, numbers problems and answer keys, and
aggregates the per-problem estimates into curves (``analysis/sql/estimator_*.sql``).

What it leaves out: latency (``summary.sql``) and fitting curves. It assumes one row per
(model, strategy, dataset, problem, sample_index) in the ``samples`` view; point the view at the
shards you mean before calling.
"""

from __future__ import annotations

import itertools
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analysis.subsets import METHODS, SCORES, Block, resample_hits
from analysis.views import load_sql

COLUMNS = [
    "model",
    "model_params",
    "dataset",
    "strategy",
    "method",
    "n",
    "accuracy",
    "ci_low",
    "ci_high",
    "problems",
    "tokens_per_problem",
    "policy_flops_per_problem",
    "reward_flops_per_problem",
    "flops_per_problem",
]

DTYPES = {c: "float64" for c in COLUMNS} | {
    "model": "str", "dataset": "str", "strategy": "str", "method": "str",
    "model_params": "int64", "n": "int64", "problems": "int64",
}  # fmt: skip

# Samples per block of problems resampled at once: bounds the working set of one thread
# (~150 bytes a sample) and is the unit of parallel work.
BLOCK_SAMPLES = 1 << 20


@dataclass(frozen=True)
class Task:
    """One block: problems (row numbers into the sizes table) of one group with one sample count."""

    problems: np.ndarray  # (problem,) -> row in the sizes table
    samples: int
    n_values: list[int]
    seed: list[int]
    labels: list[int] | None = None  # the n reported for each of n_values, when it differs (trees)


def compute_accuracy(
    con: duckdb.DuckDBPyConnection,
    *,
    resamples: int = 100,
    seed: int = 0,
    n_values: list[int] | None = None,
    include_reward_flops: bool = False,
) -> pd.DataFrame:
    """Accuracy, 95% CI and cost per (model, dataset, strategy, method, n) over view ``samples``.

    Methods: ``greedy`` (groups sampled at temperature 0 or once per problem; n = 1 only),
    ``majority_vote``, ``weighted_vote_<score>`` and ``best_of_n_<score>`` (score: last, min, prod,
    mean; only where the group has that reward score), and ``pass_at_n``. ``n_values`` defaults to
    the powers of two up to each group's n_max, plus n_max; values above a group's n_max are
    dropped for it. A problem counts at n only if it has at least n samples. Ties go to the answer
    (or sample) with the lowest sample_index in the subset. Reward-model FLOPs are charged to the
    methods that read reward scores only. The same seed gives the same result. Columns: ``COLUMNS``; see ``analysis/sql/estimator_accuracy.sql``. No
    ``samples`` view (an empty results folder): an empty table.
    """
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    if n_values is not None and (not n_values or min(n_values) < 1):
        raise ValueError(f"n_values must be a non-empty list of positive integers, got {n_values}")
    if not con.execute(load_sql("estimator_has_samples")).fetchall()[0][0]:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in DTYPES.items()})
    try:
        con.execute(load_sql("estimator_problems"))
        groups = con.sql(load_sql("estimator_groups")).df()
        voting = groups[~groups["greedy"]]
        grids = {
            int(g.gid): tree_grid(int(g.budget), n_values) if g.tree else grid_of(int(g.n_max), n_values)
            for g in voting.itertuples()
        }
        trees = {int(g.gid) for g in voting.itertuples() if g.tree}
        hits = voting_hits(con, grids, resamples=resamples, seed=seed, trees=trees)
        con.register("est_hits", hits)
        grid = [(gid, n) for gid, ns in grids.items() for n in ns]
        params = {
            "grid_gids": [g for g, _ in grid],
            "grid_ns": [n for _, n in grid],
            "greedy_gids": groups.loc[groups["greedy"], "gid"].tolist(),
            "resamples": resamples,
            "include_reward_flops": include_reward_flops,
        }
        result = con.sql(load_sql("estimator_accuracy"), params=params).df()
    finally:
        con.unregister("est_hits")
        con.execute(load_sql("estimator_drop"))
    return result[COLUMNS].astype(DTYPES)


def tree_grid(budget: int, n_values: list[int] | None) -> list[int]:
    """A tree search is evaluated once, over all its leaves, at n = its budget."""
    return [budget] if n_values is None or budget in n_values else []


def grid_of(n_max: int, n_values: list[int] | None) -> list[int]:
    """The n values evaluated for a group whose problems have at most ``n_max`` samples."""
    if n_values is None:
        powers = itertools.takewhile(lambda n: n <= n_max, (2**k for k in itertools.count()))
        return sorted({*powers, n_max})
    return sorted({n for n in n_values if n <= n_max})


def voting_hits(
    con: duckdb.DuckDBPyConnection,
    grids: dict[int, list[int]],
    *,
    resamples: int,
    seed: int,
    trees: set[int] | None = None,
) -> pd.DataFrame:
    """(pid, n) -> hits of each voting method over ``resamples`` subsets, for the groups in
    ``grids`` (gid -> n values). Groups in ``trees`` vote over all of a problem's samples (a
    search's leaves, however many), reported at their one n (the budget). Columns: pid, n,
    then ``METHODS``."""
    columns = {"pid": pd.Series(dtype="int64"), "n": pd.Series(dtype="int64")}
    empty = pd.DataFrame({**columns, **{m: pd.Series(dtype="int32") for m in METHODS}})
    gids = [g for g, ns in grids.items() if ns]
    if not gids:
        return empty
    sizes = con.sql(load_sql("estimator_sizes"), params={"gids": gids}).df()
    table = con.sql(load_sql("estimator_samples"), params={"gids": gids}).to_arrow_table()
    samples = SampleColumns.from_arrow(table, sizes["samples"].to_numpy())
    del table  # the numpy columns keep what they need
    tasks = plan_tasks(sizes, grids, seed=seed, trees=trees or set())
    threads = int(con.execute(load_sql("threads")).fetchall()[0][0])

    def run(task: Task) -> pd.DataFrame:
        block = samples.block(task.problems, task.samples)
        counts = resample_hits(
            block, n_values=task.n_values, resamples=resamples, rng=np.random.default_rng(task.seed)
        )  # (problem, n, method)
        c, levels, _ = counts.shape
        frame = {
            "pid": np.repeat(sizes["pid"].to_numpy()[task.problems], levels),
            "n": np.tile(np.asarray(task.labels or task.n_values, dtype=np.int64), c),
        }
        return pd.DataFrame({**frame, **dict(zip(METHODS, counts.reshape(c * levels, -1).T))})

    with ThreadPoolExecutor(max_workers=max(threads, 1)) as pool:
        frames = list(pool.map(run, tasks))
    return pd.concat([empty, *frames], ignore_index=True) if frames else empty


def plan_tasks(
    sizes: pd.DataFrame, grids: dict[int, list[int]], *, seed: int, trees: set[int] | None = None
) -> list[Task]:
    """Blocks of at most BLOCK_SAMPLES samples, one group and one sample count each.

    A block's random stream is seeded by (seed, dataset, sample count, block number), not by
    model or strategy: groups with the same problems are resampled with the same draw positions,
    which pairs their comparisons and leaves each estimate unbiased."""
    tasks = []
    for (gid, dataset, n), rows in sizes.groupby(["gid", "dataset", "samples"], sort=True).indices.items():
        labels: list[int] | None = None
        if int(gid) in (trees or set()):  # all leaves, labelled with the budget
            n_values, labels = ([int(n)], grids[int(gid)]) if grids[int(gid)] else ([], None)
        else:
            n_values = [v for v in grids[int(gid)] if v <= n]
        if not n_values:
            continue
        per_block = max(BLOCK_SAMPLES // int(n), 1)
        for number, start in enumerate(range(0, len(rows), per_block)):
            stream = [seed, zlib.crc32(str(dataset).encode()), int(n), number]
            tasks.append(Task(rows[start : start + per_block], int(n), n_values, stream, labels))
    return tasks


@dataclass(frozen=True)
class SampleColumns:
    """estimator_samples.sql's result as numpy columns, problem by problem."""

    start: np.ndarray  # (problem,) -> its first row
    kid: np.ndarray  # (row,) -> answer key number, -1: none
    key_correct: np.ndarray  # (row,)
    correct: np.ndarray  # (row,)
    scores: dict[str, np.ndarray]  # score -> (row,), NaN: none

    @classmethod
    def from_arrow(cls, table: pa.Table, samples: np.ndarray) -> SampleColumns:
        def column(name: str, null: object) -> np.ndarray:
            return pc.fill_null(table.column(name), null).to_numpy()

        start = np.concatenate([[0], np.cumsum(samples)[:-1]]).astype(np.int64)
        assert int(samples.sum()) == table.num_rows
        return cls(
            start=start,
            kid=column("kid", -1).astype(np.int32),
            key_correct=column("key_correct", False),
            correct=column("correct", False),
            scores={s: column(f"score_{s}", np.nan).astype(np.float64) for s in SCORES},
        )

    def block(self, problems: np.ndarray, samples: int) -> Block:
        rows = self.start[problems][:, None] + np.arange(samples)  # (problem, sample) -> row
        keys = self.kid[rows]
        key_correct = np.zeros((len(problems), max(int(keys.max()) + 1, 1)), dtype=bool)
        answered = keys >= 0
        # Every row of one (problem, key) carries the same key_correct, so repeated writes agree.
        key_correct[np.nonzero(answered)[0], keys[answered]] = self.key_correct[rows][answered]
        return Block(
            keys=keys,
            key_correct=key_correct,
            correct=self.correct[rows],
            scores={s: v[rows] for s, v in self.scores.items()},
        )
