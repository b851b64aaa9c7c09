"""Pure answer-text helpers: pull the final answer out of a completion and read numbers exactly.

Used by grading (completions), by ``/solve`` (vote keys) and by problem loading (MATH
solutions without an ``answer`` field). Nothing here imports sympy or math-verify: this runs
in-process in every shard and in the Serve app, and must be fast and unable to hang.
Symbolic reading of LaTeX lives in ``sweep.inference.grading.math_grader``. Every function is
total: malformed text gives ``None``, never an exception.

Hand-written rules, and why math-verify is not used for them:

- **Extraction** (``extract_answer``) returns the answer *text*, which is stored in the
  ``extracted_answer`` column and read by both graders. math-verify's ``parse`` extracts and
  parses in one step (it needs sympy and a timeout guard), returns no text span, and on model
  prose it is wrong in the cases this module must get right: it reads nothing from
  "the point is (2,3)." or from a Unicode minus in running text, reads ``1\\,000`` as ``1``
  and "10-12 hours" as the expression 10-12. Priority here: the last non-empty ``\\boxed{}``;
  else the last answer marker ("The answer is X", "#### X", or "Answer: X" / "Final Answer:
  X" starting a line), cut at the end of its sentence or at a clause such as
  "because ..."; else the last number (or pair of numbers) in the text.
- **Numbers** (``parse_number``) are read as exact ``Fraction`` s, for the numeric grader. The
  same number always gets the same key, and the grade compares that same value, so a key
  can never carry two grades. math-verify's number reading is not used: it reads
  ``3,4`` as 3.4 (a decimal comma), ``10\\,000`` as 0 and ``2 1/2`` as 3/2, and it needs
  sympy.
- **Thousands separators** (``,``, ``{,}``, ``\\,``, thin spaces) are dropped only between
  proper groups (``1,234,567``); any other comma means "not a single number": ``(2,3)`` and
  ``3,4`` are pairs, not 23 and 34.
- **A minus sign** is unary only where no number, letter or closing bracket comes before it:
  "10-12" is a range (last number 12), never -12. U+2212 counts as a minus sign.
- **Mixed numbers** ``2\\frac{1}{2}`` and ``2 1/2`` are 5/2 (a proper fraction after a whole
  number); brace-less ``\\frac12`` is 1/2.
- **Percent, currency and degrees** carry no value here: ``5%``, ``$5`` and ``5^\\circ`` are 5.
  So "5%" and "0.05" are different answers; see ``sweep.inference.grading.math_grader`` for why.
- **Echoed instructions** are skipped: an empty ``\\boxed{}`` ("put your answer within
  \\boxed{}"), a placeholder such as "The answer is <number>", and anything after the model
  starts inventing the next few-shot turn ("\\nQuestion: ...").
"""

from __future__ import annotations

import re
from fractions import Fraction

from sweep.data.boxed import PLACEHOLDER, find_last_boxed

_UNICODE_MINUS = "\u2212"
_MAX_ANSWER_CHARS = 200  # longer "answers" are prose; reading them as numbers is pointless

# --- extraction ------------------------------------------------------------------------------

# Where an answer is announced. "Final Answer: The final answer is $5$." gives two markers;
# the last one wins.
_ANSWER_MARKER = re.compile(
    r"\bthe\s+(?:final\s+)?answer\s+(?:is|would\s+be|will\s+be)\b\s*:?"
    r"|^[ \t>*#_]*(?:final\s+)?answer[*_]*\s*:"  # "Answer: 18", "**Final Answer:** 18" start a line
    r"|####",  # GSM8K's own format
    re.IGNORECASE | re.MULTILINE,
)
# The end of the announced answer's sentence: a period (not inside "3.50"), ! or ? before
# whitespace or the end.
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
# A clause that explains rather than states the answer: "18 because ...", "18, which is ...".
_CLAUSE = re.compile(
    r"(?:\s*[,;]\s*|\s+)(?:because|since|as|so|which|where|when|but|if|given|due\s+to|for|from"
    r"|this|that|it|i\s+hope|and\s+(?:so|then|the|this|that|it|we|i|he|she|they))\b"
    r"|(?<=\d)\s+\(",  # "18 (3 * 6)": a worked calculation after a number
    re.IGNORECASE,
)
_EMPTY_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{\s*\}")
# The model starts the next few-shot turn on its own: what follows is not its answer.
_NEXT_TURN = re.compile(r"\n\s*Question\s*:")

# Thousands separators: a comma, LaTeX "{,}", thin-space commands and Unicode thin spaces.
_SEPARATOR = r"(?:,|\{,\}|\\,|\\!|\\ |\\;|[\u2009\u202f])"
_NON_COMMA_SEPARATOR = r"(?:\\,|\\!|\\ |\\;|[\u2009\u202f])"
_DIGIT_GROUPS = r"(?<![\d.]){lead}((?:{sep}\d{{3}})+)(?![\d])"
_GROUPED = re.compile(_DIGIT_GROUPS.format(lead=r"(\d{1,3})", sep=_SEPARATOR))
_GROUPED_NON_COMMA = re.compile(_DIGIT_GROUPS.format(lead=r"(\d{1,3})", sep=_NON_COMMA_SEPARATOR))
_SEPARATOR_ONLY = re.compile(_SEPARATOR)

# Numbers in running text, unsigned (the sign is decided by what precedes it). Longest forms
# first: a pair or tuple of numbers, a mixed LaTeX number, a LaTeX fraction, a mixed plain
# number, thousands groups, a plain fraction, a decimal.
_FRAC_ARG = r"(?:\{\s*\d+(?:\.\d+)?\s*\}|\d)"
_NUMBER_IN_TEXT = re.compile(
    r"(?P<tuple>[(\[]\s*-?\d+(?:\.\d+)?(?:\s*,\s*-?\d+(?:\.\d+)?)+\s*[)\]])"  # "(2,3)", "[0, 1)"
    r"|(?<![\w.\\])(?:"
    rf"(?:\d+\s*)?\\[dt]?frac\s*{_FRAC_ARG}\s*{_FRAC_ARG}"
    r"|\d+\s+\d+/\d+(?![\d/])"
    rf"|\d{{1,3}}(?:{_SEPARATOR}\d{{3}})+(?![\d])(?:\.\d+)?"
    r"|\d+(?:\.\d+)?(?:/\d+(?:\.\d+)?)?"
    r"|\.\d+"
    r")"
)
# Characters after which a "-" is binary (a range or a subtraction), not a sign.
_BINARY_MINUS_AFTER = re.compile(r"[\w)\]}]")


def extract_answer(text: str) -> str | None:
    """The final answer written in a completion, or ``None`` (see the module docstring)."""
    text = text.replace(_UNICODE_MINUS, "-")
    next_turn = _NEXT_TURN.search(text)
    if next_turn and text[: next_turn.start()].strip():
        text = text[: next_turn.start()]
    boxed = find_last_boxed(text)
    if boxed:
        return boxed
    for marker in reversed(list(_ANSWER_MARKER.finditer(text))):
        answer = _announced_answer(text, marker.end())
        if answer:
            return answer
    return _last_number(text)


def _announced_answer(text: str, start: int) -> str | None:
    """The answer after a marker: to the end of its sentence or line, before any clause."""
    newline = text.find("\n", start)
    line = text[start : newline if newline >= 0 else len(text)]
    end = _SENTENCE_END.search(line)
    answer = line[: end.start()] if end else line
    clause = _CLAUSE.search(answer)
    answer = _strip_answer(answer[: clause.start()] if clause else answer)
    if not answer or PLACEHOLDER.search(answer) or _EMPTY_BOX.search(answer):
        return None
    return answer


def _strip_answer(answer: str) -> str:
    answer = answer.strip().strip("*").strip()
    while answer and answer[-1] in ".,;:$*" and not answer.endswith("\\$"):
        answer = answer[:-1].rstrip()
    while answer[:1] in ("$", "*"):
        answer = answer[1:].lstrip()
    for opening, closing in (("\\(", "\\)"), ("\\[", "\\]")):
        if answer.startswith(opening) and answer.endswith(closing):
            answer = answer[len(opening) : -len(closing)].strip()
    return answer


def _last_number(text: str) -> str | None:
    match = None
    for match in _NUMBER_IN_TEXT.finditer(text):
        pass
    if match is None:
        return None
    number = match.group()
    if match.group("tuple"):
        return number
    if _GROUPED.fullmatch(number):
        number = _SEPARATOR_ONLY.sub("", number)
    elif "/" in number and " " in number and parse_number(number) is None:
        number = number.split()[-1]  # "7 9/4" is not a mixed number; keep the fraction
    if _is_unary_minus(text, match.start()):
        number = "-" + number
    return number


def _is_unary_minus(text: str, start: int) -> bool:
    """Whether a "-" before ``text[start:]`` is a sign: "is -4", "(-4", "=-4", not "10-12"."""
    before = text[max(0, start - 80) : start]  # the few characters that decide it
    spaced_after = before != before.rstrip()
    before = before.rstrip()
    if not before.endswith("-"):
        return False
    ahead = before[:-1]
    spaced_before = ahead != ahead.rstrip()
    ahead = ahead.rstrip()
    if not ahead or not _BINARY_MINUS_AFTER.fullmatch(ahead[-1]):
        return True  # start of text, "(", "=", "$", ":" ...
    # After a word, "owes -4" is a sign but "x-4" and "x - 4" are subtractions; after a number
    # or a closing bracket it is always a range or a subtraction.
    return ahead[-1].isalpha() and spaced_before and not spaced_after


# --- numbers ---------------------------------------------------------------------------------

_LATEX_WRAPPER = re.compile(r"\\(?:text|textbf|textnormal|textrm|mathrm|mathbf|boxed|fbox)\s*\{([^{}]*)\}")
_LATEX_SIZING = re.compile(r"\\(?:left|right|big|Big|bigg|Bigg)(?![A-Za-z])")
# Brace-less fraction arguments: "\frac12", "\frac{1}2", "\frac 1{2}".
_BARE_FRAC = re.compile(r"\\frac\s*(\{[^{}]*\}|\d)\s*(\{[^{}]*\}|\d)")
_SIGNED = r"[+-]?\s*(?:\d+(?:\.\d*)?|\.\d+)"
_LATEX_FRAC = re.compile(rf"\\frac\{{\s*({_SIGNED})\s*\}}\{{\s*({_SIGNED})\s*\}}")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\degree|°")
_LATEX_SPACE = re.compile(r"\\(?:,|;|!|:| |quad|qquad)|~")
_CURRENCY = re.compile(r"\\\$|[$€£¥₹]|\\(?:euro|pounds)\b")
_PERCENT = re.compile(r"\\%|%")
# The number grammar, after cleaning: "2 1/2", "-3/4", "1.5e3", "1.5 \times 10^{3}".
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,3})?"  # exponents capped: no huge Fractions
_TIMES_TEN = r"(?:\\times|\\cdot|×|\*)\s*10\s*\^"  # "1.5 \times 10^{3}"
_VALUE = re.compile(
    rf"(?P<sign>[+-]?)\s*(?:"
    rf"(?P<whole>\d+)\s+(?P<num>\d+)\s*/\s*(?P<den>\d+)"
    rf"|(?P<top>{_NUMBER})\s*/\s*(?P<bottom>[+-]?\s*{_NUMBER})"
    rf"|(?P<plain>{_NUMBER})(?:\s*{_TIMES_TEN}\s*\{{?\s*(?P<power>[+-]?\d{{1,3}})\s*\}}?)?"
    rf")"
)
_LEADING_ASSIGNMENT = re.compile(r"[A-Za-z]\w*\s*=\s*(.*)")  # "x = 5"
_UNIT_WORD = r"[A-Za-z]+\.?(?:\^\{?[23]\}?)?"
# Unit words are separated by a space or "/", so "abc" can be split only one way (no backtracking).
_TRAILING_UNITS = re.compile(
    rf"(.*?\d)\s*{_UNIT_WORD}(?:(?:\s+|\s*/\s*){_UNIT_WORD})*\s*"
)  # "18 apples", "5 km/h"


def strip_thousands(text: str, *, commas: bool = True) -> str:
    """Drop thousands separators between proper digit groups only: ``1,234,567`` -> ``1234567``.

    ``commas=False`` keeps plain commas (for LaTeX, where ``1,2`` may be a list) and drops only
    ``{,}``-free spacing separators such as ``10\\,000``.
    """
    pattern = _GROUPED if commas else _GROUPED_NON_COMMA
    return pattern.sub(lambda m: m.group(1) + _SEPARATOR_ONLY.sub("", m.group(2)), text)


def normalize_text(answer: str) -> str:
    """Lower-case, whitespace-collapsed text: the key of answers that are not numbers."""
    return " ".join(answer.strip().lower().split())


def parse_number(answer: str) -> Fraction | None:
    """The exact value of a numeric answer, or ``None`` if it is not a single number.

    ``"1,234"``, ``"$18.00"``, ``"18 apples"``, ``"\\frac{3}{4}"``, ``"\\frac12"``,
    ``"2\\frac{1}{2}"``, ``"1\\,000"``, ``"50\\%"`` and ``"-3/4"`` parse; ``"x+1"``, ``"3 or 4"``,
    ``"(2,3)"`` and ``"3,4"`` give ``None``.
    """
    text = answer.strip()
    if len(text) > _MAX_ANSWER_CHARS:
        return None
    text = _clean_number(text)
    value = _read_value(text)
    if value is None:
        # Drop a leading "x =" and trailing unit words, then retry once. Words elsewhere
        # ("x+1", "3 or 4") mean this is not a single number.
        assignment = _LEADING_ASSIGNMENT.fullmatch(text)
        text = assignment.group(1).strip() if assignment else text
        units = _TRAILING_UNITS.fullmatch(text)
        text = units.group(1) if units else text
        value = _read_value(text.strip())
    return value


def read_number(answer: str) -> tuple[Fraction | None, str]:
    """One parse of a numeric answer: its value (``None`` if not a number) and its vote key.

    The key is the reduced fraction (``"18"``, ``"-3/4"``), else the normalised text. Graders
    compare the same value the key was made from, so equal keys always grade alike.
    """
    value = parse_number(answer)
    return value, (str(value) if value is not None else normalize_text(answer))


def numeric_key(answer: str) -> str:
    """Canonical key: the reduced fraction (``"18"``, ``"-3/4"``), else the normalised text."""
    return read_number(answer)[1]


def _clean_number(text: str) -> str:
    text = text.replace(_UNICODE_MINUS, "-")
    for _ in range(3):  # unwrap a few levels of \text{\boxed{...}}
        text = _LATEX_WRAPPER.sub(r"\1", text)
    text = _LATEX_SIZING.sub("", text).replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    text = _BARE_FRAC.sub(lambda m: f"\\frac{_braced(m.group(1))}{_braced(m.group(2))}", text)
    text = _DEGREES.sub("", text)
    text = _PERCENT.sub("", text)
    text = _CURRENCY.sub("", text)
    text = strip_thousands(text)
    text = _LATEX_SPACE.sub(" ", text)
    # "2\frac{1}{2}" is a mixed number, "-\frac{3}{4}" a signed fraction: write both plainly.
    text = _LATEX_FRAC.sub(lambda m: f" {_unspaced(m.group(1))}/{_unspaced(m.group(2))}", text)
    text = text.replace("{", "").replace("}", "").strip()
    text = text.rstrip(".,;:!").strip()
    if text.startswith("(") and text.endswith(")") and not re.search(r"[(),]", text[1:-1]):
        text = text[1:-1].strip()
    return text


def _braced(argument: str) -> str:
    return argument if argument.startswith("{") else "{" + argument + "}"


def _unspaced(number: str) -> str:
    return number.replace(" ", "")


def _read_value(text: str) -> Fraction | None:
    match = _VALUE.fullmatch(text)
    if match is None:
        return None
    sign = -1 if match.group("sign") == "-" else 1
    if match.group("whole") is not None:
        numerator, denominator = int(match.group("num")), int(match.group("den"))
        if not 0 < numerator < denominator:
            return None  # "2 3/2" or "2 0/5" is not how anyone writes a mixed number
        return sign * (int(match.group("whole")) + Fraction(numerator, denominator))
    if match.group("top") is not None:
        bottom = Fraction(_unspaced(match.group("bottom")))
        return sign * Fraction(match.group("top")) / bottom if bottom != 0 else None
    value = Fraction(match.group("plain"))
    if match.group("power") is not None:
        value *= Fraction(10) ** int(match.group("power"))
    return sign * value
