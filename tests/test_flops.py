"""The one FLOPs rule (sweep/inference/flops.py): its DuckDB macros (analysis/sql/flops.sql) compute the same
numbers, and /solve's cost of an answer equals the estimators' cost of the same rows."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_estimators import PARAMS, REWARD_PARAMS, row, write

from analysis.estimators import compute_problem_estimates
from analysis.views import connect, create_flops_macros
from sweep.inference.flops import Flops, forward_flops, problem_flops, row_flops
from sweep.inference.strategies.base import RawSample, SampleCost
from sweep.serve.solve import _flops

amount = st.floats(0, 1e15, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(prompt=amount, rows=st.lists(st.tuples(amount, amount, amount), min_size=1, max_size=8),
       include=st.booleans())  # fmt: skip
def test_sql_macros_are_the_python_rule(
    prompt: float, rows: list[tuple[float, float, float]], include: bool
) -> None:
    con = duckdb.connect()
    create_flops_macros(con)
    values = [(prompt, c, x, r) for c, x, r in rows]
    got = con.execute(
        "SELECT problem_policy_flops(p, c, x), sum(row_reward_flops(r)),"
        " total_flops(problem_policy_flops(p, c, x), sum(row_reward_flops(r)), $include)"
        " FROM (SELECT unnest($p) AS p, unnest($c) AS c, unnest($x) AS x, unnest($r) AS r)",
        {"p": [v[0] for v in values], "c": [v[1] for v in values], "x": [v[2] for v in values],
         "r": [v[3] for v in values], "include": include},
    ).fetchone()  # fmt: skip
    cost = problem_flops(
        prompt_flops=prompt,
        rows=[row_flops(completion_flops=c, context_flops=x, reward_flops=r) for c, x, r in rows],
    )
    expected = (cost.policy, cost.reward, cost.total(include_reward_flops=include))
    assert got == pytest.approx(expected, rel=1e-12)


def test_missing_context_counts_as_zero() -> None:
    con = duckdb.connect()
    create_flops_macros(con)
    assert con.execute("SELECT row_policy_flops(5.0::DOUBLE, NULL)").fetchone() == (5.0,)


def test_total_leaves_reward_out_on_request() -> None:
    cost = Flops(policy=10.0, reward=3.0)
    assert (cost.total(), cost.total(include_reward_flops=False)) == (13.0, 10.0)


def raw(index: int, *, prompt_tokens: int, tokens: int, cost: SampleCost | None = None) -> RawSample:
    return RawSample(
        problem_id="p0", sample_index=index, prompt="q", prompt_tokens=prompt_tokens, completion="a",
        completion_tokens=tokens, finish_reason="stop", cumulative_logprob=None, latency_s=1.0, seed=0,
        error=None, budget=4 if cost else None, node_id=index if cost else None, cost=cost,
    )  # fmt: skip


def test_solve_costs_what_the_estimators_charge(tmp_path: Path) -> None:
    """The same rows, two readers: /solve's cost of a tree search (all its leaves) and of 3 scored
    samples equals the estimators' per-problem cost of those rows (weighted vote: reward counts)."""
    share = SampleCost(prompt_tokens=60, completion_tokens=25.0, context_tokens=9.5, reward_tokens=40.0)
    leaves = [raw(i, prompt_tokens=60, tokens=80, cost=share) for i in range(4)]
    tree = _flops(leaves, PARAMS, REWARD_PARAMS, 0)
    sampled = [raw(i, prompt_tokens=60, tokens=t) for i, t in enumerate((10, 20, 30))]
    flat = _flops(sampled, PARAMS, REWARD_PARAMS, reward_tokens=10 + 20 + 30)  # scored now: each its tokens

    rows = [
        row(problem_id="p0", index=i, key="a", answer="a", scores={"last": 0.5}, tokens=25, prompt_tokens=60,
            context_tokens=9.5, strategy="rebase", budget=4)
        for i in range(4)
    ]  # fmt: skip
    for r in rows:  # a leaf's reward share, not its own tokens' (row() charges those)
        r["reward_flops"] = forward_flops(REWARD_PARAMS, 40.0)
    rows += [
        row(problem_id="p0", index=i, key="a", answer="a", scores={"last": 0.5}, tokens=t, prompt_tokens=60)
        for i, t in enumerate((10, 20, 30))
    ]
    write(tmp_path / "out", rows)
    table = compute_problem_estimates(connect(str(tmp_path / "out")), resamples=1, n_values=[3, 4])
    weighted = table[table["method"] == "weighted_vote_last"].set_index("strategy")
    for strategy, cost in (("rebase", tree), ("s", flat)):
        got = weighted.loc[strategy]
        assert got["policy_flops"] == pytest.approx(cost.policy), strategy
        assert got["reward_flops"] == pytest.approx(cost.reward), strategy
        assert got["flops"] == pytest.approx(cost.total())
    assert tree.policy == pytest.approx(forward_flops(PARAMS, 60 + 4 * (25 + 9.5)))
