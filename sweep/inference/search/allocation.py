"""REBASE's budget allocation (Wu et al., 2024, §3.1.2).

At each depth, open node j with reward R_j gets W_j = Round(B · softmax(R_j / T_b))
children, where B is the remaining budget. Plain rounding can over- or under-spend, so
the quotas are rounded by the largest-remainder method: every node gets the floor of its
quota, and the leftover units go to the largest fractional parts (ties to the higher
reward, then the earlier node). The children then sum to exactly B, and a higher reward
never gets fewer children than a lower one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def softmax_weights(rewards: Sequence[float], temperature: float) -> list[float]:
    """softmax(R / T); T = 0 puts all weight on the best reward(s), split evenly."""
    if not rewards:
        return []
    best = max(rewards)
    if temperature <= 0:
        winners = [r == best for r in rewards]
        return [w / sum(winners) for w in winners]
    exps = [math.exp((r - best) / temperature) for r in rewards]  # shifted: no overflow
    total = sum(exps)
    return [e / total for e in exps]


def allocate_children(rewards: Sequence[float], budget: int, temperature: float = 0.1) -> list[int]:
    """Children per open node: sums to ``budget``; monotone in reward."""
    if budget < 0:
        raise ValueError("budget must be non-negative")
    if not rewards:
        if budget:
            raise ValueError("a positive budget needs at least one open node")
        return []
    quotas = [budget * w for w in softmax_weights(rewards, temperature)]
    counts = [math.floor(q) for q in quotas]
    leftover = budget - sum(counts)
    order = sorted(range(len(rewards)), key=lambda j: (-(quotas[j] - counts[j]), -rewards[j], j))
    for j in order[:leftover]:
        counts[j] += 1
    return counts
