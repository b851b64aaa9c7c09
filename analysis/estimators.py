"""Accuracy estimators for inference-scaling curves: greedy, majority vote, weighted vote,
best-of-n and pass@n as functions of the number of samples n, with their cost per problem and a
bootstrap interval.

A sweep draws n_max samples per problem once; every smaller n is evaluated from them. The voting
estimators (majority, weighted, best-of-n) average over ``resamples`` seeded random n-subsets of
each problem's samples, drawn by numpy on dense (problem, sample) blocks (``analysis/subsets.py``);
pass@n has a closed form. DuckDB reads the results, numbers problems and answer keys, turns them
into one estimate per (cell, problem) and averages those into curves
(``analysis/sql/estimator_*.sql``). Intervals come from a bootstrap over problems on the
per-problem estimates (``analysis/bootstrap.py``); costs follow the one FLOPs rule
(``sweep/inference/flops.py``, as DuckDB macros in ``analysis/sql/flops.sql``). Adaptive stopping rules,
replayed on random orderings of the same samples (``analysis/adaptive.py``), join the cells and
per-problem estimates as methods of their own, so they share the means and the bootstrap.

What it leaves out: latency (``summary.sql``) and fitting curves (``analysis.fits``, which refit
on the replicates this module returns). It assumes one row per (model, strategy, dataset,
problem, sample_index) in the ``samples`` view; ``analysis.views.connect`` scopes it to one run.
"""

from __future__ import annotations

import itertools
import logging
import time
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypedDict, Unpack

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analysis.adaptive import DEFAULT_RULES, add_adaptive_estimates, problem_samples, samples_per_problem
from analysis.bootstrap import CONFIDENCE, REPLICATES, percentile_interval, replicate_means
from analysis.subsets import METHODS, SCORES, Block, resample_hits
from analysis.views import create_flops_macros, load_sql
from sweep.inference.stopping import StoppingRule

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
    "samples_per_problem",
    "tokens_per_problem",
    "policy_flops_per_problem",
    "reward_flops_per_problem",
    "flops_per_problem",
    "accuracy_replicates",
]

DTYPES = {c: "float64" for c in COLUMNS} | {
    "model": "str", "dataset": "str", "strategy": "str", "method": "str",
    "model_params": "int64", "n": "int64", "problems": "int64", "accuracy_replicates": "object",
}  # fmt: skip

PROBLEM_DTYPES = {
    "model": "str", "model_params": "int64", "dataset": "str", "strategy": "str", "method": "str",
    "n": "int64", "problem_id": "str", "estimate": "float64", "samples": "float64", "tokens": "float64",
    "policy_flops": "float64", "reward_flops": "float64", "flops": "float64",
}  # fmt: skip

log = logging.getLogger(__name__)

# Samples per block of problems resampled at once: bounds the working set of one thread
# (~150 bytes a sample) and is the unit of parallel work.
BLOCK_SAMPLES = 1 << 20
# Tags the bootstrap's random stream apart from the subsets' (which have four entries).
BOOTSTRAP_STREAM = 0xB0075


@dataclass(frozen=True)
class Task:
    """One block: problems (row numbers into the sizes table) of one group with one sample count."""

    problems: np.ndarray  # (problem,) -> row in the sizes table
    samples: int
    n_values: list[int]
    seed: list[int]
    labels: list[int] | None = None  # the n reported for each of n_values, when it differs (trees)


class EstimateOptions(TypedDict, total=False):
    """What selects the estimates (``compute_accuracy`` says what each does); the per-problem
    rows (``compute_problem_estimates``) take the same, with the same defaults."""

    resamples: int
    seed: int
    n_values: list[int] | None
    include_reward_flops: bool
    adaptive: Sequence[StoppingRule]


ESTIMATE_DEFAULTS = EstimateOptions(
    resamples=100, seed=0, n_values=None, include_reward_flops=True, adaptive=DEFAULT_RULES
)


def compute_accuracy(
    con: duckdb.DuckDBPyConnection,
    *,
    resamples: int = ESTIMATE_DEFAULTS["resamples"],
    seed: int = ESTIMATE_DEFAULTS["seed"],
    n_values: list[int] | None = ESTIMATE_DEFAULTS["n_values"],
    include_reward_flops: bool = ESTIMATE_DEFAULTS["include_reward_flops"],
    bootstrap: int = REPLICATES,
    confidence: float = CONFIDENCE,
    adaptive: Sequence[StoppingRule] = ESTIMATE_DEFAULTS["adaptive"],
) -> pd.DataFrame:
    """Accuracy, its interval and cost per (model, dataset, strategy, method, n) over view ``samples``.

    Methods: ``greedy`` (groups sampled at temperature 0 or once per problem; n = 1 only),
    ``majority_vote``, ``weighted_vote_<score>`` and ``best_of_n_<score>`` (score: last, min, prod,
    mean; only where the group has that reward score), ``pass_at_n``, and for flat sampling groups
    one ``adaptive_*`` method per stopping rule in ``adaptive`` (``analysis/adaptive.py``: each
    rule replayed on ``resamples`` random orderings of a problem's samples, fewer beyond a few
    million samples, at n = the group's n_max; ``()`` for none). ``n_values`` defaults to
    the powers of two up to each group's n_max, plus n_max; values above a group's n_max are
    dropped for it. A problem counts at n only if it has at least n samples. Ties go to the answer
    (or sample) with the lowest sample_index in the subset.

    ``accuracy`` is the mean over problems of each problem's estimate. ``ci_low``/``ci_high``: a
    ``confidence`` percentile interval from ``bootstrap`` replicates over problems
    (``analysis/bootstrap.py``): it covers the accuracy on the population the problems were
    drawn from, with the samples the model would draw, so it reflects which problems were drawn,
    which samples each got, and which subsets the estimate averaged. It lies in [0, 1]; NaN with
    fewer than two problems or ``bootstrap=0``. ``accuracy_replicates``: each row's
    ``bootstrap`` replicate accuracies (one array per row; replicate b of every row of a dataset
    used the same draw of problems, so rows are paired), for refitting (``analysis.fits``).

    Cost per problem by the FLOPs rule (``sweep/inference/flops.py``): the prompt once plus n samples'
    policy FLOPs (completion and re-encoded context; a tree search: the whole search), in
    ``policy_flops_per_problem``; the reward model's FLOPs of the same samples, for the methods
    that need it (weighted vote and best-of-n read its scores; a tree search's every method,
    since the search read them), in ``reward_flops_per_problem``. ``flops_per_problem`` is their
    sum, or the policy FLOPs alone with ``include_reward_flops=False``. An adaptive method pays for
    the samples it drew before stopping (and reward FLOPs if it reads scores);
    ``samples_per_problem``: its expected draws, n for the fixed-n methods. The same seed gives the
    same result. Columns: ``COLUMNS``. No ``samples`` view (an empty results folder): an empty
    table.
    """
    if bootstrap < 0:
        raise ValueError(f"bootstrap must be 0 (no intervals) or more replicates, got {bootstrap}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    options = EstimateOptions(resamples=resamples, seed=seed, n_values=n_values,
                              include_reward_flops=include_reward_flops, adaptive=adaptive)  # fmt: skip
    with _estimates(con, "estimator_accuracy", options) as table:
        if table is None:
            return _empty(DTYPES)
        table["samples_per_problem"] = samples_per_problem(con, table)
        start = time.perf_counter()
        replicates = _replicates(con, bootstrap=bootstrap, seed=seed)  # (cell, replicate)
        seconds = time.perf_counter() - start
        log.debug(
            "bootstrap: %d replicates in %.2f s", bootstrap, seconds, extra={"bootstrap_seconds": seconds}
        )
    rows = replicates[table["cell"].to_numpy()]  # (row, replicate)
    low, high = percentile_interval(rows, confidence=confidence)
    few = table["problems"].to_numpy() < 2
    table["ci_low"] = np.where(few, np.nan, low)
    table["ci_high"] = np.where(few, np.nan, high)
    table["accuracy_replicates"] = list(rows)
    return table[COLUMNS].astype(DTYPES)


def compute_problem_estimates(con: duckdb.DuckDBPyConnection, **options: Unpack[EstimateOptions]) -> pd.DataFrame:
    """The per-problem estimates ``compute_accuracy`` averages: one row per (model, dataset,
    strategy, method, n, problem_id) with ``estimate`` (that problem's accuracy estimate),
    ``samples`` spent and its cost (``tokens``, ``policy_flops``, ``reward_flops``, ``flops``);
    columns ``PROBLEM_DTYPES``. Same arguments, same estimates: a curve's ``accuracy`` is the mean
    of its problems' estimates."""
    unknown = sorted(options.keys() - ESTIMATE_DEFAULTS.keys())
    if unknown:
        raise TypeError(f"compute_problem_estimates() got unexpected keyword arguments {unknown}")
    with _estimates(con, "estimator_problem_rows", {**ESTIMATE_DEFAULTS, **options}) as table:
        if table is None:
            return _empty(PROBLEM_DTYPES)
        table["samples"] = problem_samples(con, table)
    return table[list(PROBLEM_DTYPES)].astype(PROBLEM_DTYPES)


def _empty(dtypes: dict[str, str]) -> pd.DataFrame:
    """A table with no rows and the columns ``dtypes`` names (what an empty results folder gives)."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in dtypes.items()})


@contextmanager
def _estimates(
    con: duckdb.DuckDBPyConnection, query: str, options: EstimateOptions
) -> Iterator[pd.DataFrame | None]:
    """The rows of ``query`` (estimator_accuracy.sql or estimator_problem_rows.sql) over
    est_problems, est_keyed_samples, est_cells, est_per_problem (the adaptive rules' cells and
    estimates included) and est_adaptive, which stay on ``con`` for the body; None (and no
    tables) when there is no ``samples`` view. The tables are dropped afterwards."""
    resamples, seed, n_values = options["resamples"], options["seed"], options["n_values"]
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    if n_values is not None and (not n_values or min(n_values) < 1):
        raise ValueError(f"n_values must be a non-empty list of positive integers, got {n_values}")
    if not con.execute(load_sql("estimator_has_samples")).fetchall()[0][0]:
        yield None
        return
    try:
        create_flops_macros(con)
        con.execute(load_sql("estimator_problems"))
        con.execute(load_sql("estimator_keyed_samples"))
        groups = con.sql(load_sql("estimator_groups")).df()
        voting = groups[~groups["greedy"]]
        grids = {
            int(g.gid): tree_grid(int(g.budget), n_values) if g.tree else grid_of(int(g.n_max), n_values)
            for g in voting.itertuples()
        }
        trees = {int(g.gid) for g in voting.itertuples() if g.tree}
        grid = [(gid, n) for gid, ns in grids.items() for n in ns]
        con.execute(
            load_sql("estimator_cells"),
            {
                "grid_gids": [g for g, _ in grid],
                "grid_ns": [n for _, n in grid],
                "greedy_gids": groups.loc[groups["greedy"], "gid"].tolist(),
            },
        )
        hits = voting_hits(con, grids, resamples=resamples, seed=seed, trees=trees)
        con.register("est_hits", hits)
        try:
            con.execute(load_sql("estimator_per_problem"), {"resamples": resamples})
        finally:
            con.unregister("est_hits")
        add_adaptive_estimates(con, groups, rules=options["adaptive"], resamples=resamples, seed=seed)
        yield con.sql(load_sql(query), params={"include_reward_flops": options["include_reward_flops"]}).df()
    finally:
        con.execute(load_sql("adaptive_drop"))
        con.execute(load_sql("estimator_drop"))


def _replicates(con: duckdb.DuckDBPyConnection, *, bootstrap: int, seed: int) -> np.ndarray:
    """(cell, replicate) -> the replicate's accuracy: ``bootstrap`` draws of each dataset's
    problems with replacement, seeded by (seed, dataset), shared by all of its cells."""
    cells = int(con.execute("SELECT count(*) FROM est_cells").fetchall()[0][0])
    out = np.full((cells, bootstrap), np.nan)
    if bootstrap == 0:
        return out
    datasets = con.sql(load_sql("estimator_datasets")).df()
    estimates = con.sql(load_sql("estimator_bootstrap")).to_arrow_table()
    did = estimates.column("did").to_numpy()
    for d in datasets.itertuples():
        mine = did == d.did
        cell = estimates.column("cell").to_numpy()[mine]
        used, local = np.unique(cell, return_inverse=True)  # the dataset's cells, numbered 0..
        rng = np.random.default_rng([seed, zlib.crc32(str(d.dataset).encode()), BOOTSTRAP_STREAM])
        out[used] = replicate_means(
            local,
            estimates.column("qid").to_numpy()[mine],
            estimates.column("estimate").to_numpy()[mine],
            cells=len(used),
            problems=int(d.problems),
            replicates=bootstrap,
            rng=rng,
        )
    return out


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
