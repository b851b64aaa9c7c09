"""analysis/frontier.py: the vectorised frontier equals a brute-force O(n²) dominance check."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from synthetic_accuracy import make_accuracy_table

from analysis.frontier import compute_frontier


def brute_force(x: list[float], y: list[float]) -> set[int]:
    """Indices no other point dominates (x ≤ and y ≥, one strict), by checking every pair."""
    keep = set()
    for i in range(len(x)):
        dominated = any(
            x[j] <= x[i] and y[j] >= y[i] and (x[j] < x[i] or y[j] > y[i]) for j in range(len(x)) if j != i
        )
        if not dominated:
            keep.add(i)
    return keep


# Small integer grids make ties in x, in y and exact duplicates common; floats cover the rest.
coordinate = st.one_of(st.integers(0, 6).map(float), st.floats(0, 1e15, allow_nan=False))
points = st.lists(st.tuples(coordinate, st.floats(0, 1), st.sampled_from(["sampling", "rebase", "mcts"])),
                  max_size=40)


def frame(rows: list[tuple[float, float, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["flops_per_problem", "accuracy", "strategy"]).assign(
        method="majority_vote", model="m")


@settings(max_examples=200, deadline=None)
@given(rows=points)
def test_overall_frontier_matches_brute_force(rows: list[tuple[float, float, str]]) -> None:
    df = frame(rows)
    got = compute_frontier(df)
    assert set(got.index) == brute_force(df["flops_per_problem"].tolist(), df["accuracy"].tolist())
    assert got["flops_per_problem"].is_monotonic_increasing
    assert list(got.columns) == list(df.columns)


@settings(max_examples=200, deadline=None)
@given(rows=points)
def test_grouped_frontier_matches_brute_force_per_group(rows: list[tuple[float, float, str]]) -> None:
    df = frame(rows)
    expected = set()
    for _, part in df.groupby("strategy"):
        kept = brute_force(part["flops_per_problem"].tolist(), part["accuracy"].tolist())
        expected |= {part.index[i] for i in kept}
    got = compute_frontier(df, by="strategy")
    assert set(got.index) == expected
    for _, part in got.groupby("strategy"):
        assert part["flops_per_problem"].is_monotonic_increasing
        # Along a frontier, more compute always buys strictly more accuracy.
        distinct = part.drop_duplicates(["flops_per_problem", "accuracy"])
        assert distinct["accuracy"].is_monotonic_increasing and distinct["accuracy"].is_unique
    assert got.equals(compute_frontier(df, by=["strategy"]))


def test_known_frontier() -> None:
    df = frame([
        (1.0, 0.1, "s"),  # 0: cheapest: on
        (2.0, 0.1, "s"),  # 1: same accuracy as 0, more compute: off
        (2.0, 0.3, "s"),  # 2: on
        (3.0, 0.2, "s"),  # 3: dominated by 2: off
        (4.0, 0.5, "s"),  # 4: on
        (4.0, 0.5, "s"),  # 5: duplicate of 4: neither dominates the other, both on
        (5.0, np.nan, "s"),  # 6: no accuracy: never on
    ])
    assert compute_frontier(df).index.tolist() == [0, 2, 4, 5]


def test_frontier_on_accuracy_table_by_strategy() -> None:
    df = make_accuracy_table()
    overall = compute_frontier(df)
    by_strategy = compute_frontier(df, by="strategy")
    assert set(by_strategy["strategy"]) == {"greedy", "sampling", "rebase"}
    # Every overall frontier point is also on its own group's frontier.
    assert set(overall.index) <= set(by_strategy.index)


def test_frontier_of_many_points_matches_brute_force_on_a_sample() -> None:
    """200,000 points with many ties: each of 400 sampled points is on the frontier exactly when no
    point of the whole set dominates it (checked against all of them)."""
    rng = np.random.default_rng(0)
    size = 200_000
    df = pd.DataFrame({"flops_per_problem": rng.integers(1, 5000, size).astype(float),
                       "accuracy": rng.integers(0, 1000, size) / 1000,
                       "strategy": rng.choice(["a", "b"], size)})
    x, y = df["flops_per_problem"].to_numpy(), df["accuracy"].to_numpy()
    frontier = set(compute_frontier(df).index)
    # The frontier's own points first (few, and easy to miss), then random ones.
    sample = np.concatenate([list(frontier)[:100], rng.choice(size, 300, replace=False)])
    for i in sample:
        dominated = np.any((x <= x[i]) & (y >= y[i]) & ((x < x[i]) | (y > y[i])))
        assert (i in frontier) == (not dominated), i
    by_strategy = set(compute_frontier(df, by="strategy").index)
    for strategy, part in df.groupby("strategy"):
        grouped = by_strategy & set(part.index)
        px, py = part["flops_per_problem"].to_numpy(), part["accuracy"].to_numpy()
        on = np.nonzero(part.index.isin(list(grouped)))[0]
        for j in np.concatenate([on[:50], rng.choice(len(part), 150, replace=False)]):
            dominated = np.any((px <= px[j]) & (py >= py[j]) & ((px < px[j]) | (py > py[j])))
            assert (part.index[j] in grouped) == (not dominated), (strategy, j)
