"""The replica watch: which engine replicas can take shards while a sweep runs.

A replica takes shards once it is placed on a node and while its actor is not restarting.
``ReplicaWatch`` tells the scheduler which replicas those are, logs what it still waits for,
and gives up on a model none of whose replicas found a node within ``PLACEMENT_WAIT_S``
(``AUTOSCALE_WAIT_S`` where an autoscaler can add nodes).

Left out: starting the actors and checking up front whether the cluster can ever hold them
(``actors.pool``); what to do with a model given up on (the scheduler fails its shards).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from actors.pool import AUTOSCALE_WAIT_S, PLACEMENT_WAIT_S, EnginePool, cluster_can_grow, show_resources

log = logging.getLogger(__name__)

PROGRESS_S = 30.0  # a progress line says what is awaited this often; the first comes after FIRST_PROGRESS_S
FIRST_PROGRESS_S = 5.0  # a placement usually takes less


def actor_state(handle: Any) -> tuple[str, bool]:
    """An actor's state in Ray's actor table, and whether it has a worker (so a node) yet.

    An actor waiting for resources has no worker address. If that internal interface fails, the
    actor counts as alive on a node (its calls then wait or fail as Ray decides).
    """
    from ray._private.state import actors

    try:
        entry = actors(handle._actor_id.hex())
    except Exception as exc:
        log.warning("could not read the actor table: %s", exc)
        return "ALIVE", True
    return str(entry.get("State")), bool((entry.get("Address") or {}).get("Port"))


class ReplicaWatch:
    """Which engine replicas can take shards now: placed on a node, and not restarting.

    ``pools`` maps a name (model or reward model) to its pool; names sharing an engine share its
    replicas. A replica without a node takes no shard (calls would wait for it); one whose actor
    restarts takes none until it is back (calls would fail at once). A pool none of whose
    replicas found a node within the wait is given up on; one with some goes on with those, and
    the others join whenever they find a node.
    """

    def __init__(self, pools: dict[str, EnginePool], *, wait_s: float | None = None) -> None:
        self._pools = pools
        self._unique = {p.spec.actor_prefix: p for p in pools.values() if p.unplaceable is None}
        self._placed: dict[str, set[int]] = {prefix: set() for prefix in self._unique}
        self._restarting: dict[tuple[str, int], float] = {}  # replica -> when a shard failed on it
        self._done: set[str] = set()  # given up on, or going on without some replicas
        self._started = time.monotonic()
        self._last_progress = self._started - PROGRESS_S + FIRST_PROGRESS_S
        self._wait_s = wait_s
        self._can_grow: bool | None = None

    def ready(self, name: str) -> list[int]:
        """Replica indices of ``name`` that can take shards now."""
        prefix = self._pools[name].spec.actor_prefix
        return sorted(i for i in self._placed.get(prefix, set()) if (prefix, i) not in self._restarting)

    @property
    def waiting(self) -> bool:
        """Whether some replica has no node yet or is restarting (the scheduler then polls)."""
        return bool(self._restarting) or any(self._pending(prefix) for prefix in self._unique)

    def restarting(self, handles: list[Any]) -> None:
        """A shard failed on these actors: hold them back until they are alive again."""
        ids = {h._actor_id for h in handles}
        for prefix, pool in self._unique.items():
            for index, handle in enumerate(pool.handles):
                if handle._actor_id in ids:
                    self._restarting.setdefault((prefix, index), time.monotonic())

    def poll(self) -> dict[str, str]:
        """Look again; returns the names newly given up on, each with why."""
        for (prefix, index), since in list(self._restarting.items()):
            if actor_state(self._unique[prefix].handles[index])[0] != "RESTARTING":
                del self._restarting[(prefix, index)]  # alive again (or dead: its calls fail fast)
            elif time.monotonic() - since > self._limit():
                log.warning(
                    "replica %d of %s is still restarting after %.0f s; sending it shards again",
                    index,
                    self._unique[prefix].spec.model,
                    self._limit(),
                )
                del self._restarting[(prefix, index)]
        for prefix, pool in self._unique.items():
            for index in self._pending(prefix):
                state, has_worker = actor_state(pool.handles[index])
                if has_worker or state not in ("DEPENDENCIES_UNREADY", "PENDING_CREATION"):
                    self._placed[prefix].add(index)
        awaited = [prefix for prefix in self._unique if prefix not in self._done and self._pending(prefix)]
        if not awaited:
            return {}
        limit = self._limit()
        now = time.monotonic()
        waited = now - self._started
        if now - self._last_progress >= PROGRESS_S:
            self._last_progress = now
            for prefix in awaited:
                spec = self._unique[prefix].spec
                log.info(
                    "waited %.0f s (of at most %.0f) for %s: %d of %d replicas of %s have no node; "
                    "each needs %s",
                    waited,
                    limit,
                    "the autoscaler to add nodes" if self._can_grow else "resources to free up",
                    len(self._pending(prefix)),
                    spec.replicas,
                    spec.model,
                    show_resources(spec.replica_demand()),
                )
        if waited < limit:
            return {}
        newly: dict[str, str] = {}
        for prefix in awaited:
            self._done.add(prefix)
            pool = self._unique[prefix]
            if self._placed[prefix]:
                log.warning(
                    "going on with %d of %d replicas of %s: the others found no node in %.0f s",
                    len(self._placed[prefix]),
                    len(pool.handles),
                    pool.spec.model,
                    limit,
                )
                continue
            why = (
                f"no replica of {pool.spec.model} found a node in {limit:.0f} s; each needs "
                f"{show_resources(pool.spec.replica_demand())}"
                + ("" if self._can_grow else ", and no autoscaler can add nodes")
            )
            newly.update({name: why for name, p in self._pools.items() if p is pool})
        return newly

    def _pending(self, prefix: str) -> list[int]:
        return [i for i in range(len(self._unique[prefix].handles)) if i not in self._placed[prefix]]

    def _limit(self) -> float:
        """How long a replica may be without a node (or restarting) before this watch gives up."""
        if self._wait_s is not None:
            return self._wait_s
        if self._can_grow is None:
            self._can_grow = cluster_can_grow()
        return AUTOSCALE_WAIT_S if self._can_grow else PLACEMENT_WAIT_S
