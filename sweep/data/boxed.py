"""The last ``\\boxed{...}`` of a text: how a MATH reference answer is read out of its worked
solution (``sweep.data.problems``), and the first thing a completion's answer extraction tries
(``sweep.inference.grading.answers``). One parser for both, so a reference and a completion
that box the same text get the same answer; it lives with the data, the lower of the two stages.
"""

from __future__ import annotations

import re

_BOXED = re.compile(r"\\(?:boxed|fbox)")
_BRACE = re.compile(r"[{}]")
_TOKEN = re.compile(r"\S+")
# Template text echoed from the prompt: "<number>", "<your answer>".
PLACEHOLDER = re.compile(r"<[A-Za-z][A-Za-z _-]{2,}>")


def find_last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox``), nested braces handled.

    ``\\boxed 5`` (no braces) gives ``"5"``. Unclosed, empty and placeholder boxes
    (``\\boxed{<answer>}``, usually an echoed instruction) are skipped for an earlier one.
    """
    commands = [match.end() for match in _BOXED.finditer(text)]
    if not commands:
        return None
    closing = _matching_braces(text)  # one pass, so many unclosed boxes cost O(n), not O(n^2)
    for index in reversed(commands):
        content = _box_content(text, index, closing)
        if content and not PLACEHOLDER.search(content):
            return content
    return None


def _matching_braces(text: str) -> dict[int, int]:
    """Index of each closed "{" -> index of its "}"."""
    closing: dict[int, int] = {}
    stack: list[int] = []
    for brace in _BRACE.finditer(text):
        if brace.group() == "{":
            stack.append(brace.start())
        elif stack:
            closing[stack.pop()] = brace.start()
    return closing


def _box_content(text: str, index: int, closing: dict[int, int]) -> str | None:
    opening = index
    while opening < len(text) and text[opening].isspace():
        opening += 1
    if text.startswith("{", opening):
        return text[opening + 1 : closing[opening]].strip() if opening in closing else None
    token = _TOKEN.match(text, opening)
    if opening == index or token is None:
        return None  # "\\boxedx" is another command; a box at the very end holds nothing
    return token.group().rstrip("$.") or None  # "\\boxed 5$." -> "5"
