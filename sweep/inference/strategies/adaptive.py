"""Adaptive sampling, live: draw in rounds and stop each problem once its answer is settled.

Every still-open problem of a shard draws its next round of ``window`` samples in one engine
batch; the round's answers are keyed by the problem's grader (equivalent answers share a key,
as in voting), scored by the reward model when the rule reads scores, and the stopping rule
of ``sweep/inference/stopping.py`` (ESC, Adaptive-Consistency's Beta criterion,
score-weighted) decides which problems stop. The offline replay (``analysis/adaptive.py``) calls the same rule on
random orderings of a fixed-n sweep's stored samples, so the two can be compared.

Only the samples drawn are written, each with its ``round``; every row of a problem carries
its ``stop_reason``: ``rule`` (the rule fired), ``n_max`` (the cap was reached first) or
``error`` (a round failed). Rows carry ``budget = n_max``, so the estimators vote over all of
a problem's drawn samples at n = n_max, as they do over a tree search's leaves, and charge
exactly what was drawn. A round re-sends the prompt: its uncached part after the first round
is ``context_flops``, as for a tree search's continuations (``sweep/inference/flops.py``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict, Field, PositiveInt, model_validator

from actors.protocol import Engine, GenerationRequest, RequestFailed
from sweep.data.prompting import PromptedProblem
from sweep.inference.grading.graders import answer_keys, extract_answer
from sweep.inference.scorers import Scorer, aggregate, score_apart
from sweep.inference.stopping import RULES, StoppingRule, fired
from sweep.inference.strategies.base import (
    GenerationConfig,
    RawSample,
    SampleCost,
    StrategyOutput,
    StrategySettings,
)


class AdaptiveSettings(StrategySettings):
    # grid.yaml says n_max; the field has another name because n_max is the base's property (the
    # largest n evaluated), which here is this cap.
    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True, serialize_by_alias=True)

    max_samples: PositiveInt = Field(alias="n_max", description="Samples a problem may draw at most.")
    name: Literal["adaptive"]
    window: PositiveInt = Field(
        default=2, description="Samples drawn per round; the rule is checked after each."
    )
    rule: Literal[RULES] = Field(  # type: ignore[valid-type]
        default="beta", description="esc, beta (Adaptive-Consistency) or weighted (needs reward_model)."
    )
    threshold: float = Field(
        default=0.95,
        gt=0,
        description="esc: agreeing answers in a row; beta: P(p1 > p2); weighted: score share.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> AdaptiveSettings:
        if self.window > self.max_samples:
            raise ValueError(f"window ({self.window}) must not exceed n_max ({self.max_samples})")
        if self.rule == "weighted" and self.reward_model is None:
            raise ValueError("the weighted rule reads reward scores: name a reward_model")
        StoppingRule(self.rule, self.threshold, self.window)  # its own checks (esc: a whole count)
        return self

    @property
    def n_values(self) -> list[int]:
        return [self.max_samples]

    def expected_rows(self, problems: int) -> int | None:
        return None  # as many samples as the rule lets each problem draw


def run_adaptive(
    problems: list[PromptedProblem],
    *,
    settings: AdaptiveSettings,
    engine: Engine,
    scorer: Scorer | None,
    generation: GenerationConfig,
    seed: int,
) -> StrategyOutput:
    """Rounds of ``window`` draws for every open problem at once, until each stops."""
    if settings.rule == "weighted":
        assert scorer is not None, "config validation requires a reward model for the weighted rule"
    drawn: dict[str, list[RawSample]] = {p.problem.problem_id: [] for p in problems}
    keys: dict[str, list[int]] = {pid: [] for pid in drawn}  # draw order -> key number, -1: none
    names: dict[str, dict[str, int]] = {pid: {} for pid in drawn}  # answer key -> its number
    scores: dict[str, list[float]] = {pid: [] for pid in drawn}
    stop: dict[str, str] = {}
    round_number = 0
    while len(stop) < len(problems):
        open_problems = [p for p in problems if p.problem.problem_id not in stop]
        sizes = [
            min(settings.window, settings.n_max - len(drawn[p.problem.problem_id])) for p in open_problems
        ]
        results = engine.generate(
            [
                GenerationRequest(
                    request_id=f"{p.problem.problem_id}/{round_number}",
                    messages=p.messages,
                    prompt=p.prompt,
                    sampling=settings.sampling(generation, n=k),
                    seed=seed + 1009 * index + round_number,
                )
                for index, (p, k) in enumerate(zip(open_problems, sizes, strict=True))
            ]
        )
        fresh: list[tuple[PromptedProblem, RawSample]] = []
        for problem, k, result in zip(open_problems, sizes, results, strict=True):
            pid = problem.problem.problem_id
            uncached = max(result.prompt_tokens - result.cached_tokens, 0) if round_number else 0
            for j in range(k):
                sample = RawSample.drawn(
                    result,
                    j,
                    problem_id=pid,
                    sample_index=len(drawn[pid]),
                    budget=settings.n_max,
                    round=round_number,
                )
                cost = SampleCost(  # the runner charges the reward model (or keeps the weighted rule's reads)
                    prompt_tokens=result.prompt_tokens,
                    completion_tokens=sample.completion_tokens,
                    context_tokens=uncached / k,
                    reward_tokens=0.0,
                )
                sample = replace(sample, cost=cost)
                drawn[pid].append(sample)
                fresh.append((problem, sample))
            if result.error is not None:
                stop[pid] = "error"
        answers = [extract_answer(s.completion) if s.error is None else None for _, s in fresh]
        graded = answer_keys(answers, [p.problem for p, _ in fresh])
        if settings.rule == "weighted":  # scored now, once: the runner keeps these scores
            scored = _score_round(fresh, scorer)
            fresh = [
                (p, replace(s, step_scores=steps, cost=replace(s.cost, reward_tokens=tokens)))
                for (p, s), (steps, tokens) in zip(fresh, scored, strict=True)
            ]
            for problem, sample in fresh:
                drawn[problem.problem.problem_id][sample.sample_index] = sample
        for (problem, sample), key in zip(fresh, graded, strict=True):
            pid = problem.problem.problem_id
            keys[pid].append(-1 if key is None else names[pid].setdefault(key, len(names[pid])))
            last = aggregate(sample.step_scores or [])["last"]
            scores[pid].append(np.nan if last is None else float(last))
        for problem in open_problems:
            pid = problem.problem.problem_id
            if pid in stop:
                continue
            if fired(
                np.asarray([keys[pid]]),
                np.asarray([scores[pid]]) if settings.rule == "weighted" else None,
                rule=settings.rule,
                threshold=settings.threshold,
                window=settings.window,
            )[0]:
                stop[pid] = "rule"
            elif len(drawn[pid]) >= settings.n_max:
                stop[pid] = "n_max"
        round_number += 1
    samples = [replace(s, stop_reason=stop[pid]) for pid in drawn for s in drawn[pid]]
    return StrategyOutput(samples)


def _score_round(
    fresh: list[tuple[Any, RawSample]], scorer: Scorer | None
) -> list[tuple[list[float], float]]:
    """Each new sample's step scores and the reward-model tokens they cost; none for a sample that
    failed or that the reward model refused (it then casts no weighted vote)."""
    assert scorer is not None
    live = [i for i, (_, s) in enumerate(fresh) if s.error is None]
    read = score_apart(scorer.score, [(fresh[i][1].prompt, fresh[i][1].completion) for i in live])
    out: list[tuple[list[float], float]] = [([], 0.0)] * len(fresh)
    for i, result in zip(live, read, strict=True):
        if not isinstance(result, RequestFailed):
            out[i] = (list(result.scores), float(result.reward_tokens))
    return out
