"""Synthetic sweeps with a known truth, in the shapes the analysis reads.

- ``make_accuracy_table``: a table shaped like ``analysis.estimators.compute_accuracy``'s output.
  Accuracy follows a − b·exp(−c·n) per curve with a limit that grows with model size, and FLOPs
  are 2·params·tokens·n, so the tables look like a real sweep without running one. Each
  dataset has ``problems`` problems with a latent difficulty u ~ U(0, 1) shared by every curve; a
  problem counts as solved on a curve when u < the curve's accuracy there. Accuracy, its interval
  and ``accuracy_replicates`` are then the per-problem means and their bootstrap over problems
  (``analysis/bootstrap.py``), as in the real table.
- ``simulate_majority_vote``: whole sweeps drawn from a known population (problems with a
  right-answer chance q, samples drawn per problem), evaluated by the real resampling estimator
  (``analysis/subsets.py``); ``majority_truth`` is the population's exact majority-vote
  accuracy, so coverage of the intervals can be counted.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.bootstrap import percentile_interval, replicate_means
from analysis.subsets import METHODS, SCORES, Block, resample_hits

COLUMNS = [
    "model", "model_params", "dataset", "strategy", "method", "n", "accuracy", "ci_low", "ci_high",
    "problems", "tokens_per_problem", "policy_flops_per_problem", "reward_flops_per_problem",
    "flops_per_problem", "accuracy_replicates",
]  # fmt: skip
MODELS = {"pythia-410m": 410_000_000, "pythia-1.4b": 1_400_000_000, "pythia-6.9b": 6_900_000_000}
NS = (1, 2, 4, 8, 16, 32, 64)
TOKENS = 300.0
REWARD_PARAMS = 7_000_000_000


def make_accuracy_table(
    *,
    models: dict[str, int] | None = None,
    strategies: tuple[str, ...] = ("greedy", "sampling", "rebase"),
    reward: bool = True,
    ns: tuple[int, ...] = NS,
    datasets: tuple[str, ...] = ("math",),
    seed: int = 0,
    problems: int = 500,
    replicates: int = 200,
) -> pd.DataFrame:
    """One row per (model, dataset, strategy, method, n). ``reward=False``: no BoN/WV rows.
    ``replicates=0``: a table without bootstrap replicates (NaN intervals)."""
    rng = np.random.default_rng(seed)
    rows = []
    for dataset in datasets:
        for model, params in (models or MODELS).items():
            size = np.log10(params) - 8  # 0.6 .. 1.8 for the default models
            for strategy in strategies:
                if strategy == "greedy":
                    rows.append(_row(model, params, dataset, strategy, "greedy", 1, 0.1 + 0.1 * size, False))
                    continue
                methods = ["majority_vote", "pass_at_n"]
                if reward:
                    methods += [f"{family}_{agg}" for family in ("weighted_vote", "best_of_n")
                                for agg in ("last", "min", "prod", "mean")]
                boost = 0.05 if strategy == "rebase" else 0.0
                for method in methods:
                    limit = min(0.95, 0.15 + 0.15 * size + boost + (0.3 if method == "pass_at_n" else 0.0)
                                + rng.uniform(0, 0.03))
                    for n in ns:
                        acc = limit - 0.12 * np.exp(-0.3 * n) + rng.normal(0, 0.002)
                        rows.append(_row(model, params, dataset, strategy, method, n, acc, reward))
    table = pd.DataFrame(rows, columns=COLUMNS)
    return add_problem_bootstrap(table, problems=problems, replicates=replicates, seed=seed)


def add_problem_bootstrap(table: pd.DataFrame, *, problems: int, replicates: int, seed: int) -> pd.DataFrame:
    """``table`` with accuracy, interval and replicates from ``problems`` problems per dataset, each
    solved on a row when its latent difficulty is below the row's accuracy (see the module docstring)."""
    table = table.copy()
    table["problems"] = problems
    table["accuracy_replicates"] = None
    for dataset, rows in table.groupby("dataset").indices.items():
        rng = np.random.default_rng([seed, zlib.crc32(str(dataset).encode())])
        u = rng.random(problems)  # (problem,) latent difficulty
        solved = u[None, :] < table["accuracy"].to_numpy()[rows, None]  # (row, problem)
        table.loc[table.index[rows], "accuracy"] = solved.mean(axis=1)
        if not replicates:
            table.loc[table.index[rows], ["ci_low", "ci_high"]] = np.nan
            continue
        cell, problem = np.nonzero(np.ones_like(solved))
        reps = replicate_means(cell, problem, solved[cell, problem], cells=len(rows), problems=problems,
                               replicates=replicates, rng=rng)  # (row, replicate)
        low, high = percentile_interval(reps)
        table.loc[table.index[rows], "ci_low"] = low
        table.loc[table.index[rows], "ci_high"] = high
        table.loc[table.index[rows], "accuracy_replicates"] = pd.Series(list(reps), index=table.index[rows])
    if not replicates:
        table = table.drop(columns="accuracy_replicates")
    return table


def _row(model: str, params: int, dataset: str, strategy: str, method: str, n: int, acc: float,
         reward: bool) -> dict[str, object]:
    acc = float(np.clip(acc, 0, 1))
    policy = 2.0 * params * TOKENS * n
    reward_flops = 2.0 * REWARD_PARAMS * TOKENS * n if reward and strategy != "greedy" else 0.0
    return {
        "model": model, "model_params": params, "dataset": dataset, "strategy": strategy, "method": method,
        "n": n, "accuracy": acc, "ci_low": np.nan, "ci_high": np.nan,
        "problems": 500, "tokens_per_problem": TOKENS * n, "policy_flops_per_problem": policy,
        "reward_flops_per_problem": reward_flops, "flops_per_problem": policy,
    }


# --- whole sweeps from a known population ---------------------------------------------------

#: Chance that a sample's wrong answer is each of the two wrong answer keys.
WRONG = (0.6, 0.4)


def majority_truth(q: np.ndarray, n: int) -> np.ndarray:
    """Exact majority-vote accuracy of n samples for problems whose samples are right with chance
    ``q`` (else one of two wrong answers, ``WRONG``). Ties go to one of the tied answers
    uniformly: the estimator breaks them by the lowest sample index, and samples are exchangeable."""
    q = np.asarray(q, dtype=float)
    chances = (q, (1 - q) * WRONG[0], (1 - q) * WRONG[1])
    total = np.zeros_like(q)
    for right in range(n + 1):
        for first in range(n - right + 1):
            counts = (right, first, n - right - first)
            top = max(counts)
            if counts[0] != top:
                continue
            ways = math.factorial(n) / math.prod(math.factorial(c) for c in counts)
            chance = ways * np.prod([p**c for p, c in zip(chances, counts)], axis=0)
            total += chance / sum(c == top for c in counts)
    return total


@dataclass(frozen=True)
class Sweeps:
    """``sweeps`` simulated sweeps of ``models`` × problems, each problem with ``samples`` samples."""

    estimate: np.ndarray  # (sweep, model, problem, n) -> per-problem majority-vote estimate
    q: np.ndarray  # (sweep, model, problem) -> the problem's right-answer chance


def simulate_majority_vote(
    population: np.ndarray,
    *,
    sweeps: int,
    problems: int,
    samples: int,
    n_values: list[int],
    resamples: int,
    seed: int,
) -> Sweeps:
    """Draw ``sweeps`` sweeps: each draws ``problems`` problems (a row of ``population`` (problem
    type, model) -> right-answer chance, uniformly at random), ``samples`` samples per (model,
    problem), and estimates majority vote at each n by ``resample_hits`` on ``resamples`` subsets."""
    rng = np.random.default_rng(seed)
    types = rng.integers(0, len(population), size=(sweeps, problems))  # (sweep, problem)
    q = np.transpose(population[types], (0, 2, 1))  # (sweep, model, problem)
    u = rng.random((*q.shape, samples))
    wrong = np.where(rng.random(u.shape) < WRONG[0], 1, 2)
    keys = np.where(u < q[..., None], 0, wrong).reshape(-1, samples)  # (problem row, sample)
    rows = len(keys)
    block = Block(
        keys=keys.astype(np.int32),
        key_correct=np.tile([True, False, False], (rows, 1)),
        correct=keys == 0,
        scores={s: np.full(keys.shape, np.nan) for s in SCORES},
    )
    hits = resample_hits(block, n_values=n_values, resamples=resamples, rng=rng)
    estimate = hits[:, :, METHODS.index("majority_vote")] / resamples  # (problem row, n)
    return Sweeps(estimate=estimate.reshape(*q.shape, len(n_values)), q=q)


def bootstrap_sweeps(estimate: np.ndarray, *, replicates: int, seed: int) -> np.ndarray:
    """(sweep, cell, replicate) -> replicate accuracy of each sweep's cells, from ``estimate``
    (sweep, cell, problem), by the analysis's bootstrap (one draw of problems per sweep, shared
    by its cells)."""
    sweeps, cells, problems = estimate.shape
    cell, problem = (g.ravel() for g in np.meshgrid(np.arange(cells), np.arange(problems), indexing="ij"))
    out = np.empty((sweeps, cells, replicates))
    for s in range(sweeps):
        rng = np.random.default_rng([seed, s])
        out[s] = replicate_means(cell, problem, estimate[s].ravel(), cells=cells, problems=problems,
                                 replicates=replicates, rng=rng)
    return out
