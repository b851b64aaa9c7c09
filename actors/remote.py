"""Thin Ray actor around ``VLLMEngine``: it adds only resources, restarts and concurrency;
and ``RemoteEngine``, the Engine protocol over an actor handle, for callers in other processes.

A dead engine exits the actor process with a failure code, so Ray restarts it
(``max_restarts``); callers see ``RayActorError`` and re-queue their shard. ``timeout_s`` is
each call's deadline (``actors.protocol``); the engine enforces it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable
from typing import Any, TypeVar

import ray

from actors.engine import VLLMEngine
from actors.protocol import DEFAULT_REQUEST_TIMEOUT_S, STUCK_AFTER_S, GenerationRequest, GenerationResult
from actors.step_loop import EngineFailure

log = logging.getLogger(__name__)
T = TypeVar("T")


@ray.remote
class EngineActor:
    def __init__(self, *, model: str, engine_kwargs: dict[str, Any], seed: int) -> None:
        self._engine = VLLMEngine(model=model, engine_kwargs=engine_kwargs, seed=seed)

    async def generate(
        self, requests: list[GenerationRequest], timeout_s: float | None = None
    ) -> list[GenerationResult]:
        return await _or_exit(self._engine.generate(requests, timeout_s=timeout_s))

    async def next_token_logprobs(
        self, prefixes: list[str], candidates: list[str], top_k: int = 20, timeout_s: float | None = None
    ) -> list[tuple[int, dict[str, float]]]:
        return await _or_exit(
            self._engine.next_token_logprobs(prefixes, candidates, top_k=top_k, timeout_s=timeout_s)
        )

    async def completion_logprobs(
        self, items: list[tuple[str, str]], timeout_s: float | None = None
    ) -> list[tuple[int, list[tuple[int, float]]]]:
        return await _or_exit(self._engine.completion_logprobs(items, timeout_s=timeout_s))

    async def step_rewards(
        self, texts: list[str], step_tag: str, timeout_s: float | None = None
    ) -> list[tuple[int, list[list[float]]]]:
        return await _or_exit(self._engine.step_rewards(texts, step_tag=step_tag, timeout_s=timeout_s))

    async def busy(self) -> dict[str, float]:
        """Engine busy time (for the busy-fraction benchmark)."""
        return self._engine.busy()

    async def ready(self) -> dict[str, Any]:
        """Returns once the engine is loaded; says where it runs."""
        return {"pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id()}


async def _or_exit(call: Awaitable[T]) -> T:
    """Await an engine call; a dead engine exits the process so Ray restarts the actor."""
    try:
        return await call
    except EngineFailure:
        log.exception("engine died; exiting so Ray restarts this actor")
        os._exit(1)


class EngineTimeout(TimeoutError):
    """An engine actor gave no answer by its call's deadline (plus a grace): it is stuck or gone."""


class RemoteEngine:
    """The ``Engine`` and ``RewardEngine`` protocols over an engine actor handle (used inside shard tasks).

    Each call carries its deadline, ``timeout_s``, to the engine, which answers by then (what is
    still running comes back failed). The wait here ends a little later, ``2 * STUCK_AFTER_S``
    past the deadline: an actor that never answers raises ``EngineTimeout`` instead of hanging.
    """

    def __init__(self, handle: Any, *, timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S) -> None:
        self._handle = handle
        self._timeout_s = timeout_s

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        return self._call(self._handle.generate, requests)

    def next_token_logprobs(
        self, prefixes: list[str], candidates: list[str]
    ) -> list[tuple[int, dict[str, float]]]:
        return self._call(self._handle.next_token_logprobs, prefixes, candidates)

    def completion_logprobs(self, items: list[tuple[str, str]]) -> list[tuple[int, list[tuple[int, float]]]]:
        return self._call(self._handle.completion_logprobs, items)

    def step_rewards(self, texts: list[str], *, step_tag: str) -> list[tuple[int, list[list[float]]]]:
        return self._call(self._handle.step_rewards, texts, step_tag)

    def _call(self, method: Any, *args: Any) -> Any:
        ref = method.remote(*args, timeout_s=self._timeout_s)
        wait_s = self._timeout_s + 2 * STUCK_AFTER_S
        try:
            return ray.get(ref, timeout=wait_s)
        except ray.exceptions.GetTimeoutError:
            ray.cancel(ref)
            raise EngineTimeout(
                f"engine actor {self._handle._actor_id.hex()} gave no answer in {wait_s:g} s "
                f"(request deadline {self._timeout_s:g} s)"
            ) from None
