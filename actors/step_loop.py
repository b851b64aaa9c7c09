"""The step loop: one background thread that feeds a vLLM ``LLMEngine`` and steps it. No Ray here.

Requests from every concurrent caller join the same running batch (``add_request`` between
``step()`` calls), so several shards in flight batch together and the engine never waits for
a caller that is grading or writing files. Each request is a future, resolved when vLLM
finishes it, failed at once when vLLM refuses it, and aborted in vLLM at its deadline.

The loop steps only while a request is running. With nothing running, ``step()`` of a
multiprocess engine (vLLM's default) waits on its engine core's output queue, which stays
empty: every later request would wait behind it forever. A loop that has not resolved a
request ``STUCK_AFTER_S`` past its deadline is stuck, and a step that raises means the engine
is gone: both fail every request, now and later, with ``EngineFailure``.

Left out: what a request is made of (prompts, sampling and pooling parameters) and how its
output is read; that is ``actors.engine.VLLMEngine``, which owns one loop.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
import uuid
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from typing import Any

from actors.protocol import STUCK_AFTER_S, DeadlineExceeded, RequestFailed

log = logging.getLogger(__name__)


class EngineFailure(RuntimeError):
    """The engine itself is dead; nothing more can be served by this process."""


_STOP = object()


class BusyClock:
    """Seconds the engine spent stepping, over the span from its first step to its last."""

    def __init__(self) -> None:
        self.busy = 0.0
        self.first: float | None = None
        self.last: float | None = None
        self.steps = 0

    def add(self, began: float, ended: float) -> None:
        self.first = began if self.first is None else self.first
        self.last = ended
        self.busy += ended - began
        self.steps += 1

    def snapshot(self) -> dict[str, float]:
        span = (self.last - self.first) if self.first is not None and self.last is not None else 0.0
        return {"busy_s": self.busy, "span_s": span, "steps": float(self.steps), "first": self.first or 0.0}


@dataclass(frozen=True)
class _Request:
    """One request on its way into vLLM, or running there."""

    request_id: str
    prompt: str | dict[str, Any]
    params: Any  # SamplingParams | PoolingParams
    future: Future[Any]
    deadline: float  # time.monotonic()
    timeout_s: float


class StepLoop:
    """The thread that admits requests into ``engine`` (a vLLM ``LLMEngine``) and steps it."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._running: dict[str, _Request] = {}  # admitted to vLLM, not finished; loop thread only
        self._failure: EngineFailure | None = None
        self._failing = threading.Lock()  # a request is queued before the failure, or refused after it
        self._busy = BusyClock()
        self._thread = threading.Thread(target=self._run_loop, name="vllm-step-loop", daemon=True)
        self._thread.start()

    def submit(
        self, prompt: str | dict[str, Any], params: Any, deadline: float, timeout_s: float
    ) -> Future[Any]:
        """Queue one request for the next admission; its future resolves to vLLM's final output."""
        future: Future[Any] = Future()
        with self._failing:
            if self._failure is not None:
                raise self._failure
            self._inbox.put(_Request(uuid.uuid4().hex, prompt, params, future, deadline, timeout_s))
        return future

    async def result(self, future: Future[Any], deadline: float) -> Any:
        """A request's output. The loop resolves every request by its deadline; one still open
        ``STUCK_AFTER_S`` later means the loop is stuck inside vLLM: the engine has failed."""
        wait = max(deadline - time.monotonic(), 0.0) + STUCK_AFTER_S
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout=wait)
        except TimeoutError:
            failure = EngineFailure(
                f"the step loop resolved no request for {STUCK_AFTER_S:g} s past its deadline"
            )
            with self._failing:
                self._failure = self._failure or failure
            raise self._failure from None

    def busy(self) -> dict[str, float]:
        """Time spent inside engine steps, and the span from the first step to the last."""
        return self._busy.snapshot()

    def stop(self) -> None:
        """End the thread once what it has admitted so far is handed over; drop the engine."""
        self._inbox.put(_STOP)
        self._thread.join(timeout=30)
        self._engine = None

    def _run_loop(self) -> None:
        try:
            self._serve()
        except Exception as exc:  # the engine is gone (or this loop has a bug): fail all, now and later
            self._fail_all(exc)

    def _serve(self) -> None:
        """Admit new requests between steps, abort those past their deadline or whose caller
        has gone, resolve each request when it finishes. Step only while one is running."""
        while True:
            if not self._running and not self._admit(self._inbox.get()):  # idle: block until work arrives
                return
            while True:
                try:
                    item = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if not self._admit(item):
                    return
            self._abort_ended(time.monotonic())
            if not self._running:
                continue  # everything admitted was refused or has ended: wait for work, never step idle
            began = time.perf_counter()
            outputs = self._engine.step()
            self._busy.add(began, time.perf_counter())
            for output in outputs:
                if output.finished and (request := self._running.pop(output.request_id, None)):
                    _settle(request.future, result=output)

    def _admit(self, item: Any) -> bool:
        if item is _STOP:
            return False
        request: _Request = item
        if request.future.done():  # its caller has gone already
            return True
        try:
            inputs = request.prompt if isinstance(request.prompt, dict) else {"prompt": request.prompt}
            self._engine.add_request(request.request_id, inputs, request.params)
        except Exception as exc:  # e.g. a prompt longer than the context: this request only
            _settle(request.future, error=RequestFailed(f"{type(exc).__name__}: {exc}"))
            return True
        self._running[request.request_id] = request
        return True

    def _abort_ended(self, now: float) -> None:
        """Abort in vLLM every running request past its deadline, or whose caller cancelled it."""
        ended = [r for r in self._running.values() if r.future.done() or now >= r.deadline]
        if not ended:
            return
        self._engine.abort_request([r.request_id for r in ended])
        for request in ended:
            del self._running[request.request_id]
            late = DeadlineExceeded(f"still running at its deadline ({request.timeout_s:g} s); aborted")
            _settle(request.future, error=late)
        log.warning("aborted %d requests past their deadline or cancelled", len(ended))

    def _fail_all(self, exc: Exception) -> None:
        log.error("engine step failed: %s", exc)
        with self._failing:
            self._failure = self._failure or EngineFailure(f"{type(exc).__name__}: {exc}")
        for request in self._running.values():
            _settle(request.future, error=self._failure)
        self._running.clear()
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP:
                _settle(item.future, error=self._failure)


def _settle(future: Future[Any], *, result: Any = None, error: BaseException | None = None) -> None:
    """Resolve a request's future, unless its caller has cancelled it meanwhile."""
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except InvalidStateError:
        pass
