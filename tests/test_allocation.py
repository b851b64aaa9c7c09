"""REBASE allocation: the paper's softmax quotas rounded by largest remainder, exact budget,
monotone in reward, the two temperature limits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy.special import softmax

from sweep.inference.search.allocation import allocate_children, softmax_weights

rewards_lists = st.lists(st.floats(min_value=0.0, max_value=1.0, allow_nan=False), min_size=1, max_size=20)
budgets = st.integers(min_value=0, max_value=256)
temperatures = st.floats(min_value=1e-3, max_value=100.0)


@given(rewards_lists, budgets, temperatures)
def test_children_sum_to_the_remaining_budget(rewards: list[float], budget: int, temperature: float) -> None:
    counts = allocate_children(rewards, budget, temperature)
    assert sum(counts) == budget
    assert all(c >= 0 for c in counts)


@given(rewards_lists, budgets, temperatures)
def test_children_are_the_largest_remainder_rounding_of_softmax_quotas(
    rewards: list[float], budget: int, temperature: float
) -> None:
    # Reference: quotas B · softmax(R / T_b) (scipy's softmax, not ours), floors, then one more child
    # to each of the largest fractional parts until the budget is spent.
    quotas = budget * softmax(np.array(rewards) / temperature)
    floors = np.floor(quotas).astype(int)
    parts = np.sort(quotas - floors)[::-1]
    leftover = budget - int(floors.sum())
    # Only inputs whose rounding is unambiguous: no quota a rounding error away from an integer,
    # and no tie at the cut (the tie rule is tested below).
    assume(all(abs(q - round(q)) > 1e-9 or q == round(q) for q in quotas))
    assume(leftover in (0, len(parts)) or parts[leftover - 1] - parts[leftover] > 1e-9)
    order = np.argsort(-(quotas - floors), kind="stable")
    floors[order[:leftover]] += 1
    assert allocate_children(rewards, budget, temperature) == floors.tolist()


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


def test_largest_remainder_spends_what_plain_rounding_would_not() -> None:
    # B = 6, T_b = 0.2, rewards 0.3 / 0.9 / 0.1 / 0.75 / 0.8 / 0.6: quotas 0.126, 2.532, 0.046, 1.196,
    # 1.535, 0.565. Plain rounding spends 7; floors spend 4, and the two largest parts (0.565, 0.535)
    # get one more each.
    assert allocate_children([0.3, 0.9, 0.1, 0.75, 0.8, 0.6], 6, 0.2) == [0, 2, 0, 1, 2, 1]
    # B = 5: quotas 0.319, 0.410, 2.361, 0.071, 1.838; plain rounding spends 4.
    assert allocate_children([0.5, 0.55, 0.9, 0.2, 0.85], 5, 0.2) == [0, 1, 2, 0, 2]


def test_ties_between_equal_rewards_go_to_the_earlier_node() -> None:
    # Equal rewards: equal quotas 1.5 / 1.5, one unit left over, to the earlier node.
    assert allocate_children([0.5, 0.5], 3, 0.1) == [2, 1]
    # Four equal rewards, budget 2: quotas 0.5 each, the two earliest nodes get one.
    assert allocate_children([0.2, 0.2, 0.2, 0.2], 2, 0.1) == [1, 1, 0, 0]


def test_bad_inputs() -> None:
    with pytest.raises(ValueError):
        allocate_children([0.5], -1)
    with pytest.raises(ValueError):
        allocate_children([], 3)
    assert allocate_children([], 0) == []
