"""Adaptive stopping: the rules of sweep/inference/stopping.py against plain-Python references (hand-checked
cases and hypothesis properties), and their offline replay (analysis/adaptive.py) through
compute_accuracy on real Parquet and real DuckDB, on synthetic sweeps with a known truth."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sample_rows import sample_row, write_shard
from scipy import stats

from analysis.adaptive import DEFAULT_RULES, method_name
from analysis.estimators import COLUMNS, compute_accuracy, compute_problem_estimates
from analysis.subsets import Block, resample_hits
from analysis.views import connect
from sweep.inference.stopping import StoppingRule, criterion, fired, first_stop, stop_index, tally, vote
from sweep.results.store import ResultsStore

# --- plain-Python references ---------------------------------------------------------------


def reference_stop(keys: list[int], scores: list[float] | None, rule: str, threshold: float, window: int) -> int:
    """Draw one by one; after each round of ``window`` draws (and the last), ask the rule."""
    n = len(keys)
    for drawn in range(1, n + 1):
        if drawn % window and drawn != n:
            continue
        prefix = keys[:drawn]
        if rule == "esc":
            w = int(threshold)
            last = prefix[-w:]
            stop = drawn >= w and last[0] >= 0 and all(k == last[0] for k in last)
        elif rule == "beta":
            votes = sorted(Counter(k for k in prefix if k >= 0).values(), reverse=True) + [0, 0]
            stop = stats.beta.sf(0.5, votes[0] + 1, votes[1] + 1) >= threshold
        else:
            assert scores is not None
            weight: dict[int, float] = {}
            for k, s in zip(prefix, scores):
                if k >= 0 and not math.isnan(s):
                    weight[k] = weight.get(k, 0.0) + s
            voters = sum(1 for k, s in zip(prefix, scores) if k >= 0 and not math.isnan(s))
            total = sum(weight.values())
            stop = voters >= 2 and total > 0 and max(weight.values()) / total >= threshold
        if stop:
            return drawn
    return n


def reference_vote(keys: list[int], scores: list[float] | None, stop: int, rank: list[int]) -> int:
    """The vote of the first ``stop`` draws (weighted when ``scores``); ties to the lowest rank."""
    tallies: dict[int, float] = {}
    first: dict[int, int] = {}
    for i in range(stop):
        k = keys[i]
        if k < 0 or (scores is not None and math.isnan(scores[i])):
            continue
        tallies[k] = tallies.get(k, 0.0) + (1.0 if scores is None else scores[i])
        first[k] = min(first.get(k, len(keys)), rank[i])
    if not tallies:
        return -1
    return max(tallies, key=lambda k: (tallies[k], -first[k]))


# --- hand-checked cases ----------------------------------------------------------------------


def test_esc_stops_after_a_window_that_agrees() -> None:
    keys = np.array([
        [3, 3, 0, 1, 2, 2, 2, 2],  # first window agrees: 2 draws (w = 2)
        [0, 1, 1, 1, 1, 1, 1, 1],  # w = 2: windows (0,1) (1,1): 4; w = 4: (0,1,1,1) (1,1,1,1): 8
        [0, 1, -1, -1, 2, 2, 0, 1],  # two unanswered draws do not agree; (2, 2) does: 6
        [0, 1, 0, 1, 0, 1, 0, 1],  # never: all 8
    ])  # fmt: skip
    assert stop_index(keys, rule="esc", threshold=2).tolist() == [2, 4, 6, 8]
    assert stop_index(keys, rule="esc", threshold=4).tolist() == [8, 8, 8, 8]
    # Checked after every draw (window 1): the last 4 agree at draw 8 in row 0, at 5 in row 1.
    assert stop_index(keys, rule="esc", threshold=4, window=1).tolist() == [8, 5, 8, 8]
    assert fired(keys, rule="esc", threshold=2).tolist() == [True, True, True, False]


def test_beta_closed_form_and_stops() -> None:
    # P(p1 > p2) under Beta(v1 + 1, v2 + 1): 1/2 with nothing, 3/4 for one vote, 15/16 for 3:0.
    t = tally(np.array([[-1, 0, 0, 0, 1, 0, 0, 0]]))
    confidence = criterion(t, "beta")[0]
    assert confidence[:4] == pytest.approx([0.5, 0.75, 7 / 8, 15 / 16])
    # 3:1 after 5 draws: I_{1/2}(2, 4) = P(Binomial(5, 1/2) >= 2) = 26/32.
    assert confidence[4] == pytest.approx(26 / 32)
    keys = np.array([
        [0, 0, 0, 0, 0, 0, 0, 0],  # 0.9 at 3 agreeing (15/16), 0.95 at 4 (31/32)
        [0, 0, 1, 0, 0, 0, 1, 1],  # 5:1 after 6 draws: 1 - 8/128 = 0.9375
        [0, 1, 0, 1, 0, 1, 0, 1],  # never confident
    ])  # fmt: skip
    assert stop_index(keys, rule="beta", threshold=0.9).tolist() == [3, 6, 8]
    assert stop_index(keys, rule="beta", threshold=0.95).tolist() == [4, 8, 8]
    assert stop_index(keys, rule="beta", threshold=0.9, window=2).tolist() == [4, 6, 8]


def test_weighted_share_and_minimum_votes() -> None:
    keys = np.array([[0, 1, 0, 0], [0, 0, 1, 1], [2, -1, 2, 2], [0, 0, 0, 0]])
    scores = np.array([
        [0.5, 0.25, 0.25, 0.5],  # shares 1 (one vote: no stop), 2/3, 3/4, 5/6
        [0.5, 0.5, 1.0, 1.0],  # 1, 1/2, 1/3
        [0.5, 0.5, np.nan, 0.5],  # the unanswered and the unscored draw do not vote: 2 votes at 4
        [0.0, 0.0, 0.0, 0.0],  # no weight at all: never
    ])  # fmt: skip
    assert stop_index(keys, scores, rule="weighted", threshold=0.7).tolist() == [3, 2, 4, 4]
    assert stop_index(keys, scores, rule="weighted", threshold=0.8).tolist() == [4, 2, 4, 4]
    assert fired(keys, scores, rule="weighted", threshold=0.7).tolist() == [True, True, True, False]
    t = tally(keys, scores)
    assert vote(t, np.array([4, 4, 4, 4]), weighted=True).tolist() == [0, 1, 2, 0]  # 0: 0.0 ties, first
    assert vote(t, np.array([2, 4, 2, 4]), weighted=False).tolist() == [0, 0, 2, 0]  # 2:2 -> first seen


def test_votes_break_ties_by_rank() -> None:
    t = tally(np.array([[1, 0, 0, 1]]), rank=np.array([[3, 2, 1, 0]]))
    assert vote(t, np.array([4])).tolist() == [1]  # 1's lowest rank 0 beats 0's 1
    assert vote(tally(np.array([[1, 0, 0, 1]])), np.array([4])).tolist() == [1]  # draw order: 1 first
    assert vote(tally(np.array([[-1, -1]])), np.array([2])).tolist() == [-1]


def test_bad_rules_are_refused() -> None:
    for bad in (("dirichlet", 0.9, 1), ("esc", 2.5, 1), ("esc", 0, 1), ("beta", 0.9, 0), ("beta", math.nan, 1)):
        with pytest.raises(ValueError):
            StoppingRule(*bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-negative"):
        stop_index(np.array([[0, 0]]), np.array([[-0.5, 1.0]]), rule="weighted", threshold=0.5)
    assert method_name(StoppingRule("esc", 4, window=4)) == "adaptive_esc_w4"
    assert method_name(StoppingRule("beta", 0.95)) == "adaptive_beta_0.95"
    assert method_name(StoppingRule("weighted", 0.7, window=2)) == "adaptive_weighted_0.7_r2"


# --- properties ------------------------------------------------------------------------------

EIGHTHS = st.sampled_from([math.nan, 0.0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0])


@st.composite
def draws(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """(row, sample) keys in -1..3 (few answers, so ties and agreement are common) and scores."""
    rows, n = draw(st.integers(1, 4)), draw(st.integers(1, 10))
    keys = draw(st.lists(st.lists(st.integers(-1, 3), min_size=n, max_size=n), min_size=rows, max_size=rows))
    scores = draw(st.lists(st.lists(EIGHTHS, min_size=n, max_size=n), min_size=rows, max_size=rows))
    return np.array(keys), np.array(scores)


RULE_THRESHOLDS = {
    "esc": st.integers(1, 5).map(float),
    "beta": st.sampled_from([0.5, 0.7, 0.75, 0.8, 0.9, 0.95, 0.99]),
    "weighted": st.sampled_from([0.5, 0.6, 2 / 3, 0.7, 0.75, 0.9, 1.0]),
}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=draws(), rule=st.sampled_from(sorted(RULE_THRESHOLDS)), window=st.integers(1, 4), extra=st.data())
def test_rules_match_the_reference(data: tuple[np.ndarray, np.ndarray], rule: str, window: int, extra: st.DataObject) -> None:
    keys, scores = data
    threshold = extra.draw(RULE_THRESHOLDS[rule])
    got = stop_index(keys, scores, rule=rule, threshold=threshold, window=window)  # type: ignore[arg-type]
    n = keys.shape[1]
    assert ((got >= 1) & (got <= n)).all()
    want = [reference_stop(k.tolist(), s.tolist(), rule, threshold, window) for k, s in zip(keys, scores)]
    assert got.tolist() == want


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=draws(), extra=st.data())
def test_votes_match_the_reference(data: tuple[np.ndarray, np.ndarray], extra: st.DataObject) -> None:
    keys, scores = data
    rows, n = keys.shape
    stop = np.array(extra.draw(st.lists(st.integers(1, n), min_size=rows, max_size=rows)))
    rank = np.array([extra.draw(st.permutations(range(n))) for _ in range(rows)])
    t = tally(keys, scores, rank=rank)
    for weighted in (False, True):
        got = vote(t, stop, weighted=weighted).tolist()
        want = [
            reference_vote(k.tolist(), s.tolist() if weighted else None, int(c), r.tolist())
            for k, s, c, r in zip(keys, scores, stop, rank)
        ]
        assert got == want, weighted


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=draws(), rule=st.sampled_from(["beta", "weighted"]), window=st.integers(1, 3), extra=st.data())
def test_higher_threshold_never_stops_earlier(
    data: tuple[np.ndarray, np.ndarray], rule: str, window: int, extra: st.DataObject
) -> None:
    keys, scores = data
    low, high = sorted(extra.draw(st.lists(st.floats(0.4, 1.0), min_size=2, max_size=2)))
    at = {t: stop_index(keys, scores, rule=rule, threshold=t, window=window) for t in (low, high)}  # type: ignore[arg-type]
    assert (at[high] >= at[low]).all()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=draws(), rule=st.sampled_from(["esc", "beta", "weighted"]), extra=st.data())
def test_never_stopping_is_the_vote_at_n_max(data: tuple[np.ndarray, np.ndarray], rule: str, extra: st.DataObject) -> None:
    """A threshold no criterion reaches draws all n_max samples, and the answer is then majority
    (or weighted) vote over them exactly as analysis/subsets.py computes it at n = n_max, ties to
    the lowest stored sample index, whatever the draw order."""
    keys, scores = data
    rows, n = keys.shape
    threshold = n + 1.0 if rule == "esc" else 1.5
    stop = stop_index(keys, scores, rule=rule, threshold=threshold)  # type: ignore[arg-type]
    assert (stop == n).all()
    order = np.array([extra.draw(st.permutations(range(n))) for _ in range(rows)])  # (row, draw) -> sample
    drawn_keys = np.take_along_axis(keys, order, axis=1)
    drawn_scores = np.take_along_axis(scores, order, axis=1)
    weighted = rule == "weighted"
    winner = vote(tally(drawn_keys, drawn_scores, rank=order), stop, weighted=weighted)
    key_correct = np.zeros((rows, 4), dtype=bool)
    key_correct[:, 1] = True  # answer 1 is right
    block = Block(
        keys=keys, key_correct=key_correct, correct=keys == 1,
        scores={"last": scores, "min": scores, "prod": scores, "mean": scores},
    )  # fmt: skip
    hits = resample_hits(block, n_values=[n], resamples=1, rng=np.random.default_rng(0))[:, 0]
    subsets = hits[:, 1] if weighted else hits[:, 0]  # weighted_vote_last, majority_vote
    assert (winner == 1).tolist() == subsets.astype(bool).tolist()


# --- the replay on synthetic sweeps ----------------------------------------------------------

N = 8
PARAMS = 10**6
REWARD = 2.0 * 3 * 10**5  # reward FLOPs per completion token


def rows_for(problem: str, keys: list[str | None], answer: str, *, scores: list[float] | None = None,
             tokens: list[int] | None = None, **fields: Any) -> list[dict[str, Any]]:  # fmt: skip
    out = []
    for i, key in enumerate(keys):
        t = tokens[i] if tokens else 10
        score = None if scores is None else scores[i]
        out.append(sample_row(
            problem_id=problem, prompt_id=f"q-{problem}", sample_index=i, model_params=PARAMS,
            extracted_answer=key, answer_key=key, correct=key == answer, completion_tokens=t,
            prompt_tokens=50, reward_model="prm" if scores else None,
            score_last=score, score_min=score, score_prod=score, score_mean=score,
            reward_flops=REWARD * t if scores else 0.0, **fields,
        ))  # fmt: skip
    return out


def synthetic(root: Path, *, problems: int = 40, seed: int = 0) -> dict[str, list[str]]:
    """A scored sampling group: problem 'agree' has 8 identical right answers; the others draw
    the right answer 'a' with a per-problem chance, else 'b' or 'c', with right answers scored
    higher. An unscored copy of the group, a greedy group and a tree search beside it. Returns
    each problem's stored answers."""
    rng = np.random.default_rng(seed)
    scored, plain = [], []
    answers = {}
    for i in range(problems):
        name = "agree" if i == 0 else f"p{i:02d}"
        skill = 1.0 if i == 0 else rng.uniform(0.2, 1.0)
        right = rng.random(N) < skill
        keys = answers[name] = ["a" if r else str(rng.choice(["b", "c"])) for r in right]
        scores = [float(rng.choice([0.75, 0.875, 1.0]) if r else rng.choice([0.125, 0.25, 0.5])) for r in right]
        tokens = [10] * N if i == 0 else rng.integers(5, 40, N).tolist()
        scored += rows_for(name, keys, "a", scores=scores, tokens=tokens)
        plain += rows_for(name, keys, "a", tokens=tokens, strategy="plain", shard_id="plain")
    greedy = [r for i in range(problems) for r in rows_for(f"p{i:02d}", ["a"], "a", strategy="greedy",
                                                          shard_id="greedy", temperature=0.0)]  # fmt: skip
    tree = [r for i in range(3) for r in rows_for(f"p{i:02d}", ["a", "b"], "a", strategy="rebase",
                                                  shard_id="rebase", budget=2, node_id=0)]  # fmt: skip
    store = ResultsStore(str(root))
    for rows in (scored, plain, greedy, tree):
        write_shard(store, rows)
    return answers


ANSWERS: dict[str, list[str]] = {}  # the module's synthetic sweep: problem -> stored answers


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("adaptive") / "out"
    ANSWERS.update(synthetic(root))
    return root


@pytest.fixture(scope="module")
def table(sweep: Path) -> pd.DataFrame:
    return compute_accuracy(connect(str(sweep)), resamples=200, seed=0, bootstrap=500)


def rows_of(table: pd.DataFrame, method: str, strategy: str = "sampling") -> pd.DataFrame:
    return table[(table["method"] == method) & (table["strategy"] == strategy)]


def test_adaptive_rows_in_the_accuracy_table(table: pd.DataFrame) -> None:
    assert list(table.columns) == COLUMNS
    names = {method_name(r) for r in DEFAULT_RULES}
    methods = {s: set(table.loc[table["strategy"] == s, "method"]) for s in ("sampling", "plain", "greedy", "rebase")}
    assert names <= methods["sampling"]
    assert methods["plain"] & names == names - {"adaptive_weighted_0.7", "adaptive_weighted_0.9"}  # no scores
    assert not methods["greedy"] & names and not methods["rebase"] & names
    adaptive = table[table["method"].str.startswith("adaptive_")]
    assert (adaptive["n"] == N).all() and (adaptive["problems"] == 40).all()
    assert (adaptive["samples_per_problem"] >= 1).all() and (adaptive["samples_per_problem"] < N).all()
    assert (adaptive["ci_low"] <= adaptive["accuracy"]).all() and (adaptive["accuracy"] <= adaptive["ci_high"]).all()
    assert (adaptive["ci_low"] >= 0).all() and (adaptive["ci_high"] <= 1).all()
    fixed = table[~table["method"].str.startswith("adaptive_")]
    assert (fixed["samples_per_problem"] == fixed["n"]).all()
    # Fewer samples, fewer FLOPs: every rule here is cheaper than majority vote at n_max.
    majority = rows_of(table, "majority_vote").set_index("n").loc[N]
    assert (rows_of(table, "adaptive_esc_w4")["flops_per_problem"] < majority["flops_per_problem"]).all()


def test_a_problem_whose_samples_agree_stops_at_the_minimum(sweep: Path) -> None:
    per_problem = compute_problem_estimates(connect(str(sweep)), resamples=50, seed=0)
    agree = per_problem[(per_problem["problem_id"] == "agree") & (per_problem["strategy"] == "sampling")]
    agree = agree.set_index("method")
    minimum = {"adaptive_esc_w2": 2, "adaptive_esc_w4": 4, "adaptive_beta_0.9": 3, "adaptive_beta_0.95": 4,
               "adaptive_weighted_0.7": 2, "adaptive_weighted_0.9": 2}  # fmt: skip
    for method, samples in minimum.items():
        row = agree.loc[method]
        assert row["samples"] == samples and row["estimate"] == 1.0, method
        # The FLOPs rule on the drawn samples: the prompt once, 10 tokens each; reward only when read.
        assert row["tokens"] == 10 * samples
        assert row["policy_flops"] == pytest.approx(2.0 * PARAMS * (50 + 10 * samples))
        reads = method.startswith("adaptive_weighted")
        assert row["reward_flops"] == pytest.approx(REWARD * 10 * samples if reads else 0.0)
    assert agree.loc["majority_vote"].loc[lambda r: r["n"] == N, "samples"].item() == N


def test_curves_are_means_of_the_per_problem_rows(table: pd.DataFrame, sweep: Path) -> None:
    per_problem = compute_problem_estimates(connect(str(sweep)), resamples=200, seed=0)
    keys = ["model", "dataset", "strategy", "method", "n"]
    means = per_problem.groupby(keys)[["estimate", "samples", "flops"]].mean()
    got = table.set_index(keys)
    assert means["estimate"].to_numpy() == pytest.approx(got.loc[means.index, "accuracy"].to_numpy(), abs=1e-12)
    assert means["samples"].to_numpy() == pytest.approx(got.loc[means.index, "samples_per_problem"].to_numpy())
    assert means["flops"].to_numpy() == pytest.approx(got.loc[means.index, "flops_per_problem"].to_numpy())


def test_confident_problems_stop_early(sweep: Path, table: pd.DataFrame) -> None:
    """Where 7 or 8 of the 8 stored answers agree, every rule stops before n_max on average (the
    first window or the first few draws agree often enough); the conservative rules keep majority
    vote's accuracy."""
    per_problem = compute_problem_estimates(connect(str(sweep)), resamples=100, seed=0)
    adaptive = per_problem[per_problem["method"].str.startswith("adaptive_") & (per_problem["strategy"] == "sampling")]
    confident = [p for p, keys in ANSWERS.items() if max(Counter(keys).values()) >= 7]
    assert len(confident) >= 5
    mine = adaptive[adaptive["problem_id"].isin(confident)]
    assert len(mine) == 6 * len(confident) and (mine["samples"] < N).all()
    majority = rows_of(table, "majority_vote").set_index("n").loc[N, "accuracy"]
    for name in ("adaptive_beta_0.95", "adaptive_esc_w4"):
        assert rows_of(table, name)["accuracy"].item() == pytest.approx(majority, abs=0.05), name


def test_a_rule_that_never_stops_is_majority_vote_at_n_max(sweep: Path) -> None:
    """Same estimates per problem as majority vote at n_max (ties broken alike), and the same
    bootstrap replicates: the adaptive rows are paired with the fixed-n curves."""
    never = StoppingRule("beta", 2.0)
    table = compute_accuracy(connect(str(sweep)), resamples=20, seed=3, bootstrap=300, adaptive=[never])
    for strategy in ("sampling", "plain"):
        adaptive = rows_of(table, "adaptive_beta_2", strategy).iloc[0]
        majority = rows_of(table, "majority_vote", strategy).set_index("n").loc[N]
        assert adaptive["accuracy"] == pytest.approx(majority["accuracy"], abs=1e-12)
        assert adaptive["samples_per_problem"] == N
        assert adaptive["flops_per_problem"] == pytest.approx(majority["flops_per_problem"])
        assert np.allclose(adaptive["accuracy_replicates"], majority["accuracy_replicates"])


def test_seeded_and_switchable(sweep: Path) -> None:
    first = compute_accuracy(connect(str(sweep)), resamples=10, seed=5, bootstrap=50)
    again = compute_accuracy(connect(str(sweep)), resamples=10, seed=5, bootstrap=50)
    scalars = [c for c in COLUMNS if c != "accuracy_replicates"]
    pd.testing.assert_frame_equal(first[scalars], again[scalars], check_exact=True)
    none = compute_accuracy(connect(str(sweep)), resamples=10, seed=5, bootstrap=50, adaptive=())
    assert not none["method"].str.startswith("adaptive_").any()
    pd.testing.assert_frame_equal(
        none[scalars].reset_index(drop=True),
        first.loc[~first["method"].str.startswith("adaptive_"), scalars].reset_index(drop=True),
        check_exact=True,
    )


def test_first_stop_checks_whole_rounds() -> None:
    value = np.array([[0.0, 1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    assert first_stop(value, threshold=1.0, window=1).tolist() == [2, 5]
    assert first_stop(value, threshold=1.0, window=3).tolist() == [5, 5]  # checked at 3 and 5 only


@pytest.mark.parametrize("rule", [*DEFAULT_RULES, StoppingRule("beta", 0.9, window=2), StoppingRule("esc", 3, window=1)])
def test_method_names_read_back_as_their_rules(rule: StoppingRule) -> None:
    from analysis.adaptive import method_name, rule_of_method

    assert rule_of_method(method_name(rule)) == rule
    assert rule_of_method("majority_vote") is None
