"""Step-token PRM scoring: the prefix/tag logic against planned log-probs, then on the real CPU engine."""

from __future__ import annotations

import math
from typing import Any

import pytest

from sweep.inference.scorers import aggregate
from sweep.inference.scorers.step_token import StepTokenScorer, good_probability


class PlannedEngine:
    """Answers next-token log-probs from a plan keyed by prefix (logic only; no model needed)."""

    def __init__(self, plan: dict[str, tuple[float, float]]) -> None:
        self.plan = plan
        self.calls: list[list[str]] = []

    def next_token_logprobs(self, prefixes: list[str], candidates: list[str]) -> list[tuple[int, dict[str, float]]]:
        self.calls.append(prefixes)
        return [(len(p), dict(zip(candidates, self.plan[p], strict=True))) for p in prefixes]


def test_prefixes_end_at_each_step_tag_and_scores_are_softmax() -> None:
    engine = PlannedEngine(
        {
            "Q: 2+3?\nA: 2 plus 3. ки": (math.log(0.9), math.log(0.1)),
            "Q: 2+3?\nA: 2 plus 3.\n\nThe answer is 5. ки": (math.log(0.3), math.log(0.6)),
            "Q: 2+3?\nA: ": (0.0, 0.0),  # the prompt alone: its length is shared, not charged
        }
    )
    scorer = StepTokenScorer(engine=engine, tag=" ки", good="+", bad="-")
    (result,) = scorer.score([("Q: 2+3?\nA: ", "2 plus 3.\n\nThe answer is 5.")])
    assert result.steps == ["2 plus 3.", "The answer is 5."]
    assert result.scores == pytest.approx([0.9, 1 / 3])
    assert result.reward_tokens == len("2 plus 3.\n\nThe answer is 5. ки")
    assert len(engine.calls) == 1  # every prefix of every solution in one batch


def test_empty_completion_has_no_steps_and_no_engine_call() -> None:
    engine = PlannedEngine({})
    (result,) = StepTokenScorer(engine=engine).score([("prompt", "   ")])
    assert result.steps == [] and result.scores == [] and result.reward_tokens == 0
    assert engine.calls == []


def test_good_probability_edges() -> None:
    assert good_probability(0.0, -math.inf) == 1.0
    assert good_probability(-math.inf, 0.0) == 0.0
    assert good_probability(-math.inf, -math.inf) == 0.0
    assert good_probability(-1.0, -1.0) == pytest.approx(0.5)
    assert good_probability(-1000.0, -1001.0) == pytest.approx(1 / (1 + math.exp(-1)))


def test_aggregates() -> None:
    assert aggregate([0.5, 0.8, 0.2]) == pytest.approx({"last": 0.2, "min": 0.2, "prod": 0.08, "mean": 0.5})
    assert aggregate([]) == {"last": None, "min": None, "prod": None, "mean": None}


def test_step_token_scores_on_the_real_engine(engine_pool: Any) -> None:
    """The small CPU model as its own PRM: one probability per step, deterministic."""
    from actors.remote import RemoteEngine

    scorer = StepTokenScorer(engine=RemoteEngine(engine_pool.handles[0]), tag="\nIs this step correct?", good=" Yes", bad=" No")
    items = [
        ("Tom has 3 apples and buys 2 more. How many apples?\n", "3 + 2 = 5.\n\nThe answer is 5."),
        ("Tom has 3 apples and buys 2 more. How many apples?\n", "3 + 2 = 7.\n\nHe has 7.\n\nThe answer is 7."),
    ]
    first = scorer.score(items)
    assert [len(r.scores) for r in first] == [2, 3]
    assert all(0.0 <= s <= 1.0 for r in first for s in r.scores)
    assert all(r.reward_tokens > 0 for r in first)
    assert any(0.0 < s < 1.0 for r in first for s in r.scores)  # both candidates were in the top-k
    again = scorer.score(items)
    assert [s for r in again for s in r.scores] == pytest.approx([s for r in first for s in r.scores])


def test_score_last_reads_one_prefix_per_partial_solution() -> None:
    engine = PlannedEngine({"P: a\nb ки": (math.log(0.2), math.log(0.8)), "P: c ки": (math.log(0.5), math.log(0.5))})
    scorer = StepTokenScorer(engine=engine, tag=" ки", delimiter="\n")
    assert scorer.score_last([("P: ", ["a", "b"]), ("P: ", ["c"])]) == [
        (pytest.approx(0.2), len("P: a\nb ки")),
        (pytest.approx(0.5), len("P: c ки")),
    ]
    assert engine.calls == [["P: a\nb ки", "P: c ки"]]


class PlannedLogprobs:
    """completion_logprobs from a plan: every token is one character with a fixed logprob."""

    def __init__(self, logprob: dict[str, float]) -> None:
        self.logprob = logprob

    def completion_logprobs(self, items: list[tuple[str, str]]) -> list[tuple[int, list[tuple[int, float]]]]:
        return [
            (len(p) + len(c), [(i + 1, self.logprob.get(ch, -1.0)) for i, ch in enumerate(c)]) for p, c in items
        ]


def test_self_logprob_scores_each_step_by_its_own_tokens() -> None:
    from sweep.inference.scorers.self_logprob import SelfLogprobScorer

    scorer = SelfLogprobScorer(engine=PlannedLogprobs({"a": 0.0, "b": math.log(0.25)}), delimiter="\n")
    (result,) = scorer.score([("P: ", "aa\nbb")])
    assert result.steps == ["aa", "bb"]
    assert result.scores == pytest.approx([1.0, 0.25])  # exp(mean logprob) of each step's tokens
    assert result.reward_tokens == 5  # the completion's tokens: the prompt is prefix-cached
    assert scorer.score_last([("P: ", ["aa", "bb"])]) == [(pytest.approx(0.25), len("P: aa\nbb"))]


def test_self_logprob_on_the_real_engine(engine_pool: Any) -> None:
    """The policy scores itself: per-step exp(mean logprob) in (0, 1], consistent both ways."""
    from actors.remote import RemoteEngine
    from sweep.inference.scorers.self_logprob import SelfLogprobScorer

    scorer = SelfLogprobScorer(engine=RemoteEngine(engine_pool.handles[0]), delimiter="\n")
    prompt = "Tom has 3 apples and buys 2 more. How many apples?\n"
    (result,) = scorer.score([(prompt, "Start with 3 apples.\nAdd 2: 3 + 2 = 5.\nThe answer is 5.")])
    assert len(result.scores) == 3 and all(0.0 < s <= 1.0 for s in result.scores)
    assert 0 < result.reward_tokens < 40
    ((last, tokens),) = scorer.score_last([(prompt, result.steps)])
    assert last == pytest.approx(result.scores[-1], rel=0.05) and tokens > result.reward_tokens
