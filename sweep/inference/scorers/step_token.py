"""Math-Shepherd-style process reward: P(good token | solution up to a step tag).

For a solution split into steps s_1..s_k, the reward model reads, for each j, the prefix
``prompt + s_1 + sep + … + s_j + tag`` and the log-probabilities of the ``good`` and ``bad``
tokens as the next token. The step's score is softmax over those two (Math-Shepherd's
"+"/"-" after "ки"). All prefixes of all solutions go to the engine in one batch; their
shared beginnings hit the prefix cache, so a solution costs its own length in reward-model
tokens (``reward_tokens``: the last prefix's tokens beyond the prompt, which all solutions of
a problem share).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from sweep.inference.scorers import RewardEngine, StepScores
from sweep.inference.scorers.base import StepScorer


@dataclass(frozen=True, kw_only=True)
class StepTokenScorer(StepScorer):
    engine: RewardEngine
    tag: str = " ки"
    good: str = "+"
    bad: str = "-"

    def score(self, items: Sequence[tuple[str, str]]) -> list[StepScores]:
        """Per-step scores of each (prompt, completion)."""
        split = [self.split(completion) for _, completion in items]
        prefixes = [
            prompt + self.delimiter.join(steps[: j + 1]) + self.tag
            for (prompt, _), steps in zip(items, split, strict=True)
            for j in range(len(steps))
        ]
        # Each distinct prompt is read once more on its own: its length is what every solution
        # of that problem shares (and the prefix cache serves), so it is not charged per solution.
        prompts = sorted({prompt for prompt, _ in items}) if prefixes else []
        read = self.engine.next_token_logprobs(prefixes + prompts, [self.good, self.bad]) if prefixes else []
        prompt_tokens = {p: tokens for p, (tokens, _) in zip(prompts, read[len(prefixes) :], strict=True)}
        results, cursor = [], 0
        for (prompt, _), steps in zip(items, split, strict=True):
            mine = read[cursor : cursor + len(steps)]
            cursor += len(steps)
            results.append(
                StepScores(
                    steps=steps,
                    scores=[good_probability(lp[self.good], lp[self.bad]) for _, lp in mine],
                    reward_tokens=max(mine[-1][0] - prompt_tokens[prompt], 0) if mine else 0,
                )
            )
        return results

    def score_last(self, items: Sequence[tuple[str, list[str]]]) -> list[tuple[float, int]]:
        """One prefix per item, ending at the tag after its last step."""
        prefixes = [prompt + self.delimiter.join(steps) + self.tag for prompt, steps in items]
        read = self.engine.next_token_logprobs(prefixes, [self.good, self.bad]) if prefixes else []
        return [(good_probability(lp[self.good], lp[self.bad]), tokens) for tokens, lp in read]


def good_probability(good: float, bad: float) -> float:
    """softmax([good, bad])[0] from log-probabilities; a candidate outside the top-k is -inf."""
    if good == bad == -math.inf:
        return 0.0
    top = max(good, bad)
    return math.exp(good - top) / (math.exp(good - top) + math.exp(bad - top))
