"""Keep every engine busy: bounded in-flight shards per replica, results handled as they finish.

Each shard runs as a Ray task that calls its model's engine actor, grades, and writes its
file. The driver keeps at most ``max_inflight_per_engine`` shards queued on each replica
(``ray.wait`` backpressure), so an engine always has the next shard's requests waiting
while the previous shard is graded and written. A failed shard (dead actor, lost node, an
engine that did not answer in time) is re-queued up to ``max_attempts`` times; retries are
safe because every write is idempotent.

Shards go only to replicas that can take them (``actors.watch.ReplicaWatch``): a replica waiting for the
autoscaler takes none, nor does one whose actor restarts (after an engine died under a shard,
which is then retried once the actor is back). A model none of whose replicas can be placed
fails its shards the way an engine that cannot start does (``SweepStats.dead_engines``).
"""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import ray
from tqdm import tqdm

from actors.pool import EnginePool
from actors.protocol import DeadlineExceeded, RequestFailed
from actors.remote import RemoteEngine
from actors.watch import ReplicaWatch
from sweep.config import SchedulerConfig
from sweep.grid import Shard
from sweep.runner import RunContext, ShardReport, run_shard

log = logging.getLogger(__name__)

POLL_S = 1.0  # how often the driver looks at replicas without a node, or restarting
_NOT_READY = object()


@ray.remote(num_cpus=0, max_retries=0)
def run_shard_task(
    shard: Shard, engine: RemoteEngine, context: RunContext, reward_engine: RemoteEngine | None = None
) -> ShardReport:
    """``run_shard`` in a Ray task, on the engine actors the driver picked (handles inside)."""
    logging.basicConfig(level=logging.INFO)
    return run_shard(shard, engine=engine, context=context, reward_engine=reward_engine)


@dataclass
class SweepStats:
    completed: list[ShardReport] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # shard id -> last error
    dead_engines: dict[str, str] = field(default_factory=dict)  # (reward) model -> why it never served
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
    scheduler: SchedulerConfig,
    show_progress: bool = True,
) -> SweepStats:
    """Run ``shards`` on their models' engines until each is written or out of attempts.

    ``scheduler`` bounds the shards in flight per replica and the attempts per shard, and gives
    the deadline of each engine call (``request_timeout_s``).
    """
    max_inflight_per_engine, max_attempts = scheduler.max_inflight_per_engine, scheduler.max_attempts
    start = time.perf_counter()
    stats = SweepStats()
    reward_pools = reward_pools or {}
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
    every_pool = {**pools, **reward_pools}
    watch = ReplicaWatch(every_pool)

    def drop_engine(dead: str, message: str, *, first: Shard | None = None) -> None:
        """Fail every queued shard that needs ``dead`` (as its model or its reward model)."""
        pool = every_pool.get(dead)
        if pool is not None and pool.spec.path not in message:
            message = f"{message} (model path {pool.spec.path})"
        log.error("the engine of %s cannot serve: %s", dead, message)
        stats.dead_engines[dead] = message
        dropped = [first] if first is not None else []
        for queue in queues.values():
            needs = [s for s in queue if dead in (s.model, s.strategy.reward_model)]
            for lost in needs:
                queue.remove(lost)
            dropped += needs
        for lost in dropped:
            stats.failed[lost.shard_id] = message
        bar.update(len(dropped))

    for name, pool in every_pool.items():
        if pool.unplaceable is not None:
            drop_engine(name, pool.unplaceable)

    def reward_handle_for(shard: Shard, slot: tuple[str, int]) -> Any:
        """The engine that scores ``shard`` (None: no scorer), or _NOT_READY while none can take it."""
        name = shard.strategy.reward_model
        if name is None:
            return None
        if name not in reward_pools:
            return pools[slot[0]].handles[slot[1]]  # a scorer that reads the policy itself
        replicas = watch.ready(name)
        if not replicas:
            return _NOT_READY
        return reward_pools[name].handles[replicas[attempts.get(shard.shard_id, 0) % len(replicas)]]

    def submit() -> None:
        for model, queue in queues.items():
            placed = watch.ready(model)
            while queue and placed:
                slot = min(((model, i) for i in placed), key=lambda s: load[s])
                if load[slot] >= max_inflight_per_engine:
                    break
                ready = ((s, h) for s in queue if (h := reward_handle_for(s, slot)) is not _NOT_READY)
                picked = next(ready, None)
                if picked is None:
                    break  # every queued shard waits for a replica of its reward model
                shard, reward_handle = picked
                queue.remove(shard)
                attempts[shard.shard_id] = attempts.get(shard.shard_id, 0) + 1
                engine = RemoteEngine(pools[model].handles[slot[1]], timeout_s=scheduler.request_timeout_s)
                reward_engine = (
                    None
                    if reward_handle is None
                    else RemoteEngine(reward_handle, timeout_s=scheduler.request_timeout_s)
                )
                ref = run_shard_task.remote(shard, engine, context, reward_engine)
                inflight[ref] = (shard, slot, reward_handle)
                load[slot] += 1

    while True:
        if watch.waiting:
            for dead, message in watch.poll().items():
                drop_engine(dead, message)
        submit()
        if not inflight:
            if not any(queues.values()):
                break
            time.sleep(POLL_S)  # every queued shard waits for a replica that can take it
            continue
        ready, _ = ray.wait(list(inflight), num_returns=1, timeout=POLL_S if watch.waiting else None)
        for ref in ready:
            shard, slot, reward_handle = inflight.pop(ref)
            load[slot] -= 1
            try:
                report: ShardReport = ray.get(ref)
            except ray.exceptions.RayError as exc:
                message = _short_error(exc)
                if _actor_failed(exc):  # hold its engines back until they are alive again
                    handles = (pools[slot[0]].handles[slot[1]], reward_handle)
                    watch.restarting([h for h in handles if h is not None])
                if _engine_failed_to_start(exc):
                    # Retrying cannot help: fail the shards that need that engine now (the policy's,
                    # or every shard scored by that reward model) and keep the others going.
                    drop_engine(_dead_engine(exc, shard, reward_handle), message, first=shard)
                    continue
                if _refused(exc):
                    log.error("shard %s failed; a retry would be refused again: %s", shard.shard_id, message)
                elif attempts[shard.shard_id] < max_attempts:
                    log.warning(
                        "shard %s failed (attempt %d), re-queued: %s",
                        shard.shard_id,
                        attempts[shard.shard_id],
                        message,
                    )
                    stats.retries += 1
                    queues[shard.model].append(shard)
                    continue
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
    bar.close()
    stats.seconds = time.perf_counter() - start
    return stats


def _dead_engine(exc: Exception, shard: Shard, reward_handle: Any) -> str:
    """The model or reward model whose actor died: the reward model's if it was that actor."""
    died = getattr(getattr(exc, "cause", exc), "actor_id", None)
    reward = shard.strategy.reward_model
    if reward is not None and reward_handle is not None and died == reward_handle._actor_id.hex():
        return reward
    return shard.model


def _refused(exc: Exception) -> bool:
    """Whether the shard failed on a request its engine refused (too long, bad parameters): a
    retry would be refused again. A request past its deadline may pass on a less busy engine."""
    cause: BaseException | None = exc
    for _ in range(8):  # a RayTaskError holds the error of the task it came from, which may be one too
        if isinstance(cause, RequestFailed) and not isinstance(cause, DeadlineExceeded):
            return True
        cause = getattr(cause, "cause", None)
        if cause is None:
            return False
    return False


def _actor_failed(exc: Exception) -> bool:
    """Whether a shard failed because an engine actor died or is restarting."""
    return isinstance(getattr(exc, "cause", exc), ray.exceptions.RayActorError)


def _engine_failed_to_start(exc: Exception) -> bool:
    """Whether the engine actor died in its constructor (bad path, bad engine args): Ray won't restart it."""
    cause = getattr(exc, "cause", exc)
    return isinstance(cause, ray.exceptions.ActorDiedError) and "creation task" in str(cause)


def _short_error(exc: Exception) -> str:
    """One line saying what went wrong: the last ``SomethingError: …`` line of the error's text
    (a traceback's last line is often a hint such as pydantic's "For further information …")."""
    lines = [line.strip() for line in str(exc).strip().splitlines()]
    lines = [line for line in lines if line and not line.startswith("For further information")]
    errors = [line for line in lines if _ERROR_LINE.match(line)]
    return f"{type(exc).__name__}: {(errors or lines or [''])[-1]}"[:500]


_ERROR_LINE = re.compile(r"^[\w.]*(?:Error|Exception|Failure)\b.*:")
