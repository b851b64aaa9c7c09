"""The policy engine: one vLLM engine driven by a continuous-batching step loop. No Ray here.

Requests from every concurrent ``generate`` call join the same running batch (vLLM's
``LLMEngine.add_request`` between ``step()`` calls, in one background thread), so several
shards in flight batch together and the engine never waits for a caller that is grading
or writing files. Measured on 2 CPU cores this loop kept 0.9x+ of a bare ``LLM.generate``,
where ``AsyncLLM`` in the same actor kept 0.88x (its asyncio front end competes for the
cores; see BENCHMARKS.md). Per-request failures come back as results with ``error`` set; a
dead engine raises ``EngineFailure`` so the actor wrapper can die and be restarted.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
import uuid
from concurrent.futures import Future
from typing import Any

from actors.protocol import Completion, GenerationRequest, GenerationResult

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


class VLLMEngine:
    """A vLLM engine with chat-template rendering, a step loop and per-request error capture."""

    def __init__(self, *, model: str, engine_kwargs: dict[str, Any], seed: int) -> None:
        from vllm import LLM
        from vllm.platforms import current_platform

        self._seed = seed
        # The CPU engine crashes on a per-request seed; only its engine-level seed works there.
        self._per_request_seed = not current_platform.is_cpu()
        self._llm = LLM(model=model, seed=seed, **engine_kwargs)
        self._engine = self._llm.llm_engine
        self._tokenizer = self._llm.get_tokenizer()
        self._has_template = bool(getattr(self._tokenizer, "chat_template", None))
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._waiting: dict[str, Future[Any]] = {}
        self._failure: EngineFailure | None = None
        self._busy = BusyClock()
        self._thread = threading.Thread(target=self._run_loop, name="vllm-step-loop", daemon=True)
        self._thread.start()

    def render(self, request: GenerationRequest) -> str:
        """The prompt text the model sees: chat template if it has one, else plain turns."""
        if request.prompt is not None:
            return request.prompt
        assert request.messages is not None, "a request carries messages or a prompt"
        if self._has_template:
            return self._tokenizer.apply_chat_template(
                request.messages, tokenize=False, add_generation_prompt=True
            )
        return "\n\n".join(m["content"] for m in request.messages) + "\n\n"

    async def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        """Serve a batch; all its requests join the running batch at once, alongside other calls'."""
        return list(await asyncio.gather(*(self._generate_one(r) for r in requests)))

    async def _generate_one(self, request: GenerationRequest) -> GenerationResult:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        start = time.perf_counter()
        prompt = self.render(request)
        seed = request.seed if (self._per_request_seed and request.seed is not None) else self._seed
        try:
            params = SamplingParams(
                **request.sampling,
                seed=request.seed if self._per_request_seed else None,
                logprobs=0,  # the sampled token's logprob only: gives cumulative_logprob
                output_kind=RequestOutputKind.FINAL_ONLY,
            )
            final = await asyncio.wrap_future(self._submit(prompt, params))
        except EngineFailure:
            raise
        except Exception as exc:  # a per-request failure: report it as a row, never drop it
            log.warning("request %s failed: %s", request.request_id, exc)
            return GenerationResult(
                request_id=request.request_id,
                prompt=prompt,
                prompt_tokens=0,
                completions=[],
                latency_s=time.perf_counter() - start,
                seed=seed,
                error=f"{type(exc).__name__}: {exc}",
            )
        return GenerationResult(
            request_id=request.request_id,
            prompt=prompt,
            prompt_tokens=len(final.prompt_token_ids or []),
            completions=[
                Completion(
                    text=c.text,
                    tokens=len(c.token_ids),
                    finish_reason=c.finish_reason,
                    cumulative_logprob=c.cumulative_logprob,
                    stop_reason=c.stop_reason,
                )
                for c in final.outputs
            ],
            latency_s=time.perf_counter() - start,
            seed=seed,
            cached_tokens=int(final.num_cached_tokens or 0),
        )

    async def next_token_logprobs(
        self, prefixes: list[str], candidates: list[str], *, top_k: int = 20
    ) -> list[tuple[int, dict[str, float]]]:
        """For each prefix: its token count and the log-probability of each candidate as the next token.

        This is how a causal-LM process reward model is read (Math-Shepherd style): the prefix
        ends at a step tag and the candidates are the "good"/"bad" tokens. A candidate outside
        the top ``top_k`` is reported as ``-inf``. Shared prefixes hit vLLM's prefix cache.
        """
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        ids = {c: self._tokenizer.encode(c, add_special_tokens=False)[0] for c in candidates}
        params = SamplingParams(
            max_tokens=1, temperature=0.0, logprobs=top_k, output_kind=RequestOutputKind.FINAL_ONLY
        )
        outputs = await asyncio.gather(*(asyncio.wrap_future(self._submit(p, params)) for p in prefixes))
        results = []
        for output in outputs:
            top = output.outputs[0].logprobs[0]  # token id -> Logprob, for the first generated position
            results.append(
                (
                    len(output.prompt_token_ids or []),
                    {c: (top[i].logprob if i in top else float("-inf")) for c, i in ids.items()},
                )
            )
        return results

    async def completion_logprobs(
        self, items: list[tuple[str, str]]
    ) -> list[tuple[int, list[tuple[int, float]]]]:
        """For each (prompt, completion): the tokens read, and each completion token's
        (end offset in the completion, log-probability under this model).

        The text is tokenised here, with offsets, and sent as token ids, so the offsets match
        exactly what the model read. One forward pass each (``prompt_logprobs``, one new token).
        """
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        params = SamplingParams(
            max_tokens=1, temperature=0.0, prompt_logprobs=0, output_kind=RequestOutputKind.FINAL_ONLY
        )
        encoded = [self._tokenizer(p + c, return_offsets_mapping=True) for p, c in items]
        outputs = await asyncio.gather(
            *(
                asyncio.wrap_future(self._submit({"prompt_token_ids": e["input_ids"]}, params))
                for e in encoded
            )
        )
        results = []
        for (prompt, _), e, output in zip(items, encoded, outputs, strict=True):
            ids, logprobs = e["input_ids"], output.prompt_logprobs or []
            tokens = [
                (end - len(prompt), logprobs[i][ids[i]].logprob)
                for i, (begin, end) in enumerate(e["offset_mapping"])
                if i > 0 and begin >= len(prompt) and end > begin and logprobs[i] is not None
            ]
            results.append((len(ids), tokens))
        return results

    async def step_rewards(self, texts: list[str], *, step_tag: str) -> list[tuple[int, list[list[float]]]]:
        """For each text: its token count and the reward head's class probabilities at each
        ``step_tag`` token, in order (one row per step; row[1] is P(step correct) for a PRM).

        This is how a process reward model with a classification head is read (Qwen2.5-Math-PRM,
        ``runner="pooling"``): one forward pass per text, step-tag pooling, softmax over classes.
        The tag is sent per request because vLLM's default tag id is Qwen's ``<extra_0>`` (151651),
        whatever the tokenizer. Token-level pooling skips the prefix cache, so every token is read.
        """
        from vllm import PoolingParams

        tag_ids = self._tokenizer.encode(step_tag, add_special_tokens=False)
        if len(tag_ids) != 1:
            raise ValueError(
                f"step tag {step_tag!r} is {len(tag_ids)} tokens for this reward model; it must be one"
            )
        params = PoolingParams(task="token_classify", step_tag_id=tag_ids[0])
        outputs = await asyncio.gather(*(asyncio.wrap_future(self._submit(t, params)) for t in texts))
        # data: (tag occurrence, class) -> probability
        return [(len(o.prompt_token_ids or []), o.outputs.data.tolist()) for o in outputs]

    def busy(self) -> dict[str, float]:
        """Time spent inside engine steps, and the span from the first step to the last."""
        return self._busy.snapshot()

    def _submit(self, prompt: str | dict[str, Any], params: Any) -> Future[Any]:
        if self._failure is not None:
            raise self._failure
        future: Future[Any] = Future()
        self._inbox.put((uuid.uuid4().hex, prompt, params, future))
        return future

    def _run_loop(self) -> None:
        """Admit new requests between steps; resolve each request when it finishes."""
        while True:
            if not self._engine.has_unfinished_requests():
                if not self._admit(self._inbox.get()):  # idle: block until work arrives
                    return
            while True:
                try:
                    item = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if not self._admit(item):
                    return
            began = time.perf_counter()
            try:
                outputs = self._engine.step()
            except Exception as exc:  # the engine is gone: fail everything, now and later
                self._fail_all(exc)
                return
            self._busy.add(began, time.perf_counter())
            for output in outputs:
                if output.finished:
                    self._waiting.pop(output.request_id).set_result(output)

    def _admit(self, item: Any) -> bool:
        if item is _STOP:
            return False
        request_id, prompt, params, future = item
        try:
            inputs = prompt if isinstance(prompt, dict) else {"prompt": prompt}
            self._engine.add_request(request_id, inputs, params)
        except Exception as exc:  # e.g. a prompt longer than the context: this request only
            future.set_exception(exc)
            return True
        self._waiting[request_id] = future
        return True

    def _fail_all(self, exc: Exception) -> None:
        log.error("engine step failed: %s", exc)
        self._failure = EngineFailure(f"{type(exc).__name__}: {exc}")
        for future in self._waiting.values():
            future.set_exception(self._failure)
        self._waiting.clear()
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP:
                item[3].set_exception(self._failure)

    def shutdown(self) -> None:
        self._inbox.put(_STOP)
        self._thread.join(timeout=30)
        self._engine = None
        self._llm = None
