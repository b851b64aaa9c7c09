"""analysis/sql/summary.sql: real DuckDB over real Parquet, checked against hand-computed answers."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sample_rows import answered, sample_row, write_shard

from analysis.views import connect, create_flops_macros, query
from sweep.results.store import ResultsStore

PARAMS = 1000  # model parameters: completion_flops = 2 * PARAMS * tokens
REWARD_PARAMS = 300  # reward model parameters


def sample(
    *,
    shard_id: str,
    problem_id: str,
    index: int,
    key: str | None,
    answer: str,
    tokens: int,
    prompt_tokens: int = 50,
    latency: float = 1.0,
    error: str | None = None,
    model: str = "m",
    strategy: str = "s",
    dataset: str = "d",
    context_tokens: float = 0.0,
    reward_tokens: float = 0.0,
    budget: int | None = None,
) -> dict[str, Any]:
    return sample_row(
        shard_id=shard_id, config_id=shard_id, model=model, model_params=PARAMS, strategy=strategy,
        dataset=dataset, problem_id=problem_id, prompt_id=f"prompt-{problem_id}", sample_index=index,
        **(answered(key, answer) | {"correct": key == answer and error is None}),  # a failed sample is wrong
        prompt_tokens=prompt_tokens, completion_tokens=tokens, finish_reason=None if error else "stop",
        context_flops=2.0 * PARAMS * context_tokens, latency_s=latency, error=error,
        reward_flops=2.0 * REWARD_PARAMS * reward_tokens, budget=budget,
        node_id=index if budget is not None else None,
    )  # fmt: skip


def write(root: Path, rows: list[dict[str, Any]]) -> None:
    """``rows`` (one model, strategy and shard id) as one shard file under ``root``."""
    write_shard(ResultsStore(str(root)), rows)


def as_rows(table: pa.Table) -> dict[tuple[str, str, int], dict[str, Any]]:
    return {(r["strategy"], r["method"], r["n"]): r for r in table.to_pylist()}


# --- the hand-computed case ----------------------------------------------------------------

VoteRow = tuple[str, list[str | None]]  # (reference answer, answer key of each sample in index order)

# problem -> (reference answer, answer keys of samples 0..3). None: no answer extracted.
VOTES: dict[str, VoteRow] = {
    # n=1 "1" wrong; n=2 tie 1:1 -> "1" seen first, wrong; n=3 "2" wins; n=4 "2" 2:1, right.
    "p1": ("2", ["1", "2", "2", None]),
    # n=1 nothing to vote on, wrong; n=2 "5"; n=3 tie 5:3 -> "5" seen first; n=4 "3" 2:1, wrong.
    "p2": ("5", [None, "5", "3", "3"]),
    # no sample answers at any n: wrong.
    "p3": ("7", [None, None, None, None]),
    # n=1 "9"; n=2 tie -> "9" first; n=3 "8" 2:1, wrong; n=4 tie 2:2 -> "9" first, right.
    "p4": ("9", ["9", "8", "8", "9"]),
}
EXPECTED_ACCURACY = {1: 1 / 4, 2: 2 / 4, 3: 2 / 4, 4: 2 / 4}


def tokens_of(problem: str, index: int) -> int:
    return 10 * int(problem[1:]) + 3 * index + 1


def prompt_tokens_of(problem: str) -> int:
    return 40 + int(problem[1:])


def latency_of(problem: str, index: int) -> float:
    return 0.5 * int(problem[1:]) + 0.1 * index


@pytest.fixture
def output(tmp_path: Path) -> Path:
    root = tmp_path / "out"
    sampled = [
        sample(
            shard_id="shard-s",
            problem_id=pid,
            index=i,
            key=key,
            answer=answer,
            tokens=tokens_of(pid, i),
            prompt_tokens=prompt_tokens_of(pid),
            latency=latency_of(pid, i),
            # A failed sample: no completion, no vote; counted among errors.
            error="engine died" if (pid, i) == ("p3", 3) else None,
        )
        for pid, (answer, keys) in VOTES.items()
        for i, key in enumerate(keys)
    ]
    # Rows in a scrambled order: the SQL must not rely on file order.
    write(root, sampled[::-1])
    greedy_keys = {"p1": ("2", "2"), "p2": ("5", "4"), "p3": ("7", None), "p4": ("9", "9")}
    greedy = [
        sample(shard_id="shard-g", problem_id=pid, index=0, key=key, answer=answer, tokens=5, strategy="g")
        for pid, (answer, key) in greedy_keys.items()
    ]
    write(root, greedy)
    # A stale shard of the same strategy from an older grid: all right, far more tokens. Must be ignored.
    stale = [
        sample(shard_id="shard-old", problem_id=pid, index=i, key=answer, answer=answer, tokens=999)
        for pid, (answer, _) in VOTES.items()
        for i in range(4)
    ]
    write(root, stale)
    return root


def run_summary(output: Path, shard_ids: list[str], grid: list[tuple[str, str, int]]) -> pa.Table:
    con = connect(str(output))
    create_flops_macros(con)
    params = {
        "shard_ids": shard_ids,
        "strategies": [g[0] for g in grid],
        "methods": [g[1] for g in grid],
        "ns": [g[2] for g in grid],
    }
    return query(con, "summary", params)


GRID = [("g", "greedy", 1)] + [("s", "majority_vote", n) for n in (1, 2, 3, 4)]


def test_majority_vote_accuracy(output: Path) -> None:
    rows = as_rows(run_summary(output, ["shard-s", "shard-g"], GRID))
    assert set(rows) == set(GRID)
    for n, accuracy in EXPECTED_ACCURACY.items():
        row = rows[("s", "majority_vote", n)]
        assert row["accuracy"] == pytest.approx(accuracy), n
        assert (row["model"], row["dataset"], row["problems"]) == ("m", "d", 4)
    assert rows[("g", "greedy", 1)]["accuracy"] == pytest.approx(2 / 4)


def test_tokens_flops_latency_errors(output: Path) -> None:
    rows = as_rows(run_summary(output, ["shard-s", "shard-g"], GRID))
    for n in (1, 2, 3, 4):
        row = rows[("s", "majority_vote", n)]
        tokens = [sum(tokens_of(pid, i) for i in range(n)) for pid in VOTES]
        # The prompt is encoded once per request, then every completion token of the first n samples.
        flops = [2.0 * PARAMS * (prompt_tokens_of(pid) + t) for pid, t in zip(VOTES, tokens)]
        latency = [max(latency_of(pid, i) for i in range(n)) for pid in VOTES]
        assert row["tokens_per_problem"] == pytest.approx(sum(tokens) / 4), n
        assert row["flops_per_problem"] == pytest.approx(sum(flops) / 4), n
        assert row["policy_flops_per_problem"] == row["flops_per_problem"], n  # no reward model
        assert row["latency_s"] == pytest.approx(sum(latency) / 4), n
        assert row["errors"] == (1 if n == 4 else 0), n
    greedy = rows[("g", "greedy", 1)]
    assert greedy["tokens_per_problem"] == pytest.approx(5)
    assert greedy["flops_per_problem"] == pytest.approx(2.0 * PARAMS * (50 + 5))


def test_tree_search_flops_follow_the_rule(tmp_path: Path) -> None:
    """A search's leaves: the root prompt once, plus their shares of completion, re-encoded
    context and reward FLOPs; its reward FLOPs count, since the search read the scores."""
    root = tmp_path / "out"
    rows = [
        sample(shard_id="t", problem_id=pid, index=i, key="1", answer="1", tokens=20, prompt_tokens=70,
               context_tokens=7.5, reward_tokens=30.0, budget=4, strategy="rebase")
        for pid in ("p1", "p2")
        for i in range(4)
    ]  # fmt: skip
    write(root, rows)
    (row,) = run_summary(root, ["t"], [("rebase", "majority_vote", 4)]).to_pylist()
    policy = 2.0 * PARAMS * (70 + 4 * (20 + 7.5))
    reward = 2.0 * REWARD_PARAMS * 4 * 30.0
    assert row["policy_flops_per_problem"] == pytest.approx(policy)
    assert row["reward_flops_per_problem"] == pytest.approx(reward)
    assert row["flops_per_problem"] == pytest.approx(policy + reward)
    assert row["tokens_per_problem"] == pytest.approx(4 * 20)


def test_shards_not_listed_are_ignored(output: Path) -> None:
    only_old = as_rows(run_summary(output, ["shard-old"], GRID))
    assert set(only_old) == {("s", "majority_vote", n) for n in (1, 2, 3, 4)}  # no greedy shard listed
    assert all(r["accuracy"] == 1.0 for r in only_old.values())
    assert all(r["tokens_per_problem"] == 999 * r["n"] for r in only_old.values())
    assert run_summary(output, [], GRID).num_rows == 0


def test_grid_selects_strategies_and_n(output: Path) -> None:
    rows = as_rows(run_summary(output, ["shard-s", "shard-g"], [("s", "majority_vote", 3)]))
    assert list(rows) == [("s", "majority_vote", 3)]
    assert rows[("s", "majority_vote", 3)]["accuracy"] == pytest.approx(EXPECTED_ACCURACY[3])


def test_result_order(output: Path) -> None:
    table = run_summary(output, ["shard-s", "shard-g"], list(reversed(GRID)))
    order = [(r["strategy"], r["n"]) for r in table.to_pylist()]
    assert order == [("g", 1), ("s", 1), ("s", 2), ("s", 3), ("s", 4)]


def test_models_and_datasets_are_separate_groups(tmp_path: Path) -> None:
    root = tmp_path / "out"
    # Same strategy label and problem ids under two models and two datasets: votes must not mix.
    for model, dataset, key in [("m1", "d", "1"), ("m2", "d", "2"), ("m1", "e", "2")]:
        rows = [
            sample(
                shard_id=f"{model}-{dataset}", problem_id="p", index=i, key=key, answer="1", tokens=1,
                model=model, dataset=dataset,
            )
            for i in range(2)
        ]
        write(root, rows)
    table = run_summary(root, ["m1-d", "m2-d", "m1-e"], [("s", "majority_vote", 2)])
    got = {(r["model"], r["dataset"]): r["accuracy"] for r in table.to_pylist()}
    assert got == {("m1", "d"): 1.0, ("m2", "d"): 0.0, ("m1", "e"): 0.0}


# --- property: SQL majority vote equals a Python reference ---------------------------------


def reference_majority(keys: list[str | None], answer: str, n: int) -> bool:
    """Most votes among the first n non-null keys; ties to the key seen first; no votes: wrong."""
    first = keys[:n]
    counts = Counter(k for k in first if k is not None)
    if not counts:
        return False
    best = max(counts.values())
    winner = next(k for k in first if k is not None and counts[k] == best)
    return winner == answer


KEYS = st.sampled_from([None, "a", "b", "c"])


@st.composite
def vote_tables(draw: st.DrawFn) -> tuple[dict[str, VoteRow], list[int]]:
    size = draw(st.integers(1, 7))
    problems = draw(
        st.lists(
            st.tuples(st.sampled_from(["a", "b", "c"]), st.lists(KEYS, min_size=size, max_size=size)),
            min_size=1,
            max_size=5,
        )
    )
    ns = draw(st.lists(st.integers(1, size), min_size=1, max_size=size, unique=True))
    return {f"p{i}": problem for i, problem in enumerate(problems)}, ns


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(vote_tables())
def test_sql_majority_vote_matches_reference(case: tuple[dict[str, VoteRow], list[int]]) -> None:
    votes, ns = case
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "out"
        rows = [
            sample(shard_id="x", problem_id=pid, index=i, key=key, answer=answer, tokens=1)
            for pid, (answer, keys) in votes.items()
            for i, key in enumerate(keys)
        ]
        write(root, rows)
        table = run_summary(root, ["x"], [("s", "majority_vote", n) for n in ns])
    got = {r["n"]: r["accuracy"] for r in table.to_pylist()}
    expected = {n: sum(reference_majority(k, a, n) for a, k in votes.values()) / len(votes) for n in ns}
    assert got.keys() == expected.keys()
    for n in ns:
        assert got[n] == pytest.approx(expected[n]), (n, votes)
