"""Inference FLOPs: 2 × parameters per processed token (Kaplan et al., 2020), and the one rule
that turns a problem's sample rows into what answering it cost.

A forward pass of a dense decoder costs about 2N FLOPs per token for N parameters (one multiply
and one add per weight); attention's context-dependent term is ignored, as in the paper this
project reproduces.

The rule (README, "FLOPs"). Every sample row carries its request's ``prompt_flops``, its own
``completion_flops``, ``context_flops`` (tree search: path context re-encoded beyond the root
prompt and not served from the prefix cache, the leaf's share; 0 for flat strategies) and
``reward_flops`` (the reward model's reads, the leaf's share for tree search). A problem
answered from some of its rows costs

    policy = prompt_flops (once per problem) + Σ (completion_flops + context_flops)
    reward = Σ reward_flops
    flops  = policy + reward        (reward left out with include_reward_flops=False)

so flat sampling at n costs, in expectation, prompt + n × mean(completion + context + reward).
``analysis/sql/flops.sql`` states the same rule as DuckDB macros for the SQL readers; a test
holds the two equal. Which rows' reward FLOPs a method spends is the caller's: a method pays for
the reward model when it reads scores (weighted vote, best-of-n) or when its search needed them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


def forward_flops(params: int, tokens: float) -> float:
    """FLOPs of processing ``tokens`` tokens (a share may be fractional) with ``params`` parameters."""
    return 2.0 * params * tokens


@dataclass(frozen=True)
class Flops:
    """Policy and reward-model FLOPs, kept apart."""

    policy: float
    reward: float

    def total(self, *, include_reward_flops: bool = True) -> float:
        return self.policy + (self.reward if include_reward_flops else 0.0)


def row_flops(*, completion_flops: float, context_flops: float, reward_flops: float) -> Flops:
    """What one sample row adds to its problem's cost; its prompt is charged once per problem."""
    return Flops(policy=completion_flops + context_flops, reward=reward_flops)


def problem_flops(*, prompt_flops: float, rows: Iterable[Flops]) -> Flops:
    """The cost of answering one problem from ``rows`` (each ``row_flops``): the prompt once, plus
    every row."""
    rows = list(rows)
    return Flops(
        policy=prompt_flops + sum(r.policy for r in rows),
        reward=sum(r.reward for r in rows),
    )
