"""Splitting a solution into reasoning steps: by a delimiter (default a blank line) or by "Step k:" markers.

The same split feeds process-reward-model inputs (one score per step) and tree expansion
(one node per step), so a step means the same thing in both.
"""

from __future__ import annotations

import re
from typing import Literal

StepMode = Literal["delimiter", "step_marker"]

_STEP_MARKER = re.compile(r"(?im)^\s*step\s*\d+\s*[:.)]")


def split_steps(text: str, *, mode: StepMode = "delimiter", delimiter: str = "\n\n") -> list[str]:
    """Non-empty steps of ``text``, in order, each stripped of surrounding whitespace."""
    if mode == "delimiter":
        parts = text.split(delimiter)
    else:
        starts = [m.start() for m in _STEP_MARKER.finditer(text)]
        if not starts or starts[0] != 0 and text[: starts[0]].strip():
            starts = [0, *starts]
        parts = [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]
    return [p.strip() for p in parts if p.strip()]
