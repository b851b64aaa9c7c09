"""The engine interface shared by strategies, engine classes and actors.

Plain dataclasses and exceptions only (no vLLM, no Ray), so they pickle cheaply across Ray
and the strategies can be tested against any object with the same ``generate`` method.

Every engine call has a deadline (``timeout_s``, default ``DEFAULT_REQUEST_TIMEOUT_S``): the
engine aborts what is still running then and reports it as failed. A request the engine
cannot serve (too long for the context, bad parameters, past its deadline) fails alone:
``generate`` returns its result with ``error`` set; the scoring calls, which return numbers,
raise ``RequestFailed`` for the batch. Either way the engine goes on serving.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

DEFAULT_REQUEST_TIMEOUT_S = 1800.0  # an engine call's deadline when the caller gives none
# An engine that has not resolved a request this long after its deadline has a stuck step
# loop and fails (its actor restarts); a caller waits a deadline plus twice this at most.
STUCK_AFTER_S = 60.0


class RequestFailed(RuntimeError):
    """A request the engine refused or gave up on; the engine itself is fine."""


class DeadlineExceeded(RequestFailed):
    """A request still running at its deadline: aborted in the engine."""


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt; ``n`` completions are drawn with ``sampling`` (vLLM SamplingParams kwargs)."""

    request_id: str
    messages: list[dict[str, str]] | None = None  # chat messages, rendered with the model's template
    prompt: str | None = None  # raw text, used as is (continuations in tree search)
    sampling: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None  # applied per request where the platform supports it


@dataclass(frozen=True)
class Completion:
    text: str
    tokens: int
    finish_reason: str | None
    cumulative_logprob: float | None
    stop_reason: str | int | None = None  # the stop string (or token id) that ended it; None: EOS or length


@dataclass(frozen=True)
class GenerationResult:
    request_id: str
    prompt: str
    prompt_tokens: int
    completions: list[Completion]
    latency_s: float
    seed: int | None  # the seed that actually governed sampling (request or engine level)
    error: str | None = None  # a per-request failure; the completions are then empty
    cached_tokens: int = 0  # prompt tokens served from the prefix cache (not re-encoded)


class Engine(Protocol):
    """What a strategy needs from an engine: a batch of requests in, one result per request out."""

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]: ...
