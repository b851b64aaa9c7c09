"""A process reward model with a classification head, served by vLLM's pooling runner.

This is the Qwen2.5-Math-PRM layout (``Qwen2ForProcessRewardModel``; the engine runs with
``runner: pooling``): the reward model reads ``prompt + s_1 + tag + s_2 + tag + …`` once,
and its two-class head's softmax at each step tag gives that step's score, P(class 1) =
P(step correct). One forward pass per solution, all steps at once; token-level pooling skips
vLLM's prefix cache, so ``reward_tokens`` is the whole text. The prompt is used as given (no
chat template of the reward model's own is applied).

Left out: reward heads with other label layouts (one logit, or good/bad vocabulary tokens as
in Math-Shepherd; that is the ``step_token`` kind).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from sweep.inference.scorers import StepScores
from sweep.inference.scorers.base import StepScorer

GOOD_CLASS = 1  # Qwen2.5-Math-PRM: class 1 of the head is "this step is correct"


class PoolingEngine(Protocol):
    def step_rewards(self, texts: list[str], *, step_tag: str) -> list[tuple[int, list[list[float]]]]: ...


@dataclass(frozen=True, kw_only=True)
class PoolingScorer(StepScorer):
    prefix_cached: ClassVar[bool] = False  # token pooling re-reads every token

    engine: PoolingEngine
    tag: str = "<extra_0>"  # the step tag; one special token of the reward model's tokenizer
    # good and bad are unused: the head's class 1 is "good".

    def score(self, items: Sequence[tuple[str, str]]) -> list[StepScores]:
        """Per-step scores of each (prompt, completion), one reward-model request per solution."""
        split = [self.split(completion) for _, completion in items]
        read = self._read([(prompt, steps) for (prompt, _), steps in zip(items, split, strict=True)])
        return [
            StepScores(steps=steps, scores=scores, reward_tokens=tokens)
            for steps, (tokens, scores) in zip(split, read, strict=True)
        ]

    def score_last(self, items: Sequence[tuple[str, list[str]]]) -> list[tuple[float, int]]:
        """For each (prompt, steps so far): the last step's score and the tokens read.

        The whole partial solution is read again (the head needs every token; no prefix cache).
        An item with no steps scores 0.0 and costs nothing.
        """
        return [(scores[-1] if scores else 0.0, tokens) for tokens, scores in self._read(items)]

    def render(self, prompt: str, steps: list[str]) -> str:
        """The reward model's input: each step followed by the tag, which appears nowhere else."""
        return prompt.replace(self.tag, "") + "".join(step.replace(self.tag, "") + self.tag for step in steps)

    def _read(self, items: Sequence[tuple[str, list[str]]]) -> list[tuple[int, list[float]]]:
        """(tokens read, score per step) of each (prompt, steps); no request for an item with no steps."""
        texts = [self.render(prompt, steps) for prompt, steps in items if steps]
        read = iter(self.engine.step_rewards(texts, step_tag=self.tag) if texts else [])
        results: list[tuple[int, list[float]]] = []
        for _, steps in items:
            if not steps:
                results.append((0, []))
                continue
            tokens, rows = next(read)  # rows: (step, class) -> probability
            assert len(rows) == len(steps), "render puts exactly one tag after each step"
            results.append((tokens, [row[GOOD_CLASS] for row in rows]))
        return results
