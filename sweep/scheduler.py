"""Keep every engine busy: bounded in-flight shards per replica, results handled as they finish.

Each shard runs as a Ray task that calls its model's engine actor, grades, and writes its
file. The driver keeps at most ``max_inflight_per_engine`` shards queued on each replica
(``ray.wait`` backpressure), so an engine always has the next shard's requests waiting
while the previous shard is graded and written. A failed shard (dead actor, lost node) is
re-queued up to ``max_attempts`` times; retries are safe because every write is idempotent.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import ray
from tqdm import tqdm

from actors.protocol import GenerationRequest, GenerationResult
from sweep.engines import EnginePool
from sweep.grid import Shard
from sweep.runner import RunContext, ShardReport, run_shard

log = logging.getLogger(__name__)


class RemoteEngine:
    """The ``Engine`` and ``RewardEngine`` protocols over an engine actor handle (used inside shard tasks)."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        return ray.get(self._handle.generate.remote(requests))

    def next_token_logprobs(
        self, prefixes: list[str], candidates: list[str]
    ) -> list[tuple[int, dict[str, float]]]:
        return ray.get(self._handle.next_token_logprobs.remote(prefixes, candidates))

    def completion_logprobs(self, items: list[tuple[str, str]]) -> list[tuple[int, list[tuple[int, float]]]]:
        return ray.get(self._handle.completion_logprobs.remote(items))

    def step_rewards(self, texts: list[str], *, step_tag: str) -> list[tuple[int, list[list[float]]]]:
        return ray.get(self._handle.step_rewards.remote(texts, step_tag))


@ray.remote(num_cpus=0, max_retries=0)
def run_shard_task(shard: Shard, handle: Any, context: RunContext, reward_handle: Any = None) -> ShardReport:
    logging.basicConfig(level=logging.INFO)
    reward_engine = RemoteEngine(reward_handle) if reward_handle is not None else None
    return run_shard(shard, engine=RemoteEngine(handle), context=context, reward_engine=reward_engine)


@dataclass
class SweepStats:
    completed: list[ShardReport] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # shard id -> last error
    dead_engines: dict[str, str] = field(default_factory=dict)  # (reward) model -> why its engine never started
    retries: int = 0
    seconds: float = 0.0

    @property
    def completion_tokens(self) -> int:
        return sum(r.completion_tokens for r in self.completed)


def run_shards(
    shards: list[Shard],
    *,
    pools: dict[str, EnginePool],
    reward_pools: dict[str, EnginePool] | None = None,
    context: RunContext,
    max_inflight_per_engine: int,
    max_attempts: int,
    show_progress: bool = True,
) -> SweepStats:
    """Run ``shards`` on their models' engines until each is written or out of attempts."""
    start = time.perf_counter()
    stats = SweepStats()
    queues: dict[str, deque[Shard]] = {model: deque() for model in pools}
    for shard in shards:
        queues[shard.model].append(shard)
    attempts: dict[str, int] = {}
    # (model, replica index) -> shards in flight there
    load: dict[tuple[str, int], int] = {
        (model, i): 0 for model, pool in pools.items() for i in range(len(pool.handles))
    }
    inflight: dict[ray.ObjectRef, tuple[Shard, tuple[str, int], Any]] = {}
    bar = tqdm(total=len(shards), unit="shard", desc="sweep", disable=not show_progress, dynamic_ncols=True)

    def submit() -> None:
        for model, queue in queues.items():
            while queue:
                slot = min((s for s in load if s[0] == model), key=lambda s: load[s])
                if load[slot] >= max_inflight_per_engine:
                    break
                shard = queue.popleft()
                attempts[shard.shard_id] = attempts.get(shard.shard_id, 0) + 1
                reward_name = getattr(shard.strategy, "reward_model", None)
                reward_handle = None
                if reward_name is not None and reward_name not in (reward_pools or {}):
                    reward_handle = pools[model].handles[slot[1]]  # a scorer that reads the policy itself
                elif reward_name is not None:
                    handles = (reward_pools or {})[reward_name].handles
                    reward_handle = handles[attempts[shard.shard_id] % len(handles)]
                ref = run_shard_task.remote(shard, pools[model].handles[slot[1]], context, reward_handle)
                inflight[ref] = (shard, slot, reward_handle)
                load[slot] += 1

    submit()
    while inflight:
        ready, _ = ray.wait(list(inflight), num_returns=1)
        for ref in ready:
            shard, slot, reward_handle = inflight.pop(ref)
            load[slot] -= 1
            try:
                report: ShardReport = ray.get(ref)
            except ray.exceptions.RayError as exc:
                message = _short_error(exc)
                if _engine_failed_to_start(exc):
                    # Retrying cannot help: fail the shards that need that engine now (the policy's,
                    # or every shard scored by that reward model) and keep the others going.
                    dead = _dead_engine(exc, shard, reward_handle)
                    log.error("the engine of %s failed to start: %s", dead, message)
                    stats.dead_engines[dead] = message
                    dropped = [shard]
                    for queue in queues.values():
                        needs = [s for s in queue if dead in (s.model, getattr(s.strategy, "reward_model", None))]
                        for lost in needs:
                            queue.remove(lost)
                        dropped += needs
                    for lost in dropped:
                        stats.failed[lost.shard_id] = message
                    bar.update(len(dropped))
                    continue
                if attempts[shard.shard_id] < max_attempts:
                    log.warning(
                        "shard %s failed (attempt %d), re-queued: %s",
                        shard.shard_id,
                        attempts[shard.shard_id],
                        message,
                    )
                    stats.retries += 1
                    queues[shard.model].append(shard)
                else:
                    log.error(
                        "shard %s failed %d times: %s", shard.shard_id, attempts[shard.shard_id], message
                    )
                    stats.failed[shard.shard_id] = message
                    bar.update(1)
                continue
            stats.completed.append(report)
            elapsed = time.perf_counter() - start
            bar.update(1)
            bar.set_postfix(
                samples=sum(r.rows for r in stats.completed),
                tok_s=f"{stats.completion_tokens / max(elapsed, 1e-9):.0f}",
                refresh=False,
            )
        submit()
    bar.close()
    stats.seconds = time.perf_counter() - start
    return stats


def _dead_engine(exc: Exception, shard: Shard, reward_handle: Any) -> str:
    """The model or reward model whose actor died: the reward model's if it was that actor."""
    died = getattr(getattr(exc, "cause", exc), "actor_id", None)
    reward = getattr(shard.strategy, "reward_model", None)
    if reward is not None and reward_handle is not None and died == reward_handle._actor_id.hex():
        return reward
    return shard.model


def _engine_failed_to_start(exc: Exception) -> bool:
    """Whether the engine actor died in its constructor (bad path, bad engine args): Ray won't restart it."""
    cause = getattr(exc, "cause", exc)
    return isinstance(cause, ray.exceptions.ActorDiedError) and "creation task" in str(cause)


def _short_error(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}"[:500]
