"""Prompt rendering: default formats per grader, few-shot turns, plain-text mode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sweep.config import ArithmeticDataset, FileDataset, PromptConfig
from sweep.data.problems import Problem, few_shot_examples, load_problems
from sweep.data.prompting import DEFAULT_SYSTEM, answer_format, prompt_problems, render_solution
from sweep.inference.grading.answers import extract_answer, numeric_key


def arith(**prompt: Any) -> ArithmeticDataset:
    return ArithmeticDataset(name="arith", source="arithmetic", count=4, prompt=PromptConfig(**prompt))


def math_dataset(tmp_path: Path, **prompt: Any) -> FileDataset:
    return FileDataset(name="m", source="math", path=tmp_path / "m.jsonl", prompt=PromptConfig(**prompt))


MATH_PROBLEM = Problem("m", "math-00000", "What is $1+1$?", "2", "math")


def test_default_numeric_chat_prompt_without_shots() -> None:
    dataset = arith()
    problems = load_problems(dataset)
    prompted = prompt_problems(problems, dataset)
    assert [p.problem for p in prompted] == problems
    first = prompted[0]
    assert first.prompt is None
    instruction = "Solve step by step. End with: The answer is <number>."
    assert first.messages == [
        {"role": "system", "content": DEFAULT_SYSTEM},
        {"role": "user", "content": f"{problems[0].question}\n{instruction}"},
    ]


def test_math_defaults_to_boxed(tmp_path: Path) -> None:
    dataset = math_dataset(tmp_path)
    assert answer_format(dataset) == "boxed"
    [prompted] = prompt_problems([MATH_PROBLEM], dataset)
    assert prompted.messages is not None
    assert prompted.messages[-1]["content"].endswith("Put your final answer within \\boxed{}.")


def test_few_shot_turns_end_with_the_answer_in_the_chosen_format() -> None:
    dataset = arith(few_shot=2, system="Be brief.")
    [prompted, *_] = prompt_problems(load_problems(dataset), dataset)
    messages = prompted.messages
    assert messages is not None
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert messages[0]["content"] == "Be brief."
    shots = few_shot_examples(dataset, 2)
    for shot, assistant in zip(shots, messages[2:5:2], strict=True):
        assert assistant["content"].endswith(f"The answer is {shot.answer}.")
        # The example answers must grade as correct under the dataset's own extraction.
        assert numeric_key(extract_answer(assistant["content"]) or "") == shot.answer


def test_explicit_formats_override_defaults(tmp_path: Path) -> None:
    boxed_arith = arith(answer_format="boxed", few_shot=1)
    [prompted, *_] = prompt_problems(load_problems(boxed_arith), boxed_arith)
    assert prompted.messages is not None
    assert "\\boxed{}" in prompted.messages[-1]["content"]
    shot_answer = few_shot_examples(boxed_arith, 1)[0].answer
    assert prompted.messages[-2]["content"].endswith(f"\\boxed{{{shot_answer}}}.")
    math_answer_is = math_dataset(tmp_path, answer_format="the_answer_is")
    [prompted] = prompt_problems([MATH_PROBLEM], math_answer_is)
    assert prompted.messages is not None
    assert prompted.messages[-1]["content"].endswith("End with: The answer is <answer>.")


def test_math_shots_keep_their_boxed_solutions(tmp_path: Path) -> None:
    dataset = math_dataset(tmp_path, few_shot=4)
    for shot in few_shot_examples(dataset, 4):
        solution = render_solution(shot, "boxed")
        assert solution == shot.solution and extract_answer(solution) == shot.answer


def test_plain_prompt_mode(tmp_path: Path) -> None:
    dataset = math_dataset(tmp_path, few_shot=1, chat_template=False, system="")
    [prompted] = prompt_problems([MATH_PROBLEM], dataset)
    assert prompted.messages is None
    shot = few_shot_examples(dataset, 1)[0]
    assert prompted.prompt == (
        "Solve step by step. Put your final answer within \\boxed{}.\n\n"
        f"Question: {shot.question}\nAnswer: {shot.solution}\n\n"
        "Question: What is $1+1$?\nAnswer:"
    )


def test_prompts_stay_short() -> None:
    dataset = arith(few_shot=2)
    for prompted in prompt_problems(load_problems(dataset), dataset):
        assert prompted.messages is not None
        assert sum(len(m["content"]) for m in prompted.messages) < 1500
