"""Pure answer-text helpers: pull the final answer out of a completion and normalise numbers.

Used by grading (completions) and by problem loading (MATH solutions without an
``answer`` field). Nothing here imports sympy or math-verify; symbolic equivalence lives
in ``sweep.math_grader``. Every function is total: malformed text gives ``None``, never
an exception.
"""

from __future__ import annotations

import re
from fractions import Fraction

_BOXED_COMMANDS = ("\\boxed", "\\fbox")

# "The answer is X" up to the end of the sentence: a period followed by space/end, or a newline.
# A period inside a number ("3.50") is not a sentence end.
_ANSWER_IS = re.compile(r"the\s+(?:final\s+)?answer\s+is\s*:?\s*(.+?)(?=\.\s|\.$|\n|$)", re.IGNORECASE)

# Integers with optional thousands groups, decimals and a simple "/denominator".
_NUMBER_IN_TEXT = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?|-?\.\d+")

# A full numeric token. Exponents are capped at 3 digits so "1e999999999" cannot make
# Fraction build a gigantic integer in-process (this grader has no timeout).
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,3})?")
_FRACTION = re.compile(rf"({_NUMBER.pattern})\s*/\s*({_NUMBER.pattern})")
_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{\s*([^{}]*?)\s*\}\s*\{\s*([^{}]*?)\s*\}")
_LATEX_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mathbf|boxed|fbox)\s*\{([^{}]*)\}")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?")
_TRAILING_UNITS = re.compile(r"(.*?\d)\s*[A-Za-z][A-Za-z\s.]*")  # "18 apples", "5 cm."
_LEADING_ASSIGNMENT = re.compile(r"[A-Za-z]\w*\s*=\s*(.*)")  # "x = 5"
_MAX_NUMERIC_CHARS = 200
# Currency, percent, LaTeX spacing, thousands separators and grouping carry no value here.
_DROPPED_TOKENS = (
    ("\\$", ""), ("$", ""), ("\\%", ""), ("%", ""),
    ("\\!", " "), ("\\,", " "), ("\\;", " "), ("\\ ", " "),
    (",", ""), ("(", ""), (")", ""), ("{", ""), ("}", ""),
)


def find_last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox``), nested braces handled.

    ``\\boxed 5`` (no braces) gives ``"5"``. Unclosed and empty boxes are skipped.
    """
    start = max(text.rfind(cmd) for cmd in _BOXED_COMMANDS)
    while start >= 0:
        command = next(cmd for cmd in _BOXED_COMMANDS if text.startswith(cmd, start))
        content = _box_content(text, start + len(command))
        if content:
            return content
        # Unclosed or empty box (often an echoed instruction): fall back to an earlier one.
        start = max(text.rfind(cmd, 0, start) for cmd in _BOXED_COMMANDS)
    return None


def _box_content(text: str, index: int) -> str | None:
    rest = text[index:]
    if rest.startswith(" ") and not rest.lstrip().startswith("{"):
        tokens = rest.split(maxsplit=1)
        if not tokens:
            return None
        return tokens[0].rstrip("$.") or None
    rest = rest.lstrip()
    if not rest.startswith("{"):
        return None
    depth = 0
    for position, char in enumerate(rest):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return rest[1:position].strip()
    return None


def extract_answer(text: str) -> str | None:
    """The final answer written in a completion, or ``None``.

    Priority: the last ``\\boxed{...}``; else the last "The answer is X" (case-insensitive,
    trailing period, ``$`` and markdown emphasis stripped); else the last number in the text.
    """
    boxed = find_last_boxed(text)
    if boxed:
        return boxed
    matches = list(_ANSWER_IS.finditer(text))
    for match in reversed(matches):
        answer = _strip_answer(match.group(1))
        if answer:
            return answer
    numbers = _NUMBER_IN_TEXT.findall(text)
    if numbers:
        return str(numbers[-1]).replace(",", "")
    return None


def _strip_answer(answer: str) -> str:
    answer = answer.strip().strip("*").strip()
    while answer and answer[-1] in ".$*" and not answer.endswith("\\$"):
        answer = answer[:-1].rstrip()
    while answer.startswith("$"):
        answer = answer[1:].lstrip()
    return answer


def normalize_text(answer: str) -> str:
    """Lower-case, whitespace-collapsed text: the key of answers that are not numbers."""
    return " ".join(answer.strip().lower().split())


def parse_number(answer: str) -> Fraction | None:
    """The exact value of a numeric answer, ignoring commas, currency, %, units and periods.

    ``"1,234"``, ``"$18.00"``, ``"18 apples"``, ``"\\frac{3}{4}"`` and ``"-3/4"`` all parse;
    text with no single number (``"x+1"``, ``"3 or 4"``) gives ``None``.
    """
    if len(answer) > _MAX_NUMERIC_CHARS:
        return None
    text = answer.replace("\u2212", "-").strip()
    for _ in range(3):  # unwrap a few levels of \text{\boxed{...}}
        text = _LATEX_WRAPPERS.sub(r"\1", text)
    text = _LATEX_FRAC.sub(r"(\1)/(\2)", text)
    text = _DEGREES.sub("", text)
    for token, replacement in _DROPPED_TOKENS:
        text = text.replace(token, replacement)
    text = text.strip().rstrip(".").strip()
    value = _parse_plain_number(text)
    if value is None:
        # Drop a leading "x =" and trailing unit words, then retry once. Words elsewhere
        # ("x+1", "3 or 4") mean this is not a single number.
        assignment = _LEADING_ASSIGNMENT.fullmatch(text)
        text = assignment.group(1) if assignment else text
        units = _TRAILING_UNITS.fullmatch(text)
        text = units.group(1) if units else text
        value = _parse_plain_number(text.strip())
    return value


def _parse_plain_number(text: str) -> Fraction | None:
    text = text.replace(" ", "") if _FRACTION.fullmatch(text) else text
    if _NUMBER.fullmatch(text):
        return Fraction(text)
    match = _FRACTION.fullmatch(text)
    if match:
        numerator, denominator = Fraction(match.group(1)), Fraction(match.group(2))
        return numerator / denominator if denominator != 0 else None
    return None


def numeric_key(answer: str) -> str:
    """Canonical key: the reduced fraction (``"18"``, ``"-3/4"``), else the normalised text."""
    value = parse_number(answer)
    return str(value) if value is not None else normalize_text(answer)
