"""The engine interface shared by strategies, engine classes and actors.

Plain dataclasses only (no vLLM, no Ray), so they pickle cheaply across Ray and the
strategies can be tested against any object with the same ``generate`` method.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


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
