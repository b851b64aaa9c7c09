"""Synthetic accuracy tables in the shape of ``analysis.estimators.compute_accuracy``'s output.

Accuracy follows a − b·exp(−c·n) per curve with a limit that grows with model size, and FLOPs
are 2·params·tokens·n, so the tables look like a real sweep without running one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

COLUMNS = [
    "model", "model_params", "dataset", "strategy", "method", "n", "accuracy", "ci_low", "ci_high",
    "problems", "tokens_per_problem", "policy_flops_per_problem", "reward_flops_per_problem",
    "flops_per_problem",
]
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
) -> pd.DataFrame:
    """One row per (model, dataset, strategy, method, n). ``reward=False``: no BoN/WV rows."""
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
    return pd.DataFrame(rows, columns=COLUMNS)


def _row(model: str, params: int, dataset: str, strategy: str, method: str, n: int, acc: float,
         reward: bool) -> dict[str, object]:
    acc = float(np.clip(acc, 0, 1))
    policy = 2.0 * params * TOKENS * n
    reward_flops = 2.0 * REWARD_PARAMS * TOKENS * n if reward and strategy != "greedy" else 0.0
    return {
        "model": model, "model_params": params, "dataset": dataset, "strategy": strategy, "method": method,
        "n": n, "accuracy": acc, "ci_low": max(0.0, acc - 0.03), "ci_high": min(1.0, acc + 0.03),
        "problems": 500, "tokens_per_problem": TOKENS * n, "policy_flops_per_problem": policy,
        "reward_flops_per_problem": reward_flops, "flops_per_problem": policy,
    }
