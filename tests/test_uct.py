"""UCT selection against a hand-computed example; backup keeps running means."""

from __future__ import annotations

import math

import pytest

from sweep.inference.search.uct import SearchNode, select_child, uct_score


def tree() -> SearchNode:
    root = SearchNode(node_id=0, parent=None)
    a = SearchNode(node_id=1, parent=root, depth=1)
    b = SearchNode(node_id=2, parent=root, depth=1)
    root.children = [a, b]
    # a visited 3 times (values 0.9, 0.8, 0.7), b once (value 0.6): root has 4 visits.
    for value in (0.9, 0.8, 0.7):
        a.backup(value)
    b.backup(0.6)
    return root


def test_backup_is_a_running_mean() -> None:
    root = tree()
    a, b = root.children
    assert root.visits == 4 and root.q == pytest.approx((0.9 + 0.8 + 0.7 + 0.6) / 4)
    assert a.q == pytest.approx(0.8) and b.q == pytest.approx(0.6)


def test_uct_matches_hand_computation() -> None:
    root = tree()
    a, b = root.children
    # a: 0.8 + sqrt(ln 4 / 3) = 0.8 + 0.6798 = 1.4798; b: 0.6 + sqrt(ln 4 / 1) = 0.6 + 1.1774 = 1.7774
    assert uct_score(a, root.visits) == pytest.approx(0.8 + math.sqrt(math.log(4) / 3))
    assert uct_score(b, root.visits) == pytest.approx(1.7774, abs=1e-4)
    assert select_child(root) is b  # exploration wins at C = 1
    assert select_child(root, c=0.1) is a  # exploitation wins when C is small


def test_unvisited_children_come_first() -> None:
    root = tree()
    fresh = SearchNode(node_id=3, parent=root, depth=1)
    root.children.append(fresh)
    assert select_child(root) is fresh
