"""The policy engine: one vLLM engine, the requests it serves and how their outputs are read. No Ray here.

Every call renders its prompts, builds vLLM's sampling (or pooling) parameters, hands the
requests to the engine's step loop (``actors.step_loop``: continuous batching in one
background thread, shared by every concurrent call) and reads the outputs back. Measured on
2 CPU cores this kept 0.9x+ of a bare ``LLM.generate``, where ``AsyncLLM`` in the same actor
kept 0.88x (its asyncio front end competes for the cores; see BENCHMARKS.md).

Failures, from the smallest up:
- a request vLLM refuses (a prompt longer than the context, bad parameters) or that is still
  running at its deadline (aborted in vLLM) fails alone, at once: ``generate`` returns its
  result with ``error`` set; the scoring reads raise ``RequestFailed`` for their batch;
- a stuck step loop or a step that raises means the engine is gone: ``EngineFailure``
  (``actors.step_loop``), so the actor wrapper can die and be restarted.

Left out: the step loop itself (admission, deadlines, stepping only while a request runs) in
``actors.step_loop``; Ray (``actors.remote``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

from actors.protocol import (
    DEFAULT_REQUEST_TIMEOUT_S,
    Completion,
    DeadlineExceeded,
    GenerationRequest,
    GenerationResult,
    RequestFailed,
)
from actors.step_loop import EngineFailure, StepLoop

log = logging.getLogger(__name__)


def render_prompt(tokenizer: Any, messages: list[dict[str, str]] | None, prompt: str | None) -> str:
    """The prompt text a model sees: ``prompt`` as given, else ``messages`` through the tokenizer's
    chat template when it has one, else as plain turns. ``/solve`` counts a question's tokens with
    the same rule, so what it measures is what the engine reads."""
    if prompt is not None:
        return prompt
    assert messages is not None, "a request carries messages or a prompt"
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return "\n\n".join(m["content"] for m in messages) + "\n\n"


class VLLMEngine:
    """A vLLM engine with chat-template rendering, a step loop and per-request error capture.

    Every call takes ``timeout_s``, the deadline of its requests (``request_timeout_s`` when
    None), counted from the call.
    """

    def __init__(
        self,
        *,
        model: str,
        engine_kwargs: dict[str, Any],
        seed: int,
        request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
    ) -> None:
        from vllm import LLM
        from vllm.platforms import current_platform

        self._seed = seed
        self._timeout_s = request_timeout_s
        # The CPU engine crashes on a per-request seed; only its engine-level seed works there.
        self._per_request_seed = not current_platform.is_cpu()
        self._llm = LLM(model=model, seed=seed, **engine_kwargs)
        self._engine = self._llm.llm_engine
        self._tokenizer = self._llm.get_tokenizer()
        self._loop = StepLoop(self._engine)

    def render(self, request: GenerationRequest) -> str:
        """The prompt text the model sees (``render_prompt``)."""
        return render_prompt(self._tokenizer, request.messages, request.prompt)

    async def generate(
        self, requests: list[GenerationRequest], *, timeout_s: float | None = None
    ) -> list[GenerationResult]:
        """Serve a batch; all its requests join the running batch at once, alongside other calls'."""
        timeout_s = self._timeout(timeout_s)
        deadline = time.monotonic() + timeout_s
        return list(await asyncio.gather(*(self._generate_one(r, deadline, timeout_s) for r in requests)))

    async def _generate_one(
        self, request: GenerationRequest, deadline: float, timeout_s: float
    ) -> GenerationResult:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        start = time.perf_counter()
        seed = request.seed if (self._per_request_seed and request.seed is not None) else self._seed
        prompt = ""
        try:
            prompt = self.render(request)
            params = SamplingParams(
                **request.sampling,
                seed=request.seed if self._per_request_seed else None,
                logprobs=0,  # the sampled token's logprob only: gives cumulative_logprob
                output_kind=RequestOutputKind.FINAL_ONLY,
            )
            final = await self._loop.result(self._loop.submit(prompt, params, deadline, timeout_s), deadline)
            if any(c.finish_reason == "error" for c in final.outputs):
                raise RequestFailed("the engine ended the request with an error")
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
        self, prefixes: list[str], candidates: list[str], *, top_k: int = 20, timeout_s: float | None = None
    ) -> list[tuple[int, dict[str, float]]]:
        """For each prefix: its token count and the log-probability of each candidate as the next token.

        This is how a causal-LM process reward model is read (Math-Shepherd style): the prefix
        ends at a step tag and the candidates are the "good"/"bad" tokens. A candidate outside
        the top ``top_k`` is reported as ``-inf``. Shared prefixes hit vLLM's prefix cache.
        """
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        ids = {}
        for c in candidates:
            encoded = self._tokenizer.encode(c, add_special_tokens=False)
            if not encoded:
                raise RequestFailed(f"candidate {c!r} is no token for this model")
            ids[c] = encoded[0]
        params = SamplingParams(
            max_tokens=1, temperature=0.0, logprobs=top_k, output_kind=RequestOutputKind.FINAL_ONLY
        )
        outputs = await self._read(prefixes, params, timeout_s)
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
        self, items: list[tuple[str, str]], *, timeout_s: float | None = None
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
        outputs = await self._read([{"prompt_token_ids": e["input_ids"]} for e in encoded], params, timeout_s)
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

    async def step_rewards(
        self, texts: list[str], *, step_tag: str, timeout_s: float | None = None
    ) -> list[tuple[int, list[list[float]]]]:
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
        outputs = await self._read(texts, params, timeout_s)
        # data: (tag occurrence, class) -> probability
        return [(len(o.prompt_token_ids or []), o.outputs.data.tolist()) for o in outputs]

    def busy(self) -> dict[str, float]:
        """Time spent inside engine steps, and the span from the first step to the last."""
        return self._loop.busy()

    def _timeout(self, timeout_s: float | None) -> float:
        timeout_s = self._timeout_s if timeout_s is None else timeout_s
        if not (isinstance(timeout_s, int | float) and math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError(f"timeout_s must be a positive number of seconds, not {timeout_s!r}")
        return float(timeout_s)

    async def _read(self, prompts: list[Any], params: Any, timeout_s: float | None) -> list[Any]:
        """One scoring read per prompt, all at once. Their numbers have no error slot, so a
        read that fails fails the batch, once every read has ended (none is left running)."""
        timeout_s = self._timeout(timeout_s)
        deadline = time.monotonic() + timeout_s
        futures = [self._loop.submit(p, params, deadline, timeout_s) for p in prompts]
        outcomes = await asyncio.gather(
            *(self._loop.result(f, deadline) for f in futures), return_exceptions=True
        )
        failed = [(i, o) for i, o in enumerate(outcomes) if isinstance(o, BaseException)]
        for _, outcome in failed:
            if isinstance(outcome, EngineFailure | asyncio.CancelledError):
                raise outcome
        if failed:
            index, first = failed[0]
            kind = DeadlineExceeded if isinstance(first, DeadlineExceeded) else RequestFailed
            raise kind(
                f"{len(failed)} of {len(prompts)} reads failed; read {index}: {type(first).__name__}: {first}"
            )
        return outcomes

    def shutdown(self) -> None:
        self._loop.stop()
        self._engine = None
        self._llm = None

