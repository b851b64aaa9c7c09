"""Adaptive stopping replayed from a finished sweep: what each stopping rule would have spent and
scored, from the samples already stored, at no extra generation.

A flat sampling group (not greedy, not a tree search) drew n_max i.i.d. samples per problem, so
a uniformly random ordering of them is a draw sequence the model could have produced. For each
problem, ``orderings`` seeded random orderings are replayed through every stopping rule of
``sweep/inference/stopping.py`` (the very functions the live ``adaptive`` strategy calls): the rule says
after how many draws it stops, and the vote of those draws (majority; the weighted rule: weighted
by ``score_last``) is the answer. Per problem and rule, the means over orderings give the
accuracy estimate, the samples spent and their cost: generated tokens, and by the FLOPs rule
(``sweep/inference/flops.py``) the prompt once plus the drawn samples' completion and context FLOPs, and
their reward FLOPs for the weighted rule, which reads the scores. Ties go to the answer with the
lowest stored sample index among its drawn samples, as in the fixed-n voting estimators
(``analysis/subsets.py``), so a rule that never stops reproduces majority vote at n_max exactly.

The orderings are permutations drawn per problem with numpy, on dense (ordering × problem,
sample) blocks, seeded by (seed, dataset, sample count, block number) like the subsets, so
groups over the same problems replay the same orderings (paired comparisons). Each (rule,
threshold) becomes one method of the accuracy table (``method_name``) at n = the group's n_max,
over the problems with n_max samples; ``analysis.estimators`` appends them to its cells and
per-problem estimates, so their means and their bootstrap intervals over problems (the same
replicate draws per dataset as the fixed-n curves) come out as for any method.

Left out: the rules themselves (``sweep/inference/stopping.py``) and the live strategy.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
import pyarrow.compute as pc

from analysis.methods import ADAPTIVE_PREFIX
from analysis.views import load_sql
from sweep.inference.stopping import StoppingRule, criterion, first_stop, tally, vote

DEFAULT_RULES: tuple[StoppingRule, ...] = (
    StoppingRule("esc", 2, window=2),
    StoppingRule("esc", 4, window=4),
    StoppingRule("beta", 0.9),
    StoppingRule("beta", 0.95),
    StoppingRule("weighted", 0.7),
    StoppingRule("weighted", 0.9),
)
# (ordering × problem, sample) entries of one block: bounds one thread's working set (~40
# arrays of 8 bytes each) and is the unit of parallel work.
BLOCK_DRAWS = 1 << 19
# Orderings per problem: ``resamples``, as many as the subsets, unless the flat groups hold more
# than ORDERING_BUDGET / resamples samples; then fewer (at least MIN_ORDERINGS), so the replay of
# a 10M-sample sweep stays a fraction of the estimators' time. Fewer orderings leave more
# ordering noise in each problem's estimate, which the bootstrap over problems covers.
ORDERING_BUDGET = 1 << 27
MIN_ORDERINGS = 10
ADAPTIVE_STREAM = 0xADA97  # tags the orderings' random stream apart from the subsets'
COSTS = ("tokens", "policy_flops", "reward_flops")

log = logging.getLogger(__name__)


def method_name(rule: StoppingRule) -> str:
    """``adaptive_esc_w{w}``, ``adaptive_beta_{threshold}``, ``adaptive_weighted_{threshold}``;
    a window other than the rule's own adds ``_r{window}``."""
    if rule.rule == "esc":
        w = int(rule.threshold)
        return f"{ADAPTIVE_PREFIX}esc_w{w}" + ("" if rule.window == w else f"_r{rule.window}")
    return f"{ADAPTIVE_PREFIX}{rule.rule}_{rule.threshold:g}" + ("" if rule.window == 1 else f"_r{rule.window}")


@dataclass(frozen=True)
class Replay:
    """One block: problems (rows of the sizes table) of one group, all with ``samples`` samples."""

    problems: np.ndarray  # (problem,) -> row in the sizes table
    samples: int
    rules: tuple[StoppingRule, ...]
    seed: list[int]


@dataclass(frozen=True)
class ReplayColumns:
    """adaptive_samples.sql's result as numpy columns, problem by problem."""

    start: np.ndarray  # (problem,) -> its first row
    kid: np.ndarray  # (row,) -> answer key number, -1: none
    key_correct: np.ndarray  # (row,)
    score: np.ndarray  # (row,) -> score_last, NaN: none
    costs: dict[str, np.ndarray]  # COSTS -> (row,)


def rule_of_method(method: str) -> StoppingRule | None:
    """The stopping rule an ``adaptive_*`` method stands for (``method_name``'s inverse); None for
    any other method. ``/solve`` runs it live (the ``adaptive`` strategy) when the table picks it."""
    if not method.startswith(ADAPTIVE_PREFIX):
        return None
    body, window = method[len(ADAPTIVE_PREFIX) :], None
    if "_r" in body:
        body, rounds = body.rsplit("_r", 1)
        window = int(rounds)
    rule, value = body.split("_", 1)
    if rule == "esc":
        w = int(value.removeprefix("w"))
        return StoppingRule("esc", w, window=window or w)
    return StoppingRule(rule, float(value), window=window or 1)  # type: ignore[arg-type]


def add_adaptive_estimates(
    con: duckdb.DuckDBPyConnection,
    groups: pd.DataFrame,
    *,
    rules: Sequence[StoppingRule],
    resamples: int,
    seed: int,
) -> None:
    """Replay ``rules`` on the flat sampling groups of ``groups`` (estimator_groups.sql's rows)
    and add their cells to est_cells and their per-problem estimates to est_per_problem; the
    temporary table est_adaptive keeps each (cell, problem)'s expected samples spent. Groups
    with n_max < 2 have nothing to stop early; weighted rules skip groups without scores.
    Orderings per problem: ``orderings_for(resamples, samples)``."""
    start = time.perf_counter()
    flat = groups[~groups["greedy"] & ~groups["tree"] & (groups["n_max"] >= 2)]
    scored = con.sql(load_sql("adaptive_groups")).df().set_index("gid")["scored"]
    mine = {
        int(g.gid): tuple(r for r in rules if not r.reads_scores or bool(scored.get(g.gid, False)))
        for g in flat.itertuples()
    }
    mine = {gid: r for gid, r in mine.items() if r}
    n_max = dict(zip(flat["gid"].astype(int), flat["n_max"].astype(int)))
    cells = [(gid, method_name(r), n_max[gid], r.reads_scores) for gid, rs in mine.items() for r in rs]
    if cells:
        names = ("gids", "methods", "ns", "pays")
        con.execute(load_sql("adaptive_cells"), dict(zip(names, map(list, zip(*cells)))))
    samples = sum(int(g.problems) * int(g.n_max) for g in flat.itertuples() if int(g.gid) in mine)
    orderings = orderings_for(resamples, samples)
    hits = replay(con, mine, n_max, orderings=orderings, seed=seed)
    con.register("est_adaptive_hits", hits)
    try:
        con.execute(load_sql("adaptive_per_problem"))
    finally:
        con.unregister("est_adaptive_hits")
    con.execute(load_sql("adaptive_insert"))
    seconds = time.perf_counter() - start
    log.debug(
        "adaptive replay: %d cells, %d orderings in %.2f s", len(cells), orderings, seconds,
        extra={"adaptive_seconds": seconds, "adaptive_orderings": orderings},
    )  # fmt: skip


def orderings_for(resamples: int, samples: int) -> int:
    """Orderings per problem for a replay over ``samples`` samples in all: ``resamples``, capped
    by ORDERING_BUDGET / samples but not below MIN_ORDERINGS."""
    return max(min(resamples, ORDERING_BUDGET // max(samples, 1)), min(resamples, MIN_ORDERINGS))


def replay(
    con: duckdb.DuckDBPyConnection,
    rules: dict[int, tuple[StoppingRule, ...]],
    n_max: dict[int, int],
    *,
    orderings: int,
    seed: int,
) -> pd.DataFrame:
    """(pid, method) -> the means over ``orderings`` replayed orderings of each rule's accuracy
    (``estimate``), ``samples`` spent and the drawn samples' summed ``COSTS`` (prompt left out),
    for the problems of each group in ``rules`` (gid -> its rules) with ``n_max[gid]`` samples.
    Groups are read one at a time, so the working set is one group's samples."""
    columns = ["pid", "method", "estimate", "samples", *COSTS]
    empty = pd.DataFrame({"pid": pd.Series(dtype="int64"), "method": pd.Series(dtype="str")}
                         | {c: pd.Series(dtype="float64") for c in columns[2:]})  # fmt: skip
    if orderings < 1:
        raise ValueError(f"orderings must be at least 1, got {orderings}")
    threads = int(con.execute(load_sql("threads")).fetchall()[0][0])
    frames = []
    for gid in sorted(rules):
        sizes = con.sql(load_sql("estimator_sizes"), params={"gids": [gid]}).df()
        data = read_columns(con, gid, sizes)
        tasks = plan_replays(sizes, rules[gid], n_max=n_max[gid], orderings=orderings, seed=seed)

        def run(task: Replay, sizes: pd.DataFrame = sizes, data: ReplayColumns = data) -> pd.DataFrame:
            means = replay_block(data, task, orderings=orderings)  # name -> (problem, rule)
            c, r = len(task.problems), len(task.rules)
            frame = {
                "pid": np.repeat(sizes["pid"].to_numpy()[task.problems], r),
                "method": np.tile(np.array([method_name(x) for x in task.rules], dtype=object), c),
            }
            return pd.DataFrame(frame | {k: v.ravel() for k, v in means.items()})

        with ThreadPoolExecutor(max_workers=max(threads, 1)) as pool:
            frames += list(pool.map(run, tasks))
    return pd.concat([empty, *frames], ignore_index=True) if frames else empty


def read_columns(con: duckdb.DuckDBPyConnection, gid: int, sizes: pd.DataFrame) -> ReplayColumns:
    """Group ``gid``'s samples (adaptive_samples.sql) as numpy columns; ``sizes``: its problems."""
    table = con.sql(load_sql("adaptive_samples"), params={"gids": [gid]}).to_arrow_table()
    assert int(sizes["samples"].sum()) == table.num_rows

    def column(name: str, null: object) -> np.ndarray:
        return pc.fill_null(table.column(name), null).to_numpy()

    return ReplayColumns(
        start=np.concatenate([[0], np.cumsum(sizes["samples"].to_numpy())[:-1]]).astype(np.int64),
        kid=column("kid", -1).astype(np.int32),
        key_correct=column("key_correct", False),
        score=column("score", np.nan).astype(np.float64),
        costs={c: column(c, 0.0).astype(np.float64) for c in COSTS},
    )


def plan_replays(
    sizes: pd.DataFrame, rules: tuple[StoppingRule, ...], *, n_max: int, orderings: int, seed: int
) -> list[Replay]:
    """Blocks of at most BLOCK_DRAWS (ordering × problem, sample) entries over the problems of
    one group (``sizes``: its rows of estimator_sizes.sql) with its ``n_max`` samples, each
    replaying ``rules``. A block's random stream is seeded by (seed, dataset, sample count, block
    number), not by model or strategy: groups over the same problems replay the same orderings,
    which pairs their comparisons (as ``plan_tasks`` does for the subsets)."""
    assert sizes["gid"].nunique() <= 1, "one group at a time"
    tasks = []
    for (dataset, n), rows in sizes.groupby(["dataset", "samples"], sort=True).indices.items():
        if int(n) != n_max:
            continue  # a problem short of n_max samples is left out, as at n_max for fixed n
        per_block = max(BLOCK_DRAWS // (int(n) * orderings), 1)
        for number, start in enumerate(range(0, len(rows), per_block)):
            stream = [seed, zlib.crc32(str(dataset).encode()), int(n), number, ADAPTIVE_STREAM]
            tasks.append(Replay(rows[start : start + per_block], int(n), rules, stream))
    return tasks


def replay_block(data: ReplayColumns, task: Replay, *, orderings: int) -> dict[str, np.ndarray]:
    """name -> (problem, rule): the means over ``orderings`` random orderings of each problem's
    samples of the rule's hit (``estimate``), draws (``samples``) and drawn ``COSTS``."""
    c, n = len(task.problems), task.samples
    rng = np.random.default_rng(task.seed)
    # (problem × ordering, draw) -> stored sample index: an independent permutation per row.
    order = rng.permuted(np.broadcast_to(np.arange(n, dtype=np.int32), (c * orderings, n)), axis=1)
    problem = np.repeat(np.arange(c), orderings)  # (row,) -> problem in the block
    sample = data.start[task.problems][problem][:, None] + order  # (row, draw) -> sample row
    keys = data.kid[sample]
    key_correct = np.zeros((c, max(int(keys.max(initial=0)) + 1, 1)), dtype=bool)
    first = data.start[task.problems][:, None] + np.arange(n)  # (problem, sample) -> sample row
    stored = data.kid[first]
    answered = stored >= 0
    # Every sample of one (problem, key) carries the same key_correct, so repeated writes agree.
    key_correct[np.nonzero(answered)[0], stored[answered]] = data.key_correct[first][answered]
    weighted = any(r.reads_scores for r in task.rules)
    tallies = tally(keys, data.score[sample] if weighted else None, rank=order)
    spent = {k: np.cumsum(v[sample], axis=1) for k, v in data.costs.items()}  # (row, draw) -> drawn so far
    values: dict[str, np.ndarray] = {}
    out = {k: np.empty((c, len(task.rules))) for k in ("estimate", "samples", *COSTS)}
    for i, rule in enumerate(task.rules):
        if rule.rule not in values:
            values[rule.rule] = criterion(tallies, rule.rule)
        stop = first_stop(values[rule.rule], threshold=rule.threshold, window=rule.window)  # (row,)
        winner = vote(tallies, stop, weighted=rule.reads_scores)
        hit = (winner >= 0) & key_correct[problem, np.maximum(winner, 0)]
        out["estimate"][:, i] = hit.reshape(c, orderings).mean(axis=1)
        out["samples"][:, i] = stop.reshape(c, orderings).mean(axis=1)
        for k in COSTS:
            drawn = np.take_along_axis(spent[k], (stop - 1)[:, None], axis=1)[:, 0]
            out[k][:, i] = drawn.reshape(c, orderings).mean(axis=1)
    return out


def samples_per_problem(con: duckdb.DuckDBPyConnection, table: pd.DataFrame) -> np.ndarray:
    """(row,) -> samples spent per problem for the rows of an accuracy table with a ``cell``
    column: the expected draws for the adaptive cells, the mean samples drawn for a group with a
    budget (a tree search's leaves, the live adaptive strategy's draws), n for the others."""
    spent = con.sql(load_sql("adaptive_samples_per_problem")).df().set_index("cell")["samples_per_problem"]
    keys = ["model", "dataset", "strategy", "n"]
    drawn = con.sql(load_sql("adaptive_budget_samples")).df().groupby(keys, as_index=False)["samples"].mean()
    budget = table[keys].merge(drawn, on=keys, how="left")["samples"].to_numpy(dtype=np.float64)
    fixed = np.where(np.isnan(budget), table["n"].to_numpy(dtype=np.float64), budget)
    adaptive = table["cell"].map(spent).to_numpy(dtype=np.float64, na_value=np.nan)
    return np.where(np.isnan(adaptive), fixed, adaptive)


def problem_samples(con: duckdb.DuckDBPyConnection, table: pd.DataFrame) -> np.ndarray:
    """(row,) -> samples spent for the rows of the per-problem table: the adaptive cell's expected
    draws on that problem, the samples a group with a budget drew for it, or n."""
    keys = ["model", "dataset", "strategy", "method", "n", "problem_id"]
    spent = con.sql(load_sql("adaptive_problem_samples")).df()
    merged = table[keys].merge(spent, on=keys, how="left")
    drawn = con.sql(load_sql("adaptive_budget_samples")).df()
    budget = table[[k for k in keys if k != "method"]].merge(
        drawn, on=[k for k in keys if k != "method"], how="left"
    )["samples"]
    return merged["samples"].fillna(budget).fillna(merged["n"].astype(np.float64)).to_numpy(dtype=np.float64)
