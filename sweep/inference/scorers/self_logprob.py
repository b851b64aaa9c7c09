"""The policy scoring itself: a step's score is exp(mean log-probability of its tokens).

No reward model: the policy's own engine reads the solution once (``prompt_logprobs``), and
each step's tokens are found by their character offsets in the completion. exp of the mean
log-probability (the inverse per-token perplexity) lies in (0, 1], so the same aggregates and
voting rules apply as for a PRM. It measures confidence, not correctness.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from sweep.inference.scorers import StepScores
from sweep.inference.scorers.base import StepScorer


class LogprobEngine(Protocol):
    def completion_logprobs(
        self, items: list[tuple[str, str]]
    ) -> list[tuple[int, list[tuple[int, float]]]]: ...


@dataclass(frozen=True, kw_only=True)
class SelfLogprobScorer(StepScorer):
    reads_policy: ClassVar[bool] = True  # the policy's own engine reads its solutions

    engine: LogprobEngine

    def score(self, items: Sequence[tuple[str, str]]) -> list[StepScores]:
        read = self.engine.completion_logprobs(list(items)) if items else []
        results = []
        for (_, completion), (_, logprobs) in zip(items, read, strict=True):
            steps = self.split(completion)
            spans = step_spans(completion, steps)
            results.append(
                StepScores(
                    steps=steps,
                    scores=[span_score(logprobs, begin, end) for begin, end in spans],
                    reward_tokens=len(logprobs),  # the prompt is prefix-cached
                )
            )
        return results

    def score_last(self, items: Sequence[tuple[str, list[str]]]) -> list[tuple[float, int]]:
        """The last step read after the prompt and the earlier steps; tokens: the whole input."""
        pairs = [
            (prompt + "".join(s + self.delimiter for s in steps[:-1]), steps[-1] if steps else "")
            for prompt, steps in items
        ]
        read = self.engine.completion_logprobs(pairs) if pairs else []
        return [
            (span_score(logprobs, 0, len(step)), tokens)
            for (_, step), (tokens, logprobs) in zip(pairs, read, strict=True)
        ]


def step_spans(completion: str, steps: list[str]) -> list[tuple[int, int]]:
    """(begin, end) character span of each step in ``completion``, found in order."""
    spans, cursor = [], 0
    for step in steps:
        begin = completion.find(step, cursor)
        assert begin >= 0, "split_steps returns substrings of the text, in order"
        spans.append((begin, begin + len(step)))
        cursor = begin + len(step)
    return spans


def span_score(logprobs: list[tuple[int, float]], begin: int, end: int) -> float:
    """exp(mean logprob) of the tokens ending inside (begin, end]; 0 for a span with no token."""
    inside = [lp for offset, lp in logprobs if begin < offset <= end]
    return math.exp(sum(inside) / len(inside)) if inside else 0.0
