"""REBASE allocation: exact budget, monotone in reward, the two temperature limits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sweep.search.allocation import allocate_children, softmax_weights

rewards_lists = st.lists(st.floats(min_value=0.0, max_value=1.0, allow_nan=False), min_size=1, max_size=20)
budgets = st.integers(min_value=0, max_value=256)
temperatures = st.floats(min_value=1e-3, max_value=100.0)


@given(rewards_lists, budgets, temperatures)
def test_children_sum_to_the_remaining_budget(rewards: list[float], budget: int, temperature: float) -> None:
    counts = allocate_children(rewards, budget, temperature)
    assert sum(counts) == budget
    assert all(c >= 0 for c in counts)


@given(rewards_lists, budgets, temperatures)
def test_higher_reward_never_gets_fewer_children(rewards: list[float], budget: int, temperature: float) -> None:
    counts = allocate_children(rewards, budget, temperature)
    for i, ri in enumerate(rewards):
        for j, rj in enumerate(rewards):
            if ri > rj:
                assert counts[i] >= counts[j]


@given(rewards_lists, budgets)
def test_zero_temperature_gives_everything_to_the_best(rewards: list[float], budget: int) -> None:
    counts = allocate_children(rewards, budget, temperature=0.0)
    best = max(rewards)
    assert sum(c for c, r in zip(counts, rewards, strict=True) if r == best) == budget


@given(st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=20, unique=True), budgets)
def test_temperature_towards_zero_converges_to_the_best(scaled: list[int], budget: int) -> None:
    rewards = [x / 1000 for x in scaled]  # distinct by at least 1e-3
    counts = allocate_children(rewards, budget, temperature=1e-5)
    assert counts[rewards.index(max(rewards))] == budget


@given(rewards_lists, budgets)
def test_infinite_temperature_splits_evenly(rewards: list[float], budget: int) -> None:
    counts = allocate_children(rewards, budget, temperature=1e12)
    assert max(counts) - min(counts) <= 1
    assert sum(counts) == budget


def test_paper_example_matches_hand_computation() -> None:
    # B = 8, T_b = 0.1, rewards 0.9 / 0.8 / 0.5: softmax weights e^9, e^8, e^5 (normalised).
    weights = softmax_weights([0.9, 0.8, 0.5], 0.1)
    assert weights[0] == pytest.approx(0.7214, abs=1e-3)  # 8103 / (8103 + 2981 + 148)
    assert allocate_children([0.9, 0.8, 0.5], 8, 0.1) == [6, 2, 0]


def test_bad_inputs() -> None:
    with pytest.raises(ValueError):
        allocate_children([0.5], -1)
    with pytest.raises(ValueError):
        allocate_children([], 3)
    assert allocate_children([], 0) == []
