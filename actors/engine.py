"""The policy engine: one vLLM ``AsyncLLM`` behind a batch ``generate`` call. No Ray here.

Every request of every concurrent call goes into the same continuous-batching engine, so
several shards in flight batch together and the engine never waits for a caller that is
grading or writing files. Per-request failures come back as results with ``error`` set;
a dead engine raises ``EngineFailure`` so the actor wrapper can die and be restarted.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from actors.protocol import Completion, GenerationRequest, GenerationResult

log = logging.getLogger(__name__)


class EngineFailure(RuntimeError):
    """The engine itself is dead; nothing more can be served by this process."""


class VLLMEngine:
    """A vLLM AsyncLLM with chat-template rendering and per-request error capture."""

    def __init__(self, *, model: str, engine_kwargs: dict[str, Any], seed: int) -> None:
        from vllm import AsyncEngineArgs
        from vllm.platforms import current_platform
        from vllm.v1.engine.async_llm import AsyncLLM

        self._seed = seed
        # The CPU engine crashes on a per-request seed; only its engine-level seed works there.
        self._per_request_seed = not current_platform.is_cpu()
        args = AsyncEngineArgs(model=model, seed=seed, **engine_kwargs)
        self._engine = AsyncLLM.from_engine_args(args)
        self._tokenizer = self._engine.get_tokenizer()
        self._has_template = bool(getattr(self._tokenizer, "chat_template", None))

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
        """Serve a batch; all its requests are in flight at once, alongside other calls'."""
        return list(await asyncio.gather(*(self._generate_one(r) for r in requests)))

    async def _generate_one(self, request: GenerationRequest) -> GenerationResult:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind
        from vllm.v1.engine.exceptions import EngineDeadError

        start = time.perf_counter()
        prompt = self.render(request)
        seed = request.seed if (self._per_request_seed and request.seed is not None) else self._seed
        try:
            params = SamplingParams(
                **request.sampling,
                seed=request.seed if self._per_request_seed else None,
                logprobs=0,  # the sampled token's logprob only: gives cumulative_logprob
                output_kind=RequestOutputKind.FINAL_ONLY,  # needed for n > 1 in AsyncLLM
            )
            final = None
            request_id = f"{request.request_id}-{uuid.uuid4().hex[:8]}"
            async for output in self._engine.generate({"prompt": prompt}, params, request_id):
                final = output
            assert final is not None and final.finished
        except EngineDeadError as exc:
            raise EngineFailure(str(exc)) from exc
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
                )
                for c in final.outputs
            ],
            latency_s=time.perf_counter() - start,
            seed=seed,
        )

    def shutdown(self) -> None:
        self._engine.shutdown()
