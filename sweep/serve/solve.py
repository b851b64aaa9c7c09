"""Answer one new problem the compute-optimal way a finished sweep found. No Ray here.

Given a FLOPs budget per problem, ``choose`` picks, from the sweep's accuracy-vs-FLOPs frontier,
the most accurate (model, strategy, method, n) whose cost fits (oracle methods such as pass@n
excluded). ``solve`` then runs that strategy on the question with the same prompt, generation
and reward-model settings as the sweep, aggregates the samples by the chosen method and reports
the FLOPs it actually spent, by the same rule as the sweep's tables (``sweep/inference/flops.py``).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from actors.engine import render_prompt
from actors.protocol import Engine
from analysis.adaptive import rule_of_method
from sweep.config import SweepConfig
from sweep.data.problems import Problem
from sweep.data.prompting import PromptedProblem, prompt_problems
from sweep.inference.flops import Flops, forward_flops, problem_flops, row_flops
from sweep.inference.grading.answers import extract_answer
from sweep.inference.grading.graders import answer_keys
from sweep.inference.scorers import AGGREGATIONS, Scorer, aggregate
from sweep.inference.strategies import STRATEGIES, RawSample

ORACLE_METHODS = ("pass_at_n",)
MAX_QUESTION_CHARS = 100_000  # beyond any context a model of the sweep could read; tokens are checked after


class SolveFailed(RuntimeError):
    """The engine refused or failed every sample of a question (the engine itself goes on)."""


class NoChoice(ValueError):
    """No configuration of the sweep fits the budget (or the sweep has no results)."""


@dataclass(frozen=True)
class Choice:
    model: str
    model_params: int
    dataset: str
    strategy: str
    method: str
    n: int
    accuracy: float
    flops_per_problem: float


@dataclass(frozen=True)
class Solution:
    answer: str | None
    choice: Choice
    samples: int
    policy_flops: float
    reward_flops: float

    @property
    def flops(self) -> float:
        return self.policy_flops + self.reward_flops

    def to_json(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "choice": asdict(self.choice),
            "samples": self.samples,
            "policy_flops": self.policy_flops,
            "reward_flops": self.reward_flops,
            "flops": self.flops,
        }


def choose(accuracy: pd.DataFrame, *, flops_budget: float, dataset: str | None = None) -> Choice:
    """The most accurate configuration whose FLOPs per problem fit ``flops_budget``."""
    rows = accuracy[~accuracy["method"].isin(ORACLE_METHODS)]
    if dataset is not None:
        rows = rows[rows["dataset"] == dataset]
    fits = rows[rows["flops_per_problem"] <= flops_budget].dropna(subset=["accuracy"])
    if fits.empty:
        cheapest = rows["flops_per_problem"].min() if not rows.empty else None
        hint = f"; the cheapest configuration needs {cheapest:.3e}" if cheapest is not None else ""
        raise NoChoice(f"no configuration fits {flops_budget:.3e} FLOPs per problem{hint}")
    best = fits.sort_values(["accuracy", "flops_per_problem"], ascending=[False, True], kind="stable").iloc[0]
    return Choice(
        model=str(best["model"]),
        model_params=int(best["model_params"]),
        dataset=str(best["dataset"]),
        strategy=str(best["strategy"]),
        method=str(best["method"]),
        n=int(best["n"]),
        accuracy=float(best["accuracy"]),
        flops_per_problem=float(best["flops_per_problem"]),
    )


class QuestionTooLong(ValueError):
    """A question whose prompt, with what the chosen strategy may generate, exceeds the model's context."""


def prompt_question(question: str, *, choice: Choice, config: SweepConfig) -> PromptedProblem:
    """``question`` as the chosen dataset prompts its problems (no reference answer); built once a
    request, for the length check and for the run."""
    dataset = next(d for d in config.datasets if d.name == choice.dataset)
    problem_id = "solve-" + hashlib.sha256(question.encode()).hexdigest()[:12]
    problem = Problem(
        dataset=dataset.name, problem_id=problem_id, question=question, answer="", grader=dataset.grader
    )
    (prompted,) = prompt_problems([problem], dataset)
    return prompted


def check_question_fits(
    prompted: PromptedProblem, *, choice: Choice, config: SweepConfig, tokenizer: Any, max_model_len: int | None
) -> int:
    """The prompt tokens the question costs under ``choice``; raises QuestionTooLong when they, plus
    the tokens its strategy may generate, exceed ``max_model_len`` (None: unknown, not checked).

    The prompt is the dataset's, rendered as the engine renders it (``actors.engine.render_prompt``) and
    counted with the model's own tokenizer (loaded without an engine), so a question the engine
    would refuse, or cut short before its answer, is refused here before any engine is touched.
    """
    dataset = prompted.problem.dataset
    tokens = len(tokenizer.encode(render_prompt(tokenizer, prompted.messages, prompted.prompt)))
    if max_model_len is None:
        return tokens
    generated = generation_cap(config, choice)
    if tokens + generated > max_model_len:
        raise QuestionTooLong(
            f"the question's prompt is {tokens} tokens ({dataset}'s prompt template included) and "
            f"{choice.strategy} may generate {generated} more: {tokens + generated} tokens, over "
            f"{choice.model}'s max_model_len of {max_model_len}; shorten the question by about "
            f"{tokens + generated - max_model_len} tokens"
        )
    return tokens


def generation_cap(config: SweepConfig, choice: Choice) -> int:
    """The most tokens the chosen strategy generates after the prompt: a tree search's path cap,
    else the sweep's ``generation.max_tokens``."""
    return _settings_for(config, choice).generated_tokens_cap(config.generation)


def solve(
    prompted: PromptedProblem,
    *,
    choice: Choice,
    config: SweepConfig,
    engine: Engine,
    scorer: Scorer | None,
    reward_params: int,
) -> Solution:
    """Run the chosen configuration on a question (``prompt_question``) and aggregate its samples by
    the chosen method."""
    settings = _settings_for(config, choice)
    method = choice.method
    if (rule := rule_of_method(choice.method)) is not None:
        # An adaptive method of the offline replay: run its rule live, on the sampling entry's
        # settings, and vote as the replay does over what it drew.
        settings = _adaptive_settings(settings, rule, n_max=choice.n)
        method = "weighted_vote_last" if rule.reads_scores else "majority_vote"
    output = STRATEGIES[settings.name].run(
        [prompted], settings=settings, engine=engine, scorer=scorer, generation=config.generation, seed=config.seed
    )
    samples = output.samples
    if samples and all(s.error is not None for s in samples):
        raise SolveFailed(f"the engine served none of {len(samples)} samples: {samples[0].error}")
    scores, reward_tokens = _scores(samples, scorer, method)
    answers = [extract_answer(s.completion) for s in samples]
    keys = answer_keys(answers, [prompted.problem] * len(samples))
    winner = _vote(method, keys, scores)
    cost = _flops(samples, choice.model_params, reward_params, reward_tokens)
    return Solution(
        answer=answers[winner] if winner is not None else None,
        choice=choice,
        samples=len(samples),
        policy_flops=cost.policy,
        reward_flops=cost.reward,
    )


def _adaptive_settings(sampling: Any, rule: Any, *, n_max: int) -> Any:
    """The live ``adaptive`` strategy for a replayed rule, drawing as the sampling entry did."""
    return STRATEGIES["adaptive"].settings.model_validate(
        {
            "name": "adaptive",
            "n_max": n_max,
            "window": rule.window,
            "rule": rule.rule,
            "threshold": rule.threshold,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "reward_model": sampling.reward_model,
        }
    )


def _settings_for(config: SweepConfig, choice: Choice) -> Any:
    """The settings of the one run that draws ``choice.n``: sampling drawing exactly n, a tree
    search's shard kind of budget n, else the entry as the sweep ran it."""
    entry = next(s for s in config.strategies if s.label == choice.strategy)
    return entry.drawing(choice.n) or entry


def _scores(
    samples: list[RawSample], scorer: Scorer | None, method: str
) -> tuple[list[dict[str, float | None]] | None, int]:
    """Per-sample score aggregates when the method reads them (from the search, else scored
    now), and the reward-model tokens that scoring them now read."""
    if not method.startswith(("weighted_vote_", "best_of_n_")):
        return None, 0
    if all(s.step_scores is not None for s in samples):
        return [aggregate(s.step_scores or []) for s in samples], 0
    assert scorer is not None, "a method that reads scores comes from a strategy with a reward model"
    scored = scorer.score([(s.prompt, s.completion) for s in samples])
    return [aggregate(r.scores) for r in scored], sum(r.reward_tokens for r in scored)


def _vote(method: str, keys: list[str | None], scores: list[dict[str, float | None]] | None) -> int | None:
    """The index of the sample whose answer wins; ties go to the earliest sample."""
    if method == "greedy":
        return 0
    aggregation = method.rsplit("_", 1)[-1] if scores is not None else None
    assert aggregation is None or aggregation in AGGREGATIONS
    if method.startswith("best_of_n_"):
        ranked = [(-(s[aggregation] or 0.0), i) for i, (s, k) in enumerate(zip(scores or [], keys)) if k is not None]
        return min(ranked)[1] if ranked else None
    weight: dict[str, float] = defaultdict(float)
    first: dict[str, int] = {}
    for index, key in enumerate(keys):
        if key is None:
            continue
        weight[key] += 1.0 if scores is None else float(scores[index][aggregation] or 0.0)
        first.setdefault(key, index)
    if not weight:
        return None
    best = max(weight, key=lambda k: (weight[k], -first[k]))
    return first[best]


def _flops(samples: list[RawSample], params: int, reward_params: int, reward_tokens: float) -> Flops:
    """What this answer cost, by the FLOPs rule (``sweep/inference/flops.py``) on the rows the sweep writes
    for these samples: the prompt once, each sample's completion and re-encoded context (a tree
    search's leaf: its share of the tree, ``SampleCost``), and the reward model's reads (a tree
    search's leaf shares, plus ``reward_tokens`` scored now for a method that reads scores)."""

    rows = [
        row_flops(
            completion_flops=forward_flops(params, s.tokens("completion_tokens")),
            context_flops=forward_flops(params, s.tokens("context_tokens")),
            reward_flops=forward_flops(reward_params, s.tokens("reward_tokens")),
        )
        for s in samples
    ]
    prompt = max((s.tokens("prompt_tokens") for s in samples), default=0.0)
    cost = problem_flops(prompt_flops=forward_flops(params, prompt), rows=rows)
    return Flops(policy=cost.policy, reward=cost.reward + forward_flops(reward_params, reward_tokens))
