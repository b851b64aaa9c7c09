"""What every scorer kind shares: its reading of a solution into steps, and its settings.

A ``reward_models:`` entry passes the same settings to every kind (``tag``, ``good``, ``bad``,
``step_mode``, ``delimiter``); a kind that has no use for one accepts and ignores it. Two facts
about a kind are declared here as data, read by whoever needs them: ``prefix_cached`` (a partial
solution's shared prefix comes from the engine's cache, so tree search charges only new tokens)
and ``reads_policy`` (the kind scores with the policy's own engine: its entry names no model and
no engine is started for it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from sweep.inference.steps import StepMode, split_steps


@dataclass(frozen=True, kw_only=True)
class StepScorer:
    prefix_cached: ClassVar[bool] = True
    reads_policy: ClassVar[bool] = False

    tag: str = ""  # text put after each step, where a reward model is read
    good: str = ""  # step_token: the token whose probability scores a step
    bad: str = ""  # step_token: the competing token
    step_mode: StepMode = "delimiter"
    delimiter: str = "\n\n"

    def split(self, completion: str) -> list[str]:
        """The steps of a completion, as every scorer of this entry reads them."""
        return split_steps(completion, mode=self.step_mode, delimiter=self.delimiter)
