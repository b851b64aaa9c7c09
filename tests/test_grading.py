"""Answer extraction, numeric keys and math-verify grading (real pool, real timeouts)."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sweep.data.problems import Problem
from sweep.inference.grading.answers import extract_answer, find_last_boxed, numeric_key, parse_number
from sweep.inference.grading.graders import GRADERS, Grade, grade_completions, grade_numeric
from sweep.inference.grading.math_grader import MathGrader, shared_math_grader


@pytest.fixture(scope="module")
def math_grader() -> Iterator[MathGrader]:
    # The process's shared grader, as GRADERS["math"] uses it: one pool start for this module.
    grader = shared_math_grader()
    yield grader
    grader.close()


def problem(answer: str, grader: str, problem_id: str = "p") -> Problem:
    return Problem(dataset="d", problem_id=problem_id, question="q", answer=answer, grader=grader)


# --- extraction ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so \\boxed{1} then \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("nested \\boxed{\\{\\frac{1}{2}, 3\\}} done", "\\{\\frac{1}{2}, 3\\}"),
        ("The answer is 7. But \\boxed{8}", "8"),  # boxed beats "the answer is"
        ("\\boxed 5 is it", "5"),
        ("The answer is 3. Wait, the answer is 4.", "4"),  # last occurrence
        ("THE ANSWER IS $12$.", "12"),
        ("The final answer is: **3.50**.", "3.50"),
        ("The answer is 42. Checking: 6 * 7 = 42, and 1 more is 43", "42"),
        ("The answer is $\\frac{3}{4}$.\n", "\\frac{3}{4}"),
        ("We add 3 and 4 to get 1,234 apples.", "1234"),  # last number, commas dropped
        ("-5 degrees", "-5"),
        ("nothing numeric here", None),
        ("\\boxed{unclosed", None),
        # The extraction classes of issue 10.
        ("So the point is (2,3).", "(2,3)"),  # a pair, not the number 23 (or just 3)
        ("He works 10-12 hours a day.", "12"),  # a range: the hyphen is not a minus sign
        ("10 - 12 = -2", "-2"),
        ("It drops to \u22125 degrees.", "-5"),  # Unicode minus in running text
        ("He owes -4 dollars", "-4"),
        ("So 4 * 250 = 1\\,000 people.", "1000"),
        ("She needs 2 1/2 cups of flour.", "2 1/2"),
        ("Each gets \\frac12 of it.", "\\frac12"),
        ("So x = 2\\frac{1}{2}", "2\\frac{1}{2}"),
        ("The answer is 18 because 3 * 6 = 18 and 1 more is 19", "18"),
        ("The answer is 18, since 3 * 6 = 18.", "18"),
        ("The answer is $\\frac{1}{2}$ as shown.", "\\frac{1}{2}"),
        # Instructions echoed from the prompt are not answers.
        ("End with: The answer is <number>.\nShe has 5 apples.", "5"),
        ("Put your final answer within \\boxed{}.\n3 + 4 = 7", "7"),
        ("The answer is within \\boxed{}. We get 9.", "9"),
        ("So 12 cookies.\nQuestion: Sara has 5 apples.\nAnswer: The answer is 5.", "12"),
        # Other announcements small models write.
        ("6 * 7 = 42\n\n**Answer:** 42", "42"),
        ("Let's check the answer: 5 + 3 = 8", "8"),  # "answer:" mid-sentence is not a marker
        ("#### 1,234", "1,234"),
        ("Final Answer: The final answer is $\\frac{1}{2}$. I hope it is correct.", "\\frac{1}{2}"),
        ("The answer is $5!$.", "5!"),
    ],
)
def test_extract_answer_priorities(text: str, expected: str | None) -> None:
    assert extract_answer(text) == expected


def test_find_last_boxed_skips_an_unclosed_last_box() -> None:
    assert find_last_boxed("\\boxed{2} and \\boxed{3") == "2"
    assert find_last_boxed("\\fbox{x^{2}}") == "x^{2}"
    assert find_last_boxed("\\boxed{5}, within \\boxed{}.") == "5"


# --- numeric ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("18", "18"), ("18.0", "18"), ("$18", "18"), ("\\$18.00", "18"), ("18.", "18"),
        ("18 apples", "18"), ("1,800", "1800"), ("50%", "50"), ("x = 5", "5"),
        ("-0.75", "-3/4"), ("-\\frac{3}{4}", "-3/4"), ("6/8", "3/4"), ("\\text{5 dollars}", "5"),
        ("3 or 4", "3 or 4"), ("x+1", "x+1"), ("  Seven  ", "seven"), ("1e99999", "1e99999"),
        # Commas only between proper thousands groups; anything else is not one number.
        ("(2,3)", "(2,3)"), ("3,4", "3,4"), ("1,23", "1,23"), ("1,234,567", "1234567"),
        ("12,345.5", "24691/2"),
        ("1\\,000", "1000"), ("10{,}000", "10000"), ("\u22125", "-5"), ("10-12", "10-12"),
        ("2\\frac{1}{2}", "5/2"), ("-2\\frac{1}{2}", "-5/2"), ("2 1/2", "5/2"), ("2 3/2", "2 3/2"),
        ("\\frac12", "1/2"), ("\\frac{1}2", "1/2"), ("\\dfrac{3}{4}", "3/4"), ("5\\%", "5"), ("0.05", "1/20"),
        ("30^\\circ", "30"), ("1.5 \\times 10^{3}", "1500"), ("5 km/h", "5"), ("(18)", "18"),
        (" " * 300 + "18", "18"),
    ],
)  # fmt: skip
def test_numeric_keys(text: str, key: str) -> None:
    assert numeric_key(text) == key


def renderings(value: Fraction) -> list[str]:
    """Ways a model may write ``value``; all must share one key."""
    sign = "-" if value < 0 else ""
    magnitude = abs(value)
    forms = [
        f"{value.numerator}/{value.denominator}",
        f"{sign}\\frac{{{magnitude.numerator}}}{{{magnitude.denominator}}}",
        f"{sign}\\dfrac{{{magnitude.numerator}}}{{{magnitude.denominator}}}",
    ]
    if value.denominator == 1:
        whole = value.numerator
        forms += [f"{whole}", f"{whole:,}", f"{sign}${abs(whole):,}", f"{whole}.0"]
        forms += [f"{value.numerator} apples", f"{value.numerator}."]
    denominator = value.denominator
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    if denominator == 1:  # a finite decimal
        places = 0
        while (magnitude * 10**places).denominator != 1:
            places += 1
        forms += [f"{float(value):.{places}f}", f"{float(value):.{places + 2}f}"]
    return forms


@given(
    st.fractions(max_denominator=1000).filter(lambda f: abs(f) < 10**9)
    | st.integers(-(10**9), 10**9).map(Fraction)
    | st.builds(lambda n, k: Fraction(n, 10**k), st.integers(-(10**6), 10**6), st.integers(0, 4))
)
def test_numeric_renderings_share_a_key(value: Fraction) -> None:
    for text in renderings(value):
        assert parse_number(text) == value, text
        assert numeric_key(text) == str(value), text
        extracted = extract_answer(f"Some work, 1 + 1 = 2.\nThe answer is {text}.")
        assert extracted is not None and numeric_key(extracted) == str(value), text


def test_numeric_grader_correctness() -> None:
    grades = grade_numeric(["$1,500.00", "1499", None, "x"], ["1500", "1500", "1500", "1500"])
    assert grades == [
        Grade(extracted="$1,500.00", key="1500", correct=True),
        Grade(extracted="1499", key="1499", correct=False),
        Grade(extracted=None, key=None, correct=False),
        Grade(extracted="x", key="x", correct=False),
    ]


# --- math ------------------------------------------------------------------------------------


def test_math_equivalences_share_keys(math_grader: MathGrader) -> None:
    cases = [
        ("\\frac{1}{2}", ["0.5", "1/2", "\\dfrac{1}{2}", "\\frac{2}{4}"], "1/2"),
        ("x+1", ["1+x", "x + 1"], "x + 1"),
        ("5\\sqrt{2}", ["\\sqrt{50}", "5\\sqrt2"], "5*sqrt(2)"),
        ("3", ["x = 3", "3.0"], "3"),
        ("-\\frac{3}{4}", ["-0.75"], "-3/4"),
    ]
    answers = [answer for _, equals, _ in cases for answer in equals]
    references = [reference for reference, equals, _ in cases for _ in equals]
    results = math_grader.grade(answers, references)
    expected = [(key, True) for _, equals, key in cases for _ in equals]
    assert results == expected


def test_math_wrong_answers_and_missing_answers(math_grader: MathGrader) -> None:
    answers = ["\\frac{1}{3}", "x-1", None, "\\text{Monday}"]
    results = math_grader.grade(answers, ["0.5", "x+1", "1", "\\text{Monday}"])
    assert [correct for _, correct in results] == [False, False, False, True]
    assert results[0][0] == "1/3" and results[2] == (None, False)


def test_math_keys_and_grades_come_from_one_parse(math_grader: MathGrader) -> None:
    # On main, 5\% and 0.05 shared the key "1/20" but graded differently against 5, and
    # 10\,000 was read as 10*0. A percent sign is now dropped, as in the numeric grader.
    answers = ["5\\%", "0.05", "5", "10\\,000", "10000", "10{,}000", "3, 2", "2, 3", "(3, 2)"]
    results = math_grader.grade(answers, ["5"] * 3 + ["10000"] * 3 + ["(2, 3)"] * 3)
    assert results == [
        ("5", True), ("1/20", False), ("5", True),
        ("10000", True), ("10000", True), ("10000", True),
        ("{2, 3}", True), ("{2, 3}", True), ("(3, 2)", False),
    ]  # fmt: skip


@pytest.mark.timeout(60)  # the guarantee under test is "never hangs"; fail loudly if it does
def test_pathological_answer_times_out_and_pool_recovers() -> None:
    # sympy tries to evaluate 2**(10**10) while reading the answer: only a kill stops it.
    # 2 s: far above a cold worker's ~0.2 s for the items behind it, even on a loaded machine.
    with MathGrader(timeout_s=2.0, max_workers=1) as grader:
        results = grader.grade(["2^{10^{10}}", "0.5", "x+1"], ["1", "\\frac{1}{2}", "1+x"])
        again = grader.grade(["\\frac{3}{4}"], ["0.75"])  # the killed worker was replaced
    # The timed-out item is wrong and casts no vote (its key was never computed); the items
    # queued behind it on the same single worker still grade.
    assert results == [(None, False), ("1/2", True), ("x + 1", True)]
    assert again == [("3/4", True)]


def test_grade_completions_dispatches_by_grader() -> None:
    problems = [
        problem("18", "numeric", "a"),
        problem("\\frac{1}{2}", "math", "b"),
        problem("18", "numeric", "c"),
        problem("x+1", "math", "d"),
    ]
    completions = [
        "3 * 6 = 18. The answer is 18.",
        "Half of it: $\\boxed{0.5}$",
        "I think it is 17",
        "no idea",
    ]
    grades = grade_completions(completions, problems)
    assert grades == [
        Grade(extracted="18", key="18", correct=True),
        Grade(extracted="0.5", key="1/2", correct=True),
        Grade(extracted="17", key="17", correct=False),
        Grade(extracted=None, key=None, correct=False),
    ]
    assert set(GRADERS) == {"numeric", "math"}


def test_grade_completions_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown grader 'nope'"):
        grade_completions(["1"], [problem("1", "nope")])
    with pytest.raises(ValueError, match="2 completions for 1 problems"):
        grade_completions(["1", "2"], [problem("1", "numeric")])
