"""Grading on completions as small models write them, and the key/grade agreement property.

The table rows are written after what SmolLM2-class models produce: verbose, repeated
conclusions, units and "$", "The answer is: 18.", boxed answers with \\text and \\dfrac,
degrees, percent, intervals, tuples, negative numbers, thousands separators, trailing periods,
echoed instructions and invented next questions. Each row is graded by the real grader
(the math rows by math-verify in the real process pool).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sweep.data.problems import Problem
from sweep.inference.grading.answers import extract_answer
from sweep.inference.grading.graders import GRADERS, Grade, grade_completions
from sweep.inference.grading.math_grader import MathGrader, shared_math_grader


@dataclass(frozen=True)
class Row:
    grader: str
    completion: str
    reference: str
    extracted: str | None
    correct: bool


# fmt: off
GSM8K = [
    Row("numeric", "Janet's ducks lay 16 eggs per day. She eats 3 for breakfast and bakes muffins with 4. "
        "So she has 16 - 3 - 4 = 9 eggs left. She sells them for $2 each, so she makes 9 * 2 = $18.\n"
        "The answer is: 18.", "18", "18", True),
    Row("numeric", "She sells 9 eggs for $2 each. The answer is 18 because she sells 9 eggs at $2 each.",
        "18", "18", True),
    Row("numeric", "The car costs $1,200 more than the bike, which costs $300.\n"
        "So the car costs $300 + $1,200 = $1,500.\nThe answer is $1,500.", "1500", "1,500", True),
    Row("numeric", "He buys 3 packs of 4 = <<3*4=12>>12 pens.\nThen 12 * 102.8333 = "
        "<<12*102.8333=1234>>1234\n#### 1,234", "1234", "1,234", True),
    Row("numeric", "Tom has 2 + 3 = 5 cats.\nThe answer is 5.\nThe answer is 5.\n"
        "The answer is 5.", "5", "5", True),
    Row("numeric", "Each basket has 6 apples and there are 3 baskets. 6 * 3 = 18.\n"
        "The answer is 18 apples.", "18", "18 apples", True),
    Row("numeric", "The temperature was 3 degrees and it dropped by 8 degrees. 3 - 8 = −5.\n"
        "The temperature at night is −5 degrees.", "-5", "-5", True),
    Row("numeric", "Mark works 10-12 hours a day, so on his longest day he works 12 hours.",
        "12", "12", True),
    Row("numeric", "Each pen costs $3.50.\nThe answer is $3.50.", "3.5", "3.50", True),
    Row("numeric", "The price went from 80 to 60, a drop of 20. 20 / 80 = 0.25, which is 25%.\n"
        "The answer is 25%.", "25", "25%", True),
    Row("numeric", "She has 3 red and 4 blue marbles. The answer is 3,4.", "34", "3,4", False),
    Row("numeric", "The recipe needs 1 1/4 cups and she doubles it, so she needs 2 1/2 cups of flour.",
        "2.5", "2 1/2", True),
    Row("numeric", "The pizza is cut into 2 halves. So each friend gets \\frac12 of the pizza.\n"
        "The answer is \\frac12.", "0.5", "\\frac12", True),
    Row("numeric", "There are 4 sections with 250 people each. 4 * 250 = 1\\,000.\n"
        "Thus there are 1\\,000 people.", "1000", "1000", True),
    Row("numeric", "Solve step by step. End with: The answer is <number>.\n"
        "Tom has 3 marbles and finds 4 more. 3 + 4 = 7 marbles.", "7", "7", True),
    Row("numeric", "He bakes 24 cookies and eats 12, so he has 24 - 12 = 12 cookies left.\n"
        "\nQuestion: Sara has 5 apples and buys 3 more. How many apples does she have?\n"
        "Answer: 5 + 3 = 8. The answer is 8.", "12", "12", True),
    Row("numeric", "She has 9 eggs and sells them for $2 each, so 9 + 2 = 11. Then 11 + 6 = 17.\n"
        "The answer is 17.", "18", "17", False),
    Row("numeric", "I don't know how to solve this problem.", "18", None, False),
    Row("numeric", "The movie starts at the beginning and lasts three quarters of an hour.\n"
        "The answer is 45 minutes.", "45", "45 minutes", True),
    Row("numeric", "6 * 7 = 42\n\n**Answer:** 42", "42", "42", True),
    Row("numeric", "He drives 60 miles per hour for 4 hours. 60 * 4 = 240.\n"
        "The final answer is 240.", "240", "240", True),
    Row("numeric", "3 + 4 = 7\nFinal Answer: The final answer is 7. I hope it is correct.", "7", "7", True),
    Row("numeric", "She earns 9 * 2 = 18 dollars. So the answer is \\boxed{18}.", "18", "18", True),
    Row("numeric", "The total is 9 * \\$2 = \\$18.\n\\boxed{\\$18}", "18", "\\$18", True),
    Row("numeric", "The walk takes 30 minutes, which is 0.5 hours.\nThe answer is 0.5 hours",
        "0.5", "0.5 hours", True),
    Row("numeric", "The answer is 6.\n\nThe answer is 6.\n\nThe answer is 6", "6", "6", True),
    Row("numeric", "The point where the lines meet is (2,3).", "23", "(2,3)", False),
    Row("numeric", "She had $20 and spent $24, so she owes 20 - 24 = -4 dollars.\n"
        "The answer is -4.", "-4", "-4", True),
    Row("numeric", "20 - 24 gives a negative number.\nThe answer is −4.", "-4", "-4", True),
    Row("numeric", "Solve step by step. Put your final answer within \\boxed{}.\n"
        "There are 8 rows of 7 chairs. 8 * 7 = 56. The total is 56.", "56", "56", True),
    Row("numeric", "1,000 * 1,000 = 1,000,000.\nThe answer is 1,000,000.", "1000000", "1,000,000", True),
    Row("numeric", "Each shirt is $4 and he buys 3, 4 * 3 = 12.\nThe answer is 12.00", "12", "12.00", True),
    Row("numeric", "Let x be the number. 2x + 3 = 17, so 2x = 14 and x = 7.", "7", "7", True),
    Row("numeric", "The answer is 18 (9 eggs × $2).", "18", "18", True),
    Row("numeric", "The answer is $18.00.", "18", "18.00", True),
    Row("numeric", "The answer is 18, since 3 * 6 = 18.", "18", "18", True),
    Row("numeric", "The answer is x = 12.", "12", "x = 12", True),
    Row("numeric", "The train travels 1,250 km in total and the answer is 1250 km.", "1250", "1250 km", True),
]

MATH = [
    Row("math", "We divide both sides by 4 to get $x = \\frac{3}{4}$.\n"
        "Therefore, the answer is $\\boxed{\\frac{3}{4}}$.", "\\frac{3}{4}", "\\frac{3}{4}", True),
    Row("math", "So the probability is $\\boxed{\\dfrac{3}{4}}$.", "\\frac{3}{4}", "\\dfrac{3}{4}", True),
    Row("math", "The probability is $\\boxed{0.75}$.", "\\frac{3}{4}", "0.75", True),
    Row("math", "The increase is $\\frac{5}{100}$ of the price, so the answer is $\\boxed{5\\%}$.",
        "5", "5\\%", True),
    Row("math", "The rate is $\\frac{5}{100} = \\boxed{0.05}$.", "5\\%", "0.05", False),
    Row("math", "There are $100 \\cdot 100 = \\boxed{10\\,000}$ such numbers.", "10000", "10\\,000", True),
    Row("math", "The lines meet at $\\boxed{(2,3)}$.", "(2,3)", "(2,3)", True),
    Row("math", "The lines meet at $\\boxed{(3,2)}$.", "(2,3)", "(3,2)", False),
    Row("math", "Adding, $1\\frac{1}{4} + 1\\frac{1}{4} = \\boxed{2\\frac{1}{2}}$.",
        "\\frac{5}{2}", "2\\frac{1}{2}", True),
    Row("math", "Half of one is $\\boxed{\\frac12}$.", "\\frac{1}{2}", "\\frac12", True),
    Row("math", "The angles of an equilateral triangle are equal, so each is $\\boxed{60^\\circ}$.",
        "60", "60^\\circ", True),
    Row("math", "Counting forward 100 days from Wednesday gives $\\boxed{\\text{Friday}}$.",
        "\\text{Friday}", "\\text{Friday}", True),
    Row("math", "Ann ends with $\\boxed{\\text{18 apples}}$.", "18", "\\text{18 apples}", True),
    Row("math", "Subtracting 3 from both sides, we get $x = 5$.\nThe final answer is $x = 5$.",
        "5", "x = 5", True),
    Row("math", "The solution set is $\\boxed{[2, 5)}$.", "[2,5)", "[2, 5)", True),
    Row("math", "So $x \\le 3$ and the answer is $\\boxed{(-\\infty, 3]}$.",
        "(-\\infty,3]", "(-\\infty, 3]", True),
    Row("math", "$\\sqrt{8} = \\sqrt{4 \\cdot 2} = \\boxed{2\\sqrt{2}}$", "\\sqrt{8}", "2\\sqrt{2}", True),
    Row("math", "The slope is $\\boxed{-\\frac{1}{2}}$.", "-\\frac12", "-\\frac{1}{2}", True),
    Row("math", "The roots are $x = 3$ and $x = 2$, so the answer is $\\boxed{3, 2}$.", "2, 3", "3, 2", True),
    Row("math", "The roots are $\\boxed{\\{1, 2\\}}$.", "1,2", "\\{1, 2\\}", True),
    Row("math", "Expanding, $(x+1)^2 = \\boxed{x^2 + 2x + 1}$.", "(x+1)^2", "x^2 + 2x + 1", True),
    Row("math", "The area is $\\boxed{\\pi}$ square units.", "\\pi", "\\pi", True),
    Row("math", "The angle is $\\boxed{\\frac{\\pi}{2}}$.", "\\frac{\\pi}{2}", "\\frac{\\pi}{2}", True),
    Row("math", "The vector is $\\boxed{\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}}$.",
        "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", True),
    Row("math", "So the answer is $\\boxed{5}$. Put your final answer within \\boxed{", "5", "5", True),
    Row("math", "Solve step by step. End with: The answer is <answer>.\n"
        "Halving gives $\\frac{1}{2}$.\nThe answer is $\\frac{1}{2}$.", "\\frac12", "\\frac{1}{2}", True),
    Row("math", "Put your final answer within \\boxed{}.\n$2 + 2 = 4$. The answer is $4$.", "4", "4", True),
    Row("math", "One third is about $\\boxed{0.333}$.", "\\frac{1}{3}", "0.333", False),
    Row("math", "The sum is $6 \\cdot 3 = \\boxed{18.}$", "18", "18.", True),
    Row("math", "The total is $\\boxed{1,234}$.", "1234", "1,234", True),
    Row("math", "The ticket costs $\\boxed{\\$18.50}$.", "18.50", "\\$18.50", True),
    Row("math", "We have $10-12 = \\boxed{-2}$.", "-2", "-2", True),
    Row("math", "Only choice C works, so the answer is $\\boxed{\\text{(C)}}$.",
        "\\text{(C)}", "\\text{(C)}", True),
    Row("math", "The domain is $\\boxed{x \\in [1,2]}$.", "[1,2]", "x \\in [1,2]", True),
    Row("math", "$\\sqrt{50} = \\boxed{5\\sqrt{2}}$", "\\sqrt{50}", "5\\sqrt{2}", True),
    Row("math", "The smallest value is $\\boxed{−3}$.", "-3", "-3", True),
    Row("math", "So $f(x) = \\boxed{x+1}$.", "1+x", "x+1", True),
    Row("math", "The length is \\boxed{2 1/2} inches.", "\\frac52", "2 1/2", True),
    Row("math", "There are $\\boxed{1\\,000\\,000}$ of them.", "10^6", "1\\,000\\,000", True),
    Row("math", "So the answer is $\\boxed{12}$.\nThe answer is 12.", "13", "12", False),
    Row("math", "Hence \\fbox{7}.", "7", "7", True),
    Row("math", "The answer is $\\frac{\\sqrt{3}}{2}$ because $\\sin 60^\\circ = \\frac{\\sqrt{3}}{2}$.",
        "\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt{3}}{2}", True),
    Row("math", "The number of ways is $\\binom{5}{2} = \\boxed{10}$. The answer is 10.", "10", "10", True),
    Row("math", "The final answer is $\\boxed{2}$. The final answer is $\\boxed{2}$. The final answer is "
        "$\\boxed{2}$", "2", "2", True),
    Row("math", "I think the area is $\\boxed{\\text{12 square units}}$.",
        "12", "\\text{12 square units}", True),
    Row("math", "The measure of the angle is $\\boxed{45^{\\circ}}$.", "45", "45^{\\circ}", True),
]
# fmt: on

TABLE = GSM8K + MATH


def test_the_table_covers_both_kinds() -> None:
    assert len(TABLE) >= 60
    assert len(GSM8K) >= 30 and len(MATH) >= 30


@pytest.fixture(scope="module")
def math_grader() -> Iterator[MathGrader]:
    grader = shared_math_grader()  # as GRADERS["math"] uses it: one pool start for this module
    yield grader
    grader.close()


@pytest.fixture(scope="module")
def table_grades(math_grader: MathGrader) -> list[Grade]:
    problems = [
        Problem(dataset="d", problem_id=f"p{i}", question="q", answer=row.reference, grader=row.grader)
        for i, row in enumerate(TABLE)
    ]
    return grade_completions([row.completion for row in TABLE], problems)


@pytest.mark.parametrize("index", range(len(TABLE)), ids=[f"{row.grader}-{i}" for i, row in enumerate(TABLE)])
def test_table_row(index: int, table_grades: list[Grade]) -> None:
    row, grade = TABLE[index], table_grades[index]
    assert extract_answer(row.completion) == row.extracted
    assert (grade.extracted, grade.correct) == (row.extracted, row.correct)
    assert (grade.key is None) == (row.extracted is None)


def test_table_keys_do_not_depend_on_the_reference(table_grades: list[Grade]) -> None:
    # /solve keys answers by grading them against an empty reference.
    for grader in ("numeric", "math"):
        rows = [(row, grade) for row, grade in zip(TABLE, table_grades, strict=True) if row.grader == grader]
        blind = GRADERS[grader]([row.extracted for row, _ in rows], [""] * len(rows))
        assert [g.key for g in blind] == [grade.key for _, grade in rows]
        assert not any(g.correct for g in blind)


# --- equal keys, equal grades ----------------------------------------------------------------


def assert_keys_agree(grades: Sequence[Grade]) -> None:
    by_key: dict[str, set[bool]] = defaultdict(set)
    for grade in grades:
        if grade.key is not None:
            by_key[grade.key].add(grade.correct)
    disagreeing = {key: outcomes for key, outcomes in by_key.items() if len(outcomes) > 1}
    answers = {g.key: [h.extracted for h in grades if h.key == g.key] for g in grades if g.key in disagreeing}
    assert not disagreeing, answers


# Values whose many renderings collide on keys; the renderings include the forms that used to
# share a key while grading differently (5% and 0.05, 10\,000 and 10000).
VALUES = [
    (0, 1),
    (5, 1),
    (1, 20),
    (5, 2),
    (1, 2),
    (3, 4),
    (-3, 4),
    (-4, 1),
    (18, 1),
    (1000, 1),
    (10000, 1),
    (23, 1),
]


def numeric_renderings(numerator: int, denominator: int) -> list[str]:
    sign = "-" if numerator < 0 else ""
    top = abs(numerator)
    forms = [
        f"{numerator}/{denominator}",
        f"{sign}\\frac{{{top}}}{{{denominator}}}",
        f"{sign}\\dfrac{{{top}}}{{{denominator}}}",
        f"\u2212{top}/{denominator}" if sign else f"{top}/{denominator}.",
    ]
    if top < 10 and denominator < 10:
        forms.append(f"{sign}\\frac{top}{denominator}")
    whole, rest = divmod(top, denominator)
    if whole and rest:
        forms += [f"{sign}{whole}\\frac{{{rest}}}{{{denominator}}}", f"{sign}{whole} {rest}/{denominator}"]
    if denominator == 1:
        forms += [
            f"{numerator}",
            f"{numerator:,}",
            f"{sign}$" + f"{top:,}",
            f"{numerator}.0",
            f"{numerator}%",
            f"{numerator}\\%",
            f"{numerator} apples",
            f"{numerator}.",
            f"x = {numerator}",
            f"{sign}{top:,}".replace(",", "\\,"),
            f"{sign}{top:,}".replace(",", "{,}"),
            f"{numerator}^\\circ",
        ]
    if 100 % denominator == 0 or denominator in (20, 25, 50):
        decimal = f"{numerator / denominator:.4f}".rstrip("0")
        forms += [decimal, decimal + "0", decimal.rstrip(".") + "\\%" if decimal.endswith(".") else decimal]
    return forms


CONFUSERS = ["(2,3)", "(3,2)", "2,3", "3,4", "23", "10-12", "-2", "x+1", "1+x", "x + 1", "2 3/2", "1,23",
             "\\text{Monday}", "monday", "Monday", "1e99999", "three", "(1,234)", "1,234", "[2, 5)", "[2,5)",
             "\\{2, 3\\}", "3, 2", "(x, y) = (2, 3)", "\\text{1/2}", "\\text{pi}", "\\pi", "0.333333",
             "\\frac{1}{3}", "\\text{18}", "\\text{18 apples}", "18 \\text{apples}"]  # fmt: skip

RENDERED = [form for value in VALUES for form in numeric_renderings(*value)]
ANSWERS = st.sampled_from(RENDERED + CONFUSERS)
FUZZ = st.text(alphabet="0123456789 ,./-+$%\\{}()fracdtx=", max_size=12)
REFERENCE_LIST = ["0", "5", "5\\%", "0.05", "\\frac{5}{2}", "1000", "10000", "-4", "23", "(2,3)", "2, 3",
                  "\\frac{1}{3}", "\\text{Monday}", "x+1", "[2,5)", "18", ""]  # fmt: skip
REFERENCES = st.sampled_from(REFERENCE_LIST)


@settings(max_examples=300, deadline=None)
@given(st.lists(ANSWERS | FUZZ, min_size=2, max_size=12), REFERENCES)
def test_numeric_equal_keys_grade_alike(answers: list[str], reference: str) -> None:
    grades = GRADERS["numeric"](answers, [reference] * len(answers))
    assert_keys_agree(grades)
    assert [g.key for g in grades] == [g.key for g in GRADERS["numeric"](answers, [""] * len(answers))]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(ANSWERS, min_size=4, max_size=10) | st.lists(ANSWERS | FUZZ, min_size=2, max_size=6), REFERENCES
)
def test_math_equal_keys_grade_alike(math_grader: MathGrader, answers: list[str], reference: str) -> None:
    grades = GRADERS["math"](answers, [reference] * len(answers))
    assert_keys_agree(grades)


def test_math_equal_keys_grade_alike_on_every_rendering(math_grader: MathGrader) -> None:
    # The exhaustive version of the property on the curated answers, for each reference.
    answers = RENDERED + CONFUSERS
    for reference in REFERENCE_LIST:
        assert_keys_agree(GRADERS["math"](answers, [reference] * len(answers)))
