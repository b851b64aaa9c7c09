"""analysis/estimators.py on real Parquet through real DuckDB, checked against answers enumerated
over every n-subset of small planted problems (pass@n against its closed form, intervals against
scipy's bootstrap, costs against the FLOPs rule). Coverage on synthetic sweeps: test_coverage.py."""

from __future__ import annotations

import itertools
import math
import random
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sample_rows import answered, sample_row, write_shard
from scipy import stats

from analysis.estimators import COLUMNS, PROBLEM_DTYPES, compute_accuracy, compute_problem_estimates, grid_of
from analysis.subsets import SCORES, position_levels
from analysis.views import connect
from sweep.results.store import ResultsStore

PARAMS = 1000  # policy parameters: FLOPs = 2 * PARAMS * tokens
REWARD_PARAMS = 300  # reward model parameters: reward FLOPs = 2 * REWARD_PARAMS * tokens
N = 6  # samples per problem of the planted strategy
ALL_SCORES = {s: True for s in SCORES}

Sample = dict[str, Any]  # one row of the samples table


def row(
    *,
    problem_id: str,
    index: int,
    key: str | None,
    answer: str,
    scores: dict[str, float | None] | None = None,
    tokens: int = 10,
    prompt_tokens: int = 50,
    temperature: float = 1.0,
    model: str = "m",
    strategy: str = "s",
    dataset: str = "d",
    context_tokens: float = 0.0,
    budget: int | None = None,
) -> Sample:
    scores = scores or {}
    return sample_row(
        shard_id=f"{model}-{strategy}", config_id=f"{model}-{strategy}", model=model, model_params=PARAMS,
        strategy=strategy, dataset=dataset, problem_id=problem_id, prompt_id=f"prompt-{problem_id}",
        sample_index=index, temperature=temperature, **answered(key, answer), prompt_tokens=prompt_tokens,
        completion_tokens=tokens, context_flops=2.0 * PARAMS * context_tokens, latency_s=1.0,
        reward_model="prm" if scores else None, **{f"score_{s}": scores.get(s) for s in SCORES},
        reward_flops=2.0 * REWARD_PARAMS * tokens if scores else 0.0, budget=budget,
        node_id=index if budget is not None else None,
    )  # fmt: skip


def write(root: Path, rows: list[Sample]) -> None:
    """One shard per (model, strategy), rows in scrambled order: nothing may rely on file order."""
    store = ResultsStore(str(root))
    shards: dict[tuple[str, str], list[Sample]] = defaultdict(list)
    for r in rows:
        shards[(r["model"], r["strategy"])].append(r)
    for shard in shards.values():
        write_shard(store, shard[::-1])


def accuracy(root: Path, **kwargs: Any) -> pd.DataFrame:
    return compute_accuracy(connect(str(root)), **{"adaptive": (), **kwargs})  # the fixed-n methods here


def curve(table: pd.DataFrame, method: str, strategy: str = "s") -> pd.DataFrame:
    return table[(table["method"] == method) & (table["strategy"] == strategy)].set_index("n")


# --- the planted problems and their enumerated answers -------------------------------------

# problem -> (reference answer, answer key of samples 0..5, score of each sample). Scores are
# multiples of 1/8 so every sum is exact and planted ties are real ties.
Problem = tuple[str, list[str | None], list[float | None]]


def planted() -> dict[str, Problem]:
    rng = random.Random(7)
    problems: dict[str, Problem] = {
        # Ties everywhere: a:b 2:2 at n = 6 and weights 0.75 : 0.75; b is seen first (sample 0).
        "p0": ("b", ["b", "a", "b", "a", None, "c"], [0.25, 0.5, 0.5, 0.25, 1.0, 0.125]),
        # Nobody answers: every voting method is wrong; the best-scored sample has no answer.
        "p1": ("a", [None] * N, [0.5, 0.25, 0.75, 0.125, 0.5, 0.5]),
        # One sample without a score: no weighted vote, never the best of n. Weighted by last, in
        # {1, 2, 3}: c (sample 2) has no vote, d wins; a tie of c and d goes to d if c's only voter
        # is sample 5 ({3, 5} by min: 0.125 each, d first).
        "p2": ("c", ["d", "c", "c", "d", "d", "c"], [0.25, 0.875, None, 0.25, 0.25, 0.25]),
        # Equal best scores: the lowest sample index (1, wrong) beats index 4 (right).
        "p3": ("a", ["a", "b", "a", "c", "a", "b"], [0.5, 1.0, 0.25, 0.125, 1.0, 0.5]),
        # Zero weights still vote; a key whose only sample has no score does not: d wins, wrong.
        "p4": ("c", ["d", "c", "d", None, "d", "d"], [0.0, None, 0.0, 0.25, 0.0, 0.0]),
        # Weighted tie c:d 0.5 : 0.5: c's sample 0 has no score, so d's voter (1) precedes c's (2).
        "p5": ("c", ["c", "d", "c", None, None, None], [None, 0.5, 0.5, 0.25, 0.25, 0.25]),
    }
    for i in range(6, 12):
        answer = rng.choice("abc")
        keys = [rng.choice(["a", "b", "c", "d", None]) for _ in range(N)]
        scores = [rng.randrange(1, 9) / 8 for _ in range(N)]
        problems[f"p{i}"] = (answer, keys, scores)  # type: ignore[assignment]
    return problems


PLANTED = planted()


def score_of(scores: list[float | None], i: int, score: str) -> float | None:
    """Each aggregate of the planted problems: a different, still exact, function of one number."""
    value = scores[i]
    if value is None:
        return None
    return {"last": value, "min": value / 2, "prod": value * value, "mean": 1.0 - value}[score]


def reference(problem: Problem, subset: tuple[int, ...], method: str) -> bool:
    """One estimator on one subset, written plainly: the test's definition of each method."""
    answer, keys, scores = problem
    votes: dict[str, float] = defaultdict(float)
    first: dict[str, int] = {}  # answer key -> lowest sample index among its voters
    if method == "majority_vote":
        for i in sorted(subset):
            if keys[i] is not None:
                votes[keys[i]] += 1  # type: ignore[index]
                first.setdefault(keys[i], i)  # type: ignore[arg-type]
    elif method.startswith("weighted_vote_"):
        for i in sorted(subset):
            weight = score_of(scores, i, method.removeprefix("weighted_vote_"))
            if keys[i] is not None and weight is not None:
                votes[keys[i]] += weight  # type: ignore[index]
                first.setdefault(keys[i], i)  # type: ignore[arg-type]
    else:  # best of n: highest score, lowest sample index on ties
        name = method.removeprefix("best_of_n_")
        candidates = [i for i in subset if score_of(scores, i, name) is not None]
        if not candidates:
            return False
        best = min(candidates, key=lambda i: (-score_of(scores, i, name), i))  # type: ignore[operator]
        return keys[best] == answer
    if not votes:
        return False
    top = max(votes.values())
    return min((first[k], k) for k, v in votes.items() if v == top)[1] == answer  # ties: seen first


def exact(problems: dict[str, Problem], method: str, n: int) -> float:
    """Mean over problems of the mean over all C(N, n) subsets."""
    per_problem = []
    for problem in problems.values():
        subsets = list(itertools.combinations(range(len(problem[1])), n))
        per_problem.append(sum(reference(problem, s, method) for s in subsets) / len(subsets))
    return sum(per_problem) / len(per_problem)


def planted_rows(problems: dict[str, Problem], **kwargs: Any) -> list[Sample]:
    return [
        row(
            problem_id=pid,
            index=i,
            key=key,
            answer=answer,
            scores={s: score_of(scores, i, s) for s in SCORES},
            tokens=tokens_of(pid, i),
            prompt_tokens=prompt_tokens_of(pid),
            **kwargs,
        )
        for pid, (answer, keys, scores) in problems.items()
        for i, key in enumerate(keys)
    ]


def tokens_of(problem: str, index: int) -> int:
    return 10 * int(problem[1:]) + 3 * index + 1


def prompt_tokens_of(problem: str) -> int:
    return 40 + int(problem[1:])


VOTING = ["majority_vote", *(f"{m}_{s}" for m in ("weighted_vote", "best_of_n") for s in SCORES)]


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("estimators") / "out"
    rows = planted_rows(PLANTED)
    # Greedy: temperature 0, one sample per problem; p0 and p2 right.
    rows += [
        row(problem_id=pid, index=0, key=answer if pid in ("p0", "p2") else "z", answer=answer,
            tokens=7, temperature=0.0, strategy="greedy")
        for pid, (answer, _, _) in PLANTED.items()
    ]  # fmt: skip
    # No reward model: majority vote and pass@n only. p0 has 4 samples, p1 only 2.
    rows += [
        row(problem_id=pid, index=i, key=key, answer="a", strategy="plain")
        for pid, keys in {"p0": ["a", "b", "a", None], "p1": ["b", "a"]}.items()
        for i, key in enumerate(keys)
    ]
    write(root, rows)
    return root


@pytest.fixture(scope="module")
def estimates(output: Path) -> pd.DataFrame:
    return accuracy(output, resamples=3000, seed=0)


def test_columns_and_rows(estimates: pd.DataFrame) -> None:
    assert list(estimates.columns) == COLUMNS
    methods = {s: set(estimates.loc[estimates["strategy"] == s, "method"]) for s in ("s", "greedy", "plain")}
    assert methods == {
        "s": {*VOTING, "pass_at_n"}, "greedy": {"greedy"}, "plain": {"majority_vote", "pass_at_n"}
    }
    assert sorted(curve(estimates, "majority_vote").index) == [1, 2, 4, 6]  # powers of two, plus n_max
    assert sorted(curve(estimates, "majority_vote", "plain").index) == [1, 2, 4]
    assert (estimates["model"] == "m").all() and (estimates["model_params"] == PARAMS).all()
    order = estimates[["model", "dataset", "strategy", "method", "n"]]
    assert order.equals(order.sort_values(["model", "dataset", "strategy", "method", "n"]))


@pytest.mark.parametrize("method", VOTING)
def test_voting_estimates_match_enumeration(estimates: pd.DataFrame, method: str) -> None:
    got = curve(estimates, method)
    for n in (1, 2, 4):
        # 3000 resamples: the estimate's standard deviation is below 0.005.
        assert got.loc[n, "accuracy"] == pytest.approx(exact(PLANTED, method, n), abs=0.02), n
    # n = N: every subset is the whole problem, so the estimate is exact.
    assert got.loc[N, "accuracy"] == pytest.approx(exact(PLANTED, method, N), abs=1e-12)
    assert (got["problems"] == len(PLANTED)).all()


def test_planted_ties_and_gaps(output: Path) -> None:
    """The hand-made problems alone, at n = N, where each answer is known without enumeration."""
    table = accuracy(output, resamples=1, n_values=[N])
    # p0 majority: a:b 2:2 -> b (sample 0), right. p1: no answers, wrong. p2: c:d 3:3 -> d (sample
    # 0), wrong. p3: a 3, right.
    assert exact({p: PLANTED[p] for p in ("p0", "p1", "p2", "p3")}, "majority_vote", N) == 2 / 4
    assert exact({"p0": PLANTED["p0"]}, "weighted_vote_last", N) == 1.0  # a 0.75 : b 0.75 -> b
    # p2 weighted by last: c 0.875 + 0.25 (sample 2 has no score, no vote) vs d 0.75 -> c, right.
    assert exact({"p2": PLANTED["p2"]}, "weighted_vote_last", N) == 1.0
    assert not reference(PLANTED["p2"], (3, 5), "weighted_vote_min")  # 0.125 : 0.125, d first
    assert not reference(PLANTED["p2"], (2, 4), "weighted_vote_last")  # c has no voter
    assert exact({"p3": PLANTED["p3"]}, "best_of_n_last", N) == 0.0  # tie at 1.0: index 1 (b)
    assert exact({"p4": PLANTED["p4"]}, "weighted_vote_last", N) == 0.0
    assert exact({"p5": PLANTED["p5"]}, "weighted_vote_last", N) == 0.0
    majority = curve(table, "majority_vote").loc[N, "accuracy"]
    assert majority == pytest.approx(exact(PLANTED, "majority_vote", N))


def test_pass_at_n_closed_form(estimates: pd.DataFrame) -> None:
    got = curve(estimates, "pass_at_n")
    for n in (1, 2, 4, 6):
        expected = []
        for answer, keys, _ in PLANTED.values():
            c = sum(k == answer for k in keys)
            expected.append(1 - math.comb(N - c, n) / math.comb(N, n))
        assert got.loc[n, "accuracy"] == pytest.approx(np.mean(expected), abs=1e-12), n
    plain = curve(estimates, "pass_at_n", "plain")
    assert plain.loc[2, "accuracy"] == pytest.approx((1 - math.comb(2, 2) / math.comb(4, 2) + 1.0) / 2)
    assert plain.loc[4, "accuracy"] == 1.0 and plain.loc[4, "problems"] == 1  # p1 has 2 samples


def test_greedy(estimates: pd.DataFrame) -> None:
    greedy = curve(estimates, "greedy", "greedy")
    assert list(greedy.index) == [1]
    assert greedy.loc[1, "accuracy"] == pytest.approx(2 / len(PLANTED))
    assert greedy.loc[1, "tokens_per_problem"] == 7
    assert greedy.loc[1, "policy_flops_per_problem"] == pytest.approx(2.0 * PARAMS * (50 + 7))


def test_greedy_uses_sample_zero(tmp_path: Path) -> None:
    # Temperature 0 with two samples per problem: sample 0 is the greedy answer, whatever the order.
    rows = [
        row(problem_id="p0", index=1, key="b", answer="a", temperature=0.0, tokens=99),
        row(problem_id="p0", index=0, key="a", answer="a", temperature=0.0, tokens=5),
        row(problem_id="p1", index=0, key="b", answer="a", temperature=0.0, tokens=5),
        row(problem_id="p1", index=1, key="a", answer="a", temperature=0.0, tokens=99),
    ]
    write(tmp_path / "out", rows)
    table = accuracy(tmp_path / "out")
    assert list(table["method"]) == ["greedy"]
    assert table.iloc[0]["accuracy"] == 0.5 and table.iloc[0]["tokens_per_problem"] == 5


def test_unanswered_problem_counts_as_wrong(tmp_path: Path) -> None:
    rows = [row(problem_id="p0", index=i, key=None, answer="a") for i in range(3)]
    rows += [row(problem_id="p1", index=i, key="a", answer="a") for i in range(3)]
    write(tmp_path / "out", rows)
    majority = curve(accuracy(tmp_path / "out", resamples=5), "majority_vote")
    assert list(majority["accuracy"]) == [0.5, 0.5, 0.5]  # n = 1, 2, 3
    assert list(majority["problems"]) == [2, 2, 2]


def test_cost_columns(estimates: pd.DataFrame) -> None:
    for method in VOTING + ["pass_at_n"]:
        got = curve(estimates, method)
        for n in (1, 2, 4, 6):
            tokens = [n * np.mean([tokens_of(p, i) for i in range(N)]) for p in PLANTED]
            policy = [2.0 * PARAMS * (prompt_tokens_of(p) + t) for p, t in zip(PLANTED, tokens)]
            # Reward-model FLOPs belong to the methods that read its scores.
            reward = [2.0 * REWARD_PARAMS * t if method in VOTING[1:] else 0.0 for t in tokens]
            r = got.loc[n]
            assert r["tokens_per_problem"] == pytest.approx(np.mean(tokens)), (method, n)
            assert r["policy_flops_per_problem"] == pytest.approx(np.mean(policy)), (method, n)
            assert r["reward_flops_per_problem"] == pytest.approx(np.mean(reward)), (method, n)
            # Counted by default.
            assert r["flops_per_problem"] == pytest.approx(np.mean(policy) + np.mean(reward)), (method, n)


def test_include_reward_flops_false_leaves_them_out(output: Path, estimates: pd.DataFrame) -> None:
    policy_only = accuracy(output, resamples=3000, seed=0, include_reward_flops=False)
    assert policy_only["flops_per_problem"].to_numpy() == pytest.approx(
        estimates["policy_flops_per_problem"].to_numpy()
    )
    assert (policy_only["reward_flops_per_problem"] > 0).sum() == 8 * 4  # 8 scored methods × 4 n
    unchanged = [c for c in COLUMNS if c not in ("flops_per_problem", "accuracy_replicates")]
    pd.testing.assert_frame_equal(policy_only[unchanged], estimates[unchanged])


def test_tree_search_cost_follows_the_flops_rule(tmp_path: Path) -> None:
    """A tree's leaves carry the root prompt (charged once) and equal shares of the search's
    completion, re-encoded context and reward FLOPs; every method pays the whole search."""
    leaves = {"p0": ["a", "a", "b", None], "p1": ["b", "b", "b", "a"]}
    rows = [
        row(problem_id=pid, index=i, key=key, answer="a", scores={"last": 0.5}, tokens=30,
            prompt_tokens=prompt_tokens_of(pid), context_tokens=12.5, strategy="rebase", budget=4)
        for pid, keys in leaves.items()
        for i, key in enumerate(keys)
    ]  # fmt: skip
    write(tmp_path / "out", rows)
    table = accuracy(tmp_path / "out", resamples=5)
    assert set(table["n"]) == {4} and set(table["method"]) == {"majority_vote", "pass_at_n",
                                                                "weighted_vote_last", "best_of_n_last"}
    for r in table.itertuples():
        prompt = np.mean([prompt_tokens_of(p) for p in leaves])
        assert r.policy_flops_per_problem == pytest.approx(2.0 * PARAMS * (prompt + 4 * (30 + 12.5)))
        assert r.reward_flops_per_problem == pytest.approx(4 * 2.0 * REWARD_PARAMS * 30)
        assert r.flops_per_problem == pytest.approx(r.policy_flops_per_problem + r.reward_flops_per_problem)
        assert r.tokens_per_problem == pytest.approx(4 * 30)
    majority = table.set_index("method").loc["majority_vote", "accuracy"]
    assert majority == 0.5  # p0: a 2 : b 1, right; p1: b, wrong


def test_problem_estimates_average_to_the_curves(output: Path, estimates: pd.DataFrame) -> None:
    per_problem = compute_problem_estimates(connect(str(output)), resamples=3000, seed=0, adaptive=())
    assert list(per_problem.columns) == list(PROBLEM_DTYPES)
    keys = ["model", "dataset", "strategy", "method", "n"]
    assert not per_problem.duplicated([*keys, "problem_id"]).any()
    means = per_problem.groupby(keys)[["estimate", "policy_flops", "reward_flops", "flops"]].mean()
    counts = per_problem.groupby(keys).size()
    curves = estimates.set_index(keys)
    assert means["estimate"].to_numpy() == pytest.approx(curves["accuracy"].to_numpy(), abs=1e-12)
    assert means["flops"].to_numpy() == pytest.approx(curves["flops_per_problem"].to_numpy())
    assert (counts.to_numpy() == curves["problems"].to_numpy()).all()


def test_confidence_interval_is_a_bootstrap_over_problems(output: Path, estimates: pd.DataFrame) -> None:
    # pass@n at n = N is 0 or 1 per problem: the interval is a bootstrap of a proportion.
    got = curve(estimates, "pass_at_n").loc[N]
    per_problem = np.array([float(any(k == a for k in keys)) for a, keys, _ in PLANTED.values()])
    reference = stats.bootstrap((per_problem,), np.mean, method="percentile", n_resamples=20_000,
                                random_state=np.random.default_rng(1)).confidence_interval
    step = 1 / len(per_problem)  # the replicate means lie on this grid
    assert got["ci_low"] == pytest.approx(reference.low, abs=step)
    assert got["ci_high"] == pytest.approx(reference.high, abs=step)
    reps = got["accuracy_replicates"]
    assert len(reps) == 1000 and np.mean(reps) == pytest.approx(got["accuracy"], abs=0.02)
    assert np.allclose(reps * len(per_problem), np.round(reps * len(per_problem)))  # on the grid
    known = estimates.dropna(subset=["ci_low"])
    assert len(known) == len(estimates) - 2  # "plain" at n = 4 (pass@n, majority vote): one problem
    assert (known["ci_low"] <= known["accuracy"]).all() and (known["accuracy"] <= known["ci_high"]).all()
    assert (known["ci_low"] >= 0).all() and (known["ci_high"] <= 1).all()
    # One problem left at n = 4 of "plain": nothing to resample, no interval.
    plain = curve(estimates, "pass_at_n", "plain").loc[4]
    assert plain["problems"] == 1 and np.isnan(plain["ci_low"]) and np.isnan(plain["ci_high"])


def same_replicates(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a["accuracy_replicates"], b["accuracy_replicates"]))


def test_replicates_are_paired_within_a_dataset(tmp_path: Path) -> None:
    rng = random.Random(5)
    problems = {f"p{i}": ("a", [rng.choice("ab") for _ in range(4)], [0.5] * 4) for i in range(30)}
    rows = [
        r
        for strategy, dataset in (("s1", "d"), ("s2", "d"), ("s1", "e"))
        for r in planted_rows(problems, strategy=strategy, dataset=dataset)  # type: ignore[arg-type]
    ]
    write(tmp_path / "out", rows)
    table = accuracy(tmp_path / "out", resamples=1, n_values=[4], bootstrap=200)
    pass_at = table[table["method"] == "pass_at_n"]
    reps = {(r.dataset, r.strategy): r.accuracy_replicates for r in pass_at.itertuples()}
    # Same problems, same answers: one draw of problems gives the same replicate accuracies.
    assert np.array_equal(reps[("d", "s1")], reps[("d", "s2")])
    assert not np.array_equal(reps[("d", "s1")], reps[("e", "s1")])  # another dataset, another draw
    again = accuracy(tmp_path / "out", resamples=1, n_values=[4], bootstrap=200)
    assert same_replicates(table, again)
    none = accuracy(tmp_path / "out", resamples=1, n_values=[4], bootstrap=0)
    assert none["ci_low"].isna().all() and none["accuracy"].equals(table["accuracy"])


def many_problems(root: Path) -> None:
    rng = random.Random(3)
    problems = {
        f"p{i}": ("a", [rng.choice("aabbc") for _ in range(8)], [rng.randrange(1, 9) / 8 for _ in range(8)])
        for i in range(40)
    }
    write(root, planted_rows(problems))  # type: ignore[arg-type]


def test_same_seed_same_result(tmp_path: Path) -> None:
    many_problems(tmp_path / "out")
    first = accuracy(tmp_path / "out", resamples=20, seed=5)
    second = accuracy(tmp_path / "out", resamples=20, seed=5)
    scalars = [c for c in COLUMNS if c != "accuracy_replicates"]
    pd.testing.assert_frame_equal(first[scalars], second[scalars], check_exact=True)
    assert same_replicates(first, second)


def test_other_seed_other_draw_within_ci(tmp_path: Path) -> None:
    many_problems(tmp_path / "out")
    a = accuracy(tmp_path / "out", resamples=20, seed=0).set_index(["method", "n"])
    b = accuracy(tmp_path / "out", resamples=20, seed=1).set_index(["method", "n"])
    voting = a.index.get_level_values("method").isin(VOTING) & (a.index.get_level_values("n") < 8)
    assert (a.loc[voting, "accuracy"] != b.loc[voting, "accuracy"]).any()
    assert (b["accuracy"] >= a["ci_low"]).all() and (b["accuracy"] <= a["ci_high"]).all()
    closed = ~a.index.get_level_values("method").isin(VOTING)
    pd.testing.assert_series_equal(a.loc[closed, "accuracy"], b.loc[closed, "accuracy"])


def test_models_and_datasets_are_separate(tmp_path: Path) -> None:
    rows = []
    for model, dataset, key in [("m1", "d", "a"), ("m2", "d", "b"), ("m1", "e", "b")]:
        rows += [
            row(problem_id="p0", index=i, key=key, answer="a", model=model, dataset=dataset) for i in range(2)
        ]
    write(tmp_path / "out", rows)
    table = accuracy(tmp_path / "out", resamples=3)
    got = table[table["method"] == "majority_vote"].groupby(["model", "dataset"])["accuracy"].max().to_dict()
    assert got == {("m1", "d"): 1.0, ("m2", "d"): 0.0, ("m1", "e"): 0.0}


def test_n_values_and_arguments(output: Path) -> None:
    table = accuracy(output, resamples=2, n_values=[3, 5, 100])
    assert sorted(curve(table, "majority_vote").index) == [3, 5]
    assert sorted(curve(table, "majority_vote", "plain").index) == [3]
    assert curve(table, "greedy", "greedy").index.tolist() == [1]
    for bad in ({"resamples": 0}, {"n_values": []}, {"n_values": [0, 2]}):
        with pytest.raises(ValueError):
            accuracy(output, **bad)


def test_grid_and_levels() -> None:
    assert grid_of(256, None) == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    assert grid_of(6, None) == [1, 2, 4, 6]
    assert grid_of(1, None) == [1]
    # Position p is in the subsets of every n > p: its level is the first such n.
    assert position_levels([1, 2, 4, 6], 8).tolist() == [0, 1, 2, 2, 3, 3, 4, 4]


# --- property: pass@n ----------------------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(samples=st.integers(2, 12), data=st.data())
def test_pass_at_n_monotone_and_fraction_correct(samples: int, data: st.DataObject) -> None:
    corrects = data.draw(st.lists(st.integers(0, samples), min_size=1, max_size=5))
    rows = [
        row(problem_id=f"p{p}", index=i, key="a" if i < c else "b", answer="a")
        for p, c in enumerate(corrects)
        for i in range(samples)
    ]
    with tempfile.TemporaryDirectory() as folder:
        write(Path(folder) / "out", rows)
        table = accuracy(Path(folder) / "out", resamples=1, n_values=list(range(1, samples + 1)))
    pass_at = curve(table, "pass_at_n")["accuracy"]
    assert list(pass_at.index) == list(range(1, samples + 1))
    assert pass_at.loc[1] == pytest.approx(sum(corrects) / (samples * len(corrects)), abs=1e-12)
    assert (np.diff(pass_at.to_numpy()) >= -1e-12).all()
    assert pass_at.loc[samples] == pytest.approx(np.mean([c > 0 for c in corrects]))
