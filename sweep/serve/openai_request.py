"""The request side of the OpenAI-compatible routes: OpenAI's chat-completions body as a model,
and the refusals of what the sweep cannot honour, answered in OpenAI's error format.

A client's parameters are declared here so that one the sweep cannot honour (streaming, tools,
logprobs, n > 1 choices, ...) is a 400 naming it, never ignored; an unknown field is a 400 too.
What it leaves out: which configuration of the sweep answers (``sweep/serve/openai_choice.py``),
answering (``sweep/serve/openai_api.py``) and HTTP (``sweep/serve/app.py``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sweep.serve.solve import MAX_QUESTION_CHARS


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
