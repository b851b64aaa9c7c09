"""Prompts: turn problems into chat messages (or plain text) with optional few-shot examples.

Defaults follow the dataset's grader: numeric datasets (GSM8K, arithmetic) ask for
"The answer is <number>.", math datasets for ``\\boxed{}``. Prompts are deliberately
short: the smallest model in a sweep is a 135M model running on a CPU. Tokenisation and
chat-template rendering belong to the engine; this module only builds the messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sweep.data.problems import Problem, few_shot_examples
from sweep.data.settings import DatasetConfig

AnswerFormat = Literal["boxed", "the_answer_is"]

DEFAULT_SYSTEM = "You are a helpful math assistant."

INSTRUCTIONS: dict[AnswerFormat, dict[str, str]] = {
    "the_answer_is": {
        "numeric": "Solve step by step. End with: The answer is <number>.",
        "math": "Solve step by step. End with: The answer is <answer>.",
    },
    "boxed": {
        "numeric": "Solve step by step. Put your final answer within \\boxed{}.",
        "math": "Solve step by step. Put your final answer within \\boxed{}.",
    },
}


@dataclass(frozen=True)
class PromptedProblem:
    problem: Problem
    messages: list[dict[str, str]] | None  # chat messages (system, few-shot user/assistant pairs, user)
    prompt: str | None  # plain text prompt when PromptConfig.chat_template is False


def answer_format(dataset: DatasetConfig) -> AnswerFormat:
    """The configured answer format, else the grader's default."""
    if dataset.prompt.answer_format is not None:
        return dataset.prompt.answer_format
    return "the_answer_is" if dataset.grader == "numeric" else "boxed"


def render_answer(answer: str, fmt: AnswerFormat) -> str:
    """The final-answer sentence in ``fmt``."""
    return f"The answer is \\boxed{{{answer}}}." if fmt == "boxed" else f"The answer is {answer}."


def render_solution(example: Problem, fmt: AnswerFormat) -> str:
    """A worked solution that ends with the answer written in ``fmt``."""
    solution = (example.solution or "").strip()
    if fmt == "boxed" and "\\boxed" in solution:
        return solution  # MATH solutions already end in \boxed{...}
    final = render_answer(example.answer, fmt)
    return f"{solution}\n{final}" if solution else final


def prompt_problems(problems: list[Problem], dataset: DatasetConfig) -> list[PromptedProblem]:
    """One prompt per problem, in order, as chat messages or plain text per the dataset's config."""
    config = dataset.prompt
    fmt = answer_format(dataset)
    instruction = INSTRUCTIONS[fmt][dataset.grader]
    system = DEFAULT_SYSTEM if config.system is None else config.system
    shots = few_shot_examples(dataset, config.few_shot)
    examples = [(shot.question, render_solution(shot, fmt)) for shot in shots]
    if config.chat_template:
        return [
            PromptedProblem(problem, _messages(problem.question, system, instruction, examples), None)
            for problem in problems
        ]
    return [
        PromptedProblem(problem, None, _plain_prompt(problem.question, system, instruction, examples))
        for problem in problems
    ]


def _messages(
    question: str, system: str, instruction: str, examples: list[tuple[str, str]]
) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system}] if system else []
    for shot_question, shot_solution in examples:
        messages.append({"role": "user", "content": f"{shot_question}\n{instruction}"})
        messages.append({"role": "assistant", "content": shot_solution})
    messages.append({"role": "user", "content": f"{question}\n{instruction}"})
    return messages


def _plain_prompt(question: str, system: str, instruction: str, examples: list[tuple[str, str]]) -> str:
    header = f"{system} {instruction}" if system else instruction
    blocks = [header]
    blocks += [f"Question: {shot_q}\nAnswer: {shot_solution}" for shot_q, shot_solution in examples]
    blocks.append(f"Question: {question}\nAnswer:")
    return "\n\n".join(blocks)
