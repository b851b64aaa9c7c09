"""The OpenAI-compatible routes of the Serve app: answering a chat-completions request with the
``Choice`` of the sweep it maps to (``sweep/serve/solve.py``), run on engines the Serve app hands
in, and the response objects. No HTTP here: ``sweep/serve/app.py`` routes to ``answer_chat`` and
``model_list``; the request model and its refusals are ``sweep/serve/openai_request.py``, the
mapping to a ``Choice`` is ``sweep/serve/openai_choice.py``.

- ``GET /v1/models``: the sweep's policy models, in OpenAI's list format.
- ``POST /v1/chat/completions``: OpenAI's request body; the user's last (and only) message is the
  question, rendered with the dataset's prompt as ``/solve`` renders it. Extra body fields choose
  how it is answered: ``strategy`` (a label or name of the sweep's ``strategies:``), ``method``
  (majority, weighted, best_of_n, with ``score`` the step-score aggregation), ``budget`` (samples,
  or a tree search's budget), ``reward_model``, ``dataset``; or ``flops_budget`` alone, to let the
  sweep's compute-optimal table choose among the requested model's configurations.

The message content is the answer the strategy chose (extracted from the winning sample by the
dataset's answer format, as ``/solve`` returns it), not the sample's reasoning. ``usage`` counts
every token the policy engine read and wrote for the answer, the reward model's tokens and the
FLOPs beside them. What the sweep cannot honour (streaming, tools, logprobs, n > 1 choices, a
temperature other than the strategy's, ...) is refused with a 400 in OpenAI's error format,
never ignored.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from sweep.config import SweepConfig
from sweep.serve.openai_choice import check_sampling, resolve_choice
from sweep.serve.openai_request import OpenAIError, parse_request, question_of
from sweep.serve.solve import Choice, QuestionTooLong, Solution, check_question_fits, prompt_question, solve


def answer_chat(
    body: Any,
    *,
    config: SweepConfig,
    accuracy: Callable[[], pd.DataFrame],
    model_params: Callable[[str], int],
    context: Callable[[Choice], tuple[Any, int | None]],
    engines: Callable[[Choice], tuple[Any, Any, int]],
) -> dict[str, Any]:
    """The ``chat.completion`` answering ``body``; an OpenAIError for what the client must change.

    ``context(choice)``: the policy's tokenizer and max_model_len, to refuse an over-long question
    before any engine is touched; ``engines(choice)``: the policy engine, the scorer (or None) and
    the reward model's parameter count, as ``/solve`` gets them.
    """
    from actors.protocol import RequestFailed
    from actors.remote import EngineTimeout

    request = parse_request(body)
    choice = resolve_choice(request, config=config, accuracy=accuracy, model_params=model_params)
    entry = next(s for s in config.strategies if s.label == choice.strategy)
    check_sampling(request, settings=entry, config=config, choice=choice)
    tokenizer, max_model_len = context(choice)
    prompted = prompt_question(question_of(request), choice=choice, config=config)
    try:
        check_question_fits(
            prompted, choice=choice, config=config, tokenizer=tokenizer, max_model_len=max_model_len
        )
    except QuestionTooLong as exc:
        raise OpenAIError(str(exc), param="messages", code="context_length_exceeded") from None
    engine, scorer, reward_params = engines(choice)
    counted = CountingEngine(engine)
    reward = CountingScorer(scorer) if scorer is not None else None
    try:
        solution = solve(
            prompted,
            choice=choice,
            config=config,
            engine=counted,
            scorer=reward,
            reward_params=reward_params,
        )
    except RequestFailed as exc:  # refused by the engine; it goes on serving
        raise OpenAIError(f"the engine refused the question: {exc}", param="messages") from None
    except EngineTimeout as exc:
        raise OpenAIError(str(exc), code="timeout", status=504, kind="server_error") from None
    spent = Spent(
        prompt_tokens=counted.prompt_tokens,
        cached_tokens=counted.cached_tokens,
        completion_tokens=counted.completion_tokens,
        reward_tokens=reward.reward_tokens if reward is not None else 0,
    )
    return chat_completion(solution, spent=spent)


# --- counting what an answer spends ----------------------------------------------------------------


class CountingEngine:
    """An engine that counts the tokens of every generation request it passes on."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self.prompt_tokens = 0
        self.cached_tokens = 0
        self.completion_tokens = 0

    def generate(self, requests: list[Any]) -> list[Any]:
        results = self._engine.generate(requests)
        for result in results:
            self.prompt_tokens += result.prompt_tokens
            self.cached_tokens += result.cached_tokens
            self.completion_tokens += sum(c.tokens for c in result.completions)
        return results

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


class CountingScorer:
    """A scorer that counts the reward-model tokens of everything it scores."""

    def __init__(self, scorer: Any) -> None:
        self._scorer = scorer
        self.reward_tokens = 0

    def score(self, items: Sequence[tuple[str, str]]) -> list[Any]:
        scored = self._scorer.score(items)
        self.reward_tokens += sum(s.reward_tokens for s in scored)
        return scored

    def score_last(self, items: Sequence[tuple[str, list[str]]]) -> list[tuple[float, int]]:
        scored = self._scorer.score_last(items)
        self.reward_tokens += sum(tokens for _, tokens in scored)
        return scored

    def __getattr__(self, name: str) -> Any:
        return getattr(self._scorer, name)


# --- the responses ---------------------------------------------------------------------------------


def model_list(config: SweepConfig, *, created: int) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {"id": m.name, "object": "model", "created": created, "owned_by": "scaling-sweep"} for m in config.models
        ],
    }


@dataclass(frozen=True)
class Spent:
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    reward_tokens: int


def chat_completion(solution: Solution, *, spent: Spent) -> dict[str, Any]:
    """OpenAI's ``chat.completion`` object, with the configuration that answered in ``sweep``."""
    choice = solution.choice
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": choice.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": solution.answer or "", "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": spent.prompt_tokens,
            "completion_tokens": spent.completion_tokens,
            "total_tokens": spent.prompt_tokens + spent.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": spent.cached_tokens},
            "reward_tokens": spent.reward_tokens,
            "policy_flops": solution.policy_flops,
            "reward_flops": solution.reward_flops,
            "flops": solution.flops,
        },
        "sweep": {
            "answer": solution.answer,
            "dataset": choice.dataset,
            "strategy": choice.strategy,
            "method": choice.method,
            "n": choice.n,
            "samples": solution.samples,
            "accuracy": _number(choice.accuracy),
            "flops_per_problem": _number(choice.flops_per_problem),
        },
    }


def _number(value: float) -> float | None:
    return value if math.isfinite(value) else None
