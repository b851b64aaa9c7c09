"""The arithmetic generator's levels: every answer right, level 0 (one-digit addition) pinned."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from sweep.config import ArithmeticDataset, load_config
from sweep.data.arithmetic import LEVELS, THEMES, generate_items
from sweep.data.problems import Problem, few_shot_examples, load_problems
from sweep.data.prompting import render_solution
from sweep.inference.grading.graders import grade_completions

ROOT = Path(__file__).resolve().parents[1]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32), index=st.integers(0, 10_000))
def test_level_0_is_one_addition_of_one_digit_amounts(seed: int, index: int) -> None:
    item = generate_items(count=index + 1, levels=[0], seed=seed)[index]
    (step,) = item.steps
    assert step.op == "add"
    assert 2 <= item.start <= 9 and 1 <= step.operand <= 9
    assert item.answer == item.start + step.operand  # computed here, not by the generator's fold
    assert f" {item.start} " in item.question and f" {step.operand} " in item.question
    assert f"{item.start} + {step.operand} = {item.answer}." in item.solution


def test_level_0_questions_read_right() -> None:
    """Counted nouns agree with their numbers: a one-digit operand may be 1 ("1 more coin")."""
    items = generate_items(count=200, levels=[0], seed=0)
    assert any(item.steps[0].operand == 1 for item in items)
    for item in items:
        if item.steps[0].operand == 1:
            assert any(f" 1 more {theme.one}." in item.question for theme in THEMES)
        assert item.question.endswith(f"How many {item.theme.noun} does {item.name} have now?")


def test_level_0_known_item() -> None:
    # Pinned like level 2 in test_problems.py: a generator change would change the demo's problems.
    item = generate_items(count=1, levels=[0], seed=0)[0]
    assert (item.question, item.answer) == (
        "Mia has 7 stickers. She buys 5 more stickers. How many stickers does Mia have now?",
        12,
    )
    assert item.solution == "Start with 7 stickers.\nAdd 5: 7 + 5 = 12.\nMia has 12 stickers now."


def test_level_0_dataset_loads_with_stable_ids() -> None:
    dataset = ArithmeticDataset(name="a", source="arithmetic", count=40, levels=[0], seed=0)
    problems = load_problems(dataset)
    assert problems[0].problem_id == "arith-L0-0000" and problems[0].answer == "12"
    assert all(p.level == 0 and p.grader == "numeric" for p in problems)


def test_every_level_grades_its_worked_solution_right() -> None:
    """Each item's own worked solution, ended in either answer format the prompt can ask for,
    grades correct with the numeric grader; a wrong reference does not."""
    items = [item for level in LEVELS for item in generate_items(count=20, levels=[level], seed=3)]
    problems = [
        Problem("a", f"p{i}", item.question, str(item.answer), "numeric", solution=item.solution)
        for i, item in enumerate(items)
    ]
    off_by_one = [replace(p, answer=str(int(p.answer) + 1)) for p in problems]
    for fmt in ("the_answer_is", "boxed"):
        completions = [render_solution(p, fmt) for p in problems]
        assert all(g.correct for g in grade_completions(completions, problems))
        assert not any(g.correct for g in grade_completions(completions, off_by_one))


def test_level_0_few_shot_examples_are_level_0_and_apart_from_the_problems() -> None:
    dataset = ArithmeticDataset(name="a", source="arithmetic", count=40, levels=[0], seed=0)
    shots = few_shot_examples(dataset, 2)
    questions = {p.question for p in load_problems(dataset)}
    assert [p.level for p in shots] == [0, 0]
    assert not {p.question for p in shots} & questions


def test_demo_config_is_level_0() -> None:
    config = load_config(ROOT / "configs" / "demo.yaml")
    (dataset,) = config.datasets
    assert isinstance(dataset, ArithmeticDataset) and dataset.levels == [0]
    assert [s.name for s in config.strategies] == ["greedy", "sampling", "adaptive", "rebase", "mcts"]
