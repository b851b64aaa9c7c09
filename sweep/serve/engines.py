"""The engines one Serve replica answers with: the chosen model's engine actors, found live by
name or started on first use, its strategy's scorer, and the policy's tokenizer and context
length, read without an engine.

What it leaves out: HTTP (an engine that cannot start is ``NoEngine``; ``sweep/serve/app.py``
answers 503), choosing the configuration and running it (``sweep/serve/solve.py``), and how
engine actors are placed and started (``actors/pool.py``).
"""

from __future__ import annotations

import threading
from typing import Any

import ray

from sweep.config import SweepConfig
from sweep.serve.solve import Choice

ENGINE_START_TIMEOUT_S = 900.0  # loading a model; a GPU node may first have to come up
SOLVE_TIMEOUT_S = 600.0  # deadline of one /solve engine call: a question, not a shard


class NoEngine(RuntimeError):
    """The chosen model's engine cannot be placed, or did not start in time (a client may retry)."""


class Engines:
    """The engine pools and tokenizers one replica has started or found, keyed by what they serve.

    The sweep config is handed in with each call: a replica reads a new one when a new run lands.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # pools: each is started (or found) once
        self._pools: dict[str, Any] = {}
        # Tokenizers, each loaded once, under a lock of their own: a length check never waits
        # behind another model's engine start.
        self._tokenizer_lock = threading.Lock()
        self._tokenizers: dict[str, Any] = {}

    def started(self) -> list[str]:
        """The actor prefixes of the engines this replica holds."""
        return sorted(self._pools)

    def policy_spec(self, model: str, *, config: SweepConfig) -> Any:
        """The resolved engine spec of the sweep's policy ``model``."""
        from actors.spec import resolve_engine_spec

        entry = next(m for m in config.models if m.name == model)
        return resolve_engine_spec(entry, cluster_has_gpus=_cluster_has_gpus(), seed=config.seed)

    def context(self, choice: Choice, *, config: SweepConfig) -> tuple[Any, int | None]:
        """The chosen model's tokenizer and context length, without an engine."""
        spec = self.policy_spec(choice.model, config=config)
        return self.tokenizer(spec.path), max_model_len(spec)

    def tokenizer(self, path: str) -> Any:
        """The model's tokenizer, loaded once per replica by transformers (no engine)."""
        with self._tokenizer_lock:
            if path not in self._tokenizers:
                from transformers import AutoTokenizer

                self._tokenizers[path] = AutoTokenizer.from_pretrained(path)
            return self._tokenizers[path]

    def for_choice(self, choice: Choice, *, config: SweepConfig) -> tuple[Any, Any, int]:
        """The chosen model's policy engine, its strategy's scorer (None without a reward model)
        and the parameter count of the model that scores."""
        from actors.spec import resolve_engine_spec
        from sweep.inference.scorers.registry import build_scorer

        policy = self._engine(self.policy_spec(choice.model, config=config))
        entry = next(s for s in config.strategies if s.label == choice.strategy)
        if entry.reward_model is None:
            return policy, None, choice.model_params
        prm = next(r for r in config.reward_models if r.name == entry.reward_model)
        if prm.reads_policy:
            reward, params = policy, choice.model_params
        else:
            spec = resolve_engine_spec(prm, cluster_has_gpus=_cluster_has_gpus(), seed=config.seed)
            reward, params = self._engine(spec), spec.params
        return policy, build_scorer(prm.scorer_settings(), engine=reward), params

    def _engine(self, spec: Any) -> Any:
        from actors.pool import start_engines
        from actors.remote import RemoteEngine

        with self._lock:
            if spec.actor_prefix not in self._pools:
                pool = start_engines(spec, max_restarts=3)  # finds live actors by name, else starts them
                if pool.unplaceable is not None:
                    raise NoEngine(pool.unplaceable)
                try:
                    ray.get([h.ready.remote() for h in pool.handles], timeout=ENGINE_START_TIMEOUT_S)
                except (ray.exceptions.GetTimeoutError, ray.exceptions.RayActorError) as exc:
                    pool.shutdown()
                    raise NoEngine(f"the engine of {spec.model} did not start: {exc}") from None
                self._pools[spec.actor_prefix] = pool
            return RemoteEngine(self._pools[spec.actor_prefix].handles[0], timeout_s=SOLVE_TIMEOUT_S)


def max_model_len(spec: Any) -> int | None:
    """The context the engine will have: its ``max_model_len`` (the CPU default included), capped by
    what the model's config.json declares; None when neither is known (then vLLM decides)."""
    from actors.models import model_context_length

    lengths = []
    if isinstance(spec.engine_kwargs.get("max_model_len"), int):
        lengths.append(spec.engine_kwargs["max_model_len"])
    declared = model_context_length(spec.path, spec.path)
    if declared is not None:
        lengths.append(declared[0])
    return min(lengths) if lengths else None


def _cluster_has_gpus() -> bool:
    return ray.cluster_resources().get("GPU", 0) > 0
