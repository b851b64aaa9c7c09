"""The OpenAI-compatible routes of the Serve app: request and response models, and the mapping of
a chat-completions request to a ``Choice`` of the sweep (``sweep/serve/solve.py``), run on engines the
Serve app hands in. No HTTP here: ``sweep/serve/app.py`` routes to ``answer_chat`` and ``model_list``.

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
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sweep.config import SweepConfig
from sweep.inference.scorers import AGGREGATIONS
from sweep.inference.strategies import STRATEGIES
from sweep.inference.strategies.sampling import SamplingSettings
from sweep.serve.solve import (
    ORACLE_METHODS,
    Choice,
    NoChoice,
    QuestionTooLong,
    Solution,
    check_question_fits,
    choose,
    generation_cap,
    solve,
)

MAX_QUESTION_CHARS = 100_000  # as /solve: beyond any context; tokens are checked after
DEFAULT_SCORE = "last"  # the step-score aggregation of weighted and best_of_n when none is named
METHODS = {"majority": "majority_vote", "weighted": "weighted_vote", "best_of_n": "best_of_n"}


class OpenAIError(Exception):
    """An error a client caused (or must retry), answered in OpenAI's format."""

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int = 400,
        kind: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.message, self.param, self.code, self.status, self.kind = message, param, code, status, kind

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


# --- the request ---------------------------------------------------------------------------------


class TextPart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class ChatCompletionRequest(BaseModel):
    """OpenAI's chat-completions body, plus the sweep's fields that choose the strategy.

    OpenAI's parameters are declared so that a client setting one the sweep cannot honour gets a
    400 naming it (``refuse_unsupported``); an unknown field is a 400 too (``extra="forbid"``).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    model: str = Field(description="One of the sweep's policy models (GET /v1/models).")
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    n: int | None = Field(default=None, ge=1, description="Choices returned: 1 only (see `budget`).")
    stream: bool | None = None
    stream_options: dict[str, Any] | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    tools: list[Any] | None = None
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    functions: list[Any] | None = None
    function_call: Any = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    response_format: dict[str, Any] | None = None
    logit_bias: dict[str, float] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    store: bool | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    # The sweep's own fields.
    strategy: str | None = Field(default=None, description="A `strategies:` label or name; default greedy.")
    method: str | None = Field(default=None, description="majority, weighted or best_of_n (default majority).")
    score: Literal["last", "min", "prod", "mean"] | None = Field(
        default=None, description="Step-score aggregation read by weighted and best_of_n (default last)."
    )
    budget: int | None = Field(default=None, ge=1, description="Samples, or a tree search's budget.")
    reward_model: str | None = Field(default=None, description="A `reward_models:` entry of the sweep.")
    flops_budget: float | None = Field(
        default=None, gt=0, description="FLOPs per problem: the compute-optimal table chooses."
    )
    dataset: str | None = Field(default=None, description="Whose prompt (and table) to use.")


def parse_request(body: Any) -> ChatCompletionRequest:
    """The validated request, or an OpenAIError naming the first offending field."""
    try:
        request = ChatCompletionRequest.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        param = ".".join(str(part) for part in error["loc"]) or None
        if error["type"] == "extra_forbidden":
            message = f"Unrecognized request argument supplied: {param}"
        else:
            message = f"{param}: {error['msg']}" if param else error["msg"]
        raise OpenAIError(message, param=param, code="invalid_value") from None
    refuse_unsupported(request)
    return request


def refuse_unsupported(request: ChatCompletionRequest) -> None:
    """400 for every OpenAI parameter set to something the sweep's strategies cannot honour."""
    refusals: list[tuple[bool, str, str]] = [
        (bool(request.stream), "stream", "streaming is not supported: the answer is chosen after every sample is drawn"),
        (request.stream_options is not None, "stream_options", "streaming is not supported"),
        ((request.n or 1) != 1, "n", "one choice only; the number of samples drawn is the `budget` field"),
        (bool(request.tools) or bool(request.functions), "tools", "tools and function calling are not supported"),
        (request.tool_choice not in (None, "none"), "tool_choice", "tools are not supported"),
        (request.function_call not in (None, "none"), "function_call", "function calling is not supported"),
        (request.parallel_tool_calls is not None, "parallel_tool_calls", "tools are not supported"),
        (bool(request.logprobs), "logprobs", "logprobs are not supported"),
        (request.top_logprobs is not None, "top_logprobs", "logprobs are not supported"),
        (
            request.response_format is not None and request.response_format.get("type") != "text",
            "response_format",
            "only response_format {'type': 'text'} is supported",
        ),
        (bool(request.logit_bias), "logit_bias", "logit_bias is not supported"),
        (bool(request.presence_penalty), "presence_penalty", "penalties are not supported"),
        (bool(request.frequency_penalty), "frequency_penalty", "penalties are not supported"),
        (bool(request.stop), "stop", "stop sequences are the sweep's (its generation.stop)"),
        (request.seed is not None, "seed", "the sweep's seed governs sampling; omit seed"),
        (bool(request.store), "store", "completions are not stored"),
    ]
    for refused, param, message in refusals:
        if refused:
            raise OpenAIError(f"{param}: {message}", param=param, code="unsupported_parameter")
    *earlier, last = request.messages
    if last.role != "user":
        raise OpenAIError(
            "the last message must be the user's question", param=f"messages.{len(earlier)}.role"
        )
    if earlier:
        raise OpenAIError(
            "send one user message: it is the question, rendered with the dataset's prompt "
            "(system messages and earlier turns would be ignored)",
            param="messages.0",
            code="unsupported_parameter",
        )
    question = last.text()
    if not question.strip() or len(question) > MAX_QUESTION_CHARS:
        raise OpenAIError(
            f"the question must have 1 to {MAX_QUESTION_CHARS:,} characters", param="messages.0.content"
        )
    if request.flops_budget is not None:
        chosen = [f for f in ("strategy", "method", "score", "budget", "reward_model") if getattr(request, f) is not None]
        if chosen:
            raise OpenAIError(
                f"flops_budget lets the sweep's table choose; do not also pass {', '.join(chosen)}",
                param="flops_budget",
            )


def question_of(request: ChatCompletionRequest) -> str:
    return request.messages[-1].text()


# --- answering ------------------------------------------------------------------------------------


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
    try:
        check_question_fits(
            question_of(request), choice=choice, config=config, tokenizer=tokenizer, max_model_len=max_model_len
        )
    except QuestionTooLong as exc:
        raise OpenAIError(str(exc), param="messages", code="context_length_exceeded") from None
    engine, scorer, reward_params = engines(choice)
    counted = CountingEngine(engine)
    reward = CountingScorer(scorer) if scorer is not None else None
    try:
        solution = solve(
            question_of(request),
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


# --- the mapping to a Choice ---------------------------------------------------------------------


def resolve_choice(
    request: ChatCompletionRequest,
    *,
    config: SweepConfig,
    accuracy: Callable[[], pd.DataFrame],
    model_params: Callable[[str], int],
) -> Choice:
    """The configuration of the sweep that answers ``request``: chosen by the table for a
    ``flops_budget``, else built from the named strategy (greedy by default)."""
    models = [m.name for m in config.models]
    if request.model not in models:
        raise OpenAIError(
            f"The model {request.model!r} does not exist; the sweep's models: {', '.join(models)}",
            param="model",
            code="model_not_found",
            status=404,
        )
    datasets = [d.name for d in config.datasets]
    if request.dataset is not None and request.dataset not in datasets:
        raise OpenAIError(f"unknown dataset {request.dataset!r}; the sweep's: {', '.join(datasets)}", param="dataset")
    if request.flops_budget is not None:
        table = accuracy()
        try:
            return choose(
                table[table["model"] == request.model], flops_budget=request.flops_budget, dataset=request.dataset
            )
        except NoChoice as exc:
            raise OpenAIError(f"{exc} for {request.model}", param="flops_budget", code="no_configuration_fits") from None
    if request.dataset is None and len(datasets) > 1:
        raise OpenAIError(f"name the dataset whose prompt to use: one of {', '.join(datasets)}", param="dataset")
    dataset = request.dataset or datasets[0]
    entry = _strategy_entry(request, config)
    method = _method(request, entry)
    n = _budget(request, entry)
    measured = _measured(accuracy(), model=request.model, dataset=dataset, strategy=entry.label, method=method, n=n)
    return Choice(
        model=request.model,
        model_params=model_params(request.model),
        dataset=dataset,
        strategy=entry.label,
        method=method,
        n=n,
        accuracy=measured[0],
        flops_per_problem=measured[1],
    )


def _strategy_entry(request: ChatCompletionRequest, config: SweepConfig) -> Any:
    """The ``strategies:`` entry the request names (label first, then name), with its reward model."""
    wanted = request.strategy or "greedy"
    labels = [s.label for s in config.strategies]
    entries = [s for s in config.strategies if s.label == wanted] or [s for s in config.strategies if s.name == wanted]
    if not entries:
        if wanted not in STRATEGIES:
            known = ", ".join(sorted(STRATEGIES))
            raise OpenAIError(
                f"strategy {wanted!r} is not available (strategies: {known}); the sweep ran: {', '.join(labels)}",
                param="strategy",
            )
        raise OpenAIError(f"the sweep did not run {wanted!r}; it ran: {', '.join(labels)}", param="strategy")
    if request.reward_model is not None:
        names = [r.name for r in config.reward_models]
        if request.reward_model not in names:
            raise OpenAIError(
                f"unknown reward model {request.reward_model!r}; the sweep's: {', '.join(names) or 'none'}",
                param="reward_model",
            )
        matching = [s for s in entries if s.reward_model == request.reward_model]
        if not matching:
            used = sorted({str(s.reward_model) for s in entries})
            raise OpenAIError(
                f"the sweep ran {wanted} with reward model {', '.join(used)}, not {request.reward_model}",
                param="reward_model",
            )
        entries = matching
    if len(entries) > 1:
        raise OpenAIError(
            f"the sweep ran {wanted} as {', '.join(s.label for s in entries)}: name one label", param="strategy"
        )
    return entries[0]


def _method(request: ChatCompletionRequest, entry: Any) -> str:
    """The method name of the accuracy table (``majority_vote``, ``weighted_vote_last`` ...)."""
    if entry.name == "greedy":
        if request.method not in (None, "greedy") or request.score is not None:
            raise OpenAIError("greedy draws one sample: no method or score applies", param="method")
        return "greedy"
    wanted = request.method or "majority"
    base = METHODS.get(wanted, wanted)
    if base == "majority_vote":
        if request.score is not None:
            raise OpenAIError("majority voting reads no score; omit score", param="score")
        return base
    if base in ("weighted_vote", "best_of_n"):
        method = f"{base}_{request.score or DEFAULT_SCORE}"
    elif any(wanted == f"{b}_{a}" for b in ("weighted_vote", "best_of_n") for a in AGGREGATIONS) and not request.score:
        method = wanted
    else:
        known = ", ".join(METHODS) + " (with score: " + ", ".join(AGGREGATIONS) + ")"
        oracle = " (an oracle: it reads the reference answer)" if wanted in ORACLE_METHODS else ""
        raise OpenAIError(f"unknown method {wanted!r}{oracle}; methods: {known}", param="method")
    if entry.reward_model is None:
        raise OpenAIError(
            f"{method} reads a reward model's scores, and the sweep ran {entry.label} without one", param="method"
        )
    return method


def _budget(request: ChatCompletionRequest, entry: Any) -> int:
    """What ``Choice.n`` carries: for sampling, any sample count up to the sweep's n_max (``solve``
    draws that many); for every other strategy (greedy, a tree search's budget, adaptive's n_max)
    one of the entry's ``n_values``, since ``solve`` runs the entry as the sweep configured it."""
    values = entry.n_values
    if request.budget is None:
        return max(values)
    if isinstance(entry, SamplingSettings):
        if request.budget > max(values):
            raise OpenAIError(
                f"{entry.label} draws at most {max(values)} samples in this sweep, not {request.budget}",
                param="budget",
            )
    elif request.budget not in values:
        raise OpenAIError(
            f"{entry.label} ran with budget {', '.join(map(str, values))} in this sweep, not {request.budget}",
            param="budget",
        )
    return request.budget


def _measured(table: pd.DataFrame, **key: Any) -> tuple[float, float]:
    """The sweep's accuracy and FLOPs per problem of one configuration; NaN where it has no row."""
    if table.empty:
        return math.nan, math.nan
    rows = table
    for column, value in key.items():
        rows = rows[rows[column] == value]
    if rows.empty:
        return math.nan, math.nan
    return float(rows["accuracy"].iloc[0]), float(rows["flops_per_problem"].iloc[0])


def check_sampling(request: ChatCompletionRequest, *, settings: Any, config: SweepConfig, choice: Choice) -> None:
    """400 when the request asks for a temperature, top_p or token cap other than the chosen
    strategy's: the answer would not be the configuration the sweep measured."""
    for param in ("temperature", "top_p"):
        asked, used = getattr(request, param), getattr(settings, param)
        if asked is not None and not math.isclose(asked, used):
            raise OpenAIError(
                f"{choice.strategy} runs at {param} {used:g} (the sweep's setting); omit {param} or pass {used:g}",
                param=param,
            )
    cap = generation_cap(config, choice)
    for param in ("max_tokens", "max_completion_tokens"):
        asked = getattr(request, param)
        if asked is not None and asked < cap:
            raise OpenAIError(
                f"{choice.strategy} generates up to {cap} tokens (the sweep's setting); omit {param} or pass >= {cap}",
                param=param,
            )


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
