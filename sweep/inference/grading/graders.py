"""Grading completions: extract the final answer, give it a vote key, and check it.

Graders are registered by name in ``GRADERS`` (``Problem.grader`` names one). Each grader
takes a batch of extracted answers and reference answers and returns one ``Grade`` each,
so a grader with setup cost (the math-verify process pool) pays it once per batch.

- ``numeric``: exact rationals via ``fractions.Fraction``; in-process, no timeout needed.
- ``math``: math-verify in a process pool with per-item timeouts
  (``sweep.inference.grading.math_grader``).

Both derive an answer's key and its grade from one parse of it (``read_number``,
``read_math_answer``), so within one problem two answers with the same key always get the
same grade, and a vote never counts an answer that is both right and wrong. Keys never
depend on the reference: ``/solve`` groups votes by grading against an empty one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from sweep.data.problems import Problem
from sweep.inference.grading.answers import extract_answer, read_number
from sweep.inference.grading.math_grader import shared_math_grader

__all__ = ["GRADERS", "Grade", "Grader", "extract_answer", "grade_completions", "grade_math", "grade_numeric"]


@dataclass(frozen=True)
class Grade:
    extracted: str | None  # the answer text pulled out of the completion
    key: str | None  # canonical answer: equivalent answers share a key so they vote; None: no vote
    correct: bool  # a function of the key and the reference: equal keys, equal grades


class Grader(Protocol):
    def __call__(self, answers: Sequence[str | None], references: Sequence[str]) -> list[Grade]: ...


def grade_numeric(answers: Sequence[str | None], references: Sequence[str]) -> list[Grade]:
    """Exact numeric comparison; an answer that is not a single number is wrong."""
    expected = {reference: read_number(reference)[0] for reference in set(references)}
    grades = []
    for answer, reference in zip(answers, references, strict=True):
        if answer is None:
            grades.append(Grade(extracted=None, key=None, correct=False))
            continue
        value, key = read_number(answer)
        correct = value is not None and value == expected[reference]
        grades.append(Grade(extracted=answer, key=key, correct=correct))
    return grades


def grade_math(answers: Sequence[str | None], references: Sequence[str]) -> list[Grade]:
    """Symbolic comparison with math-verify in the process's shared pool."""
    results = shared_math_grader().grade(answers, references)
    return [
        Grade(extracted=answer, key=key, correct=correct)
        for answer, (key, correct) in zip(answers, results, strict=True)
    ]


GRADERS: dict[str, Grader] = {"numeric": grade_numeric, "math": grade_math}


def grade_completions(
    completions: Sequence[str],
    problems: Sequence[Problem],
    *,
    graders: Mapping[str, Grader] = GRADERS,
) -> list[Grade]:
    """Grade ``completions[i]`` against ``problems[i]``; one batch per grader."""
    if len(completions) != len(problems):
        raise ValueError(f"{len(completions)} completions for {len(problems)} problems")
    answers = [extract_answer(c) for c in completions]
    return _grade(answers, [p.answer for p in problems], problems, graders)


def answer_keys(
    answers: Sequence[str | None], problems: Sequence[Problem], *, graders: Mapping[str, Grader] = GRADERS
) -> list[str | None]:
    """The vote key of ``answers[i]`` under ``problems[i]``'s grader, graded blind (an empty
    reference): a key never depends on the reference, so a vote can be counted before grading."""
    return [g.key for g in _grade(answers, [""] * len(answers), problems, graders)]


def _grade(
    answers: Sequence[str | None],
    references: Sequence[str],
    problems: Sequence[Problem],
    graders: Mapping[str, Grader],
) -> list[Grade]:
    """``answers[i]`` against ``references[i]`` under ``problems[i]``'s grader; one batch per grader."""
    by_grader: dict[str, list[int]] = defaultdict(list)
    for index, problem in enumerate(problems):
        if problem.grader not in graders:
            raise ValueError(
                f"problem {problem.problem_id}: unknown grader {problem.grader!r}; known: {sorted(graders)}"
            )
        by_grader[problem.grader].append(index)
    grades: list[Grade | None] = [None] * len(problems)
    for name, indices in by_grader.items():
        batch = graders[name]([answers[i] for i in indices], [references[i] for i in indices])
        for index, grade in zip(indices, batch, strict=True):
            grades[index] = grade
    assert all(grade is not None for grade in grades)
    return [grade for grade in grades if grade is not None]
