"""The engine pool: start (or find) one model's engine actors, place them, and stop them.

Engine actors are named after a hash of their spec, inside one Ray namespace. A launcher
that finds live actors with its spec's name reuses them (a test session, or a second sweep
on a running cluster) and leaves them running; actors it starts itself it also stops.

Placement is checked, never waited on blindly. Replicas that the cluster's nodes can never
hold, on a cluster without an autoscaler, are not started: the pool carries the reason
(``EnginePool.unplaceable``). Where an autoscaler can add nodes, it is told up front what
every engine needs (``request_capacity``).

Left out: resolving a model entry into a spec (``actors.spec``), and watching which replicas
found a node while the sweep runs (``actors.watch``, which waits at most ``PLACEMENT_WAIT_S``,
or ``AUTOSCALE_WAIT_S`` where an autoscaler can add nodes).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import ray

from actors.spec import EngineSpec

log = logging.getLogger(__name__)

NAMESPACE = "scaling-sweep"

# How long a model may wait for a node for any of its replicas: on a fixed cluster (its
# resources are held by other work), and where an autoscaler can add nodes (cloud GPU nodes
# take minutes to come up).
PLACEMENT_WAIT_S = 300.0
AUTOSCALE_WAIT_S = 3600.0


@dataclass
class EnginePool:
    """The live actors of one model; ``owned`` ones are stopped when the sweep ends."""

    spec: EngineSpec
    handles: list[Any]
    owned: list[bool]
    groups: list[Any] = field(default_factory=list)  # placement groups of owned replicas
    unplaceable: str | None = None  # why no actor was started: the cluster can never hold them

    def shutdown(self) -> None:
        for handle, owned in zip(self.handles, self.owned, strict=True):
            if owned:
                ray.kill(handle, no_restart=True)
        for group in self.groups:
            ray.util.remove_placement_group(group)


def actor_options(spec: EngineSpec) -> tuple[dict[str, Any], Any]:
    """Ray options of one replica's actor, and the placement group it runs in (or None).

    One GPU or none: the actor holds the GPU itself (plus any custom resources), spread over
    nodes. Tensor parallel: a STRICT_PACK group of one bundle per GPU on one node; the actor
    sits in bundle 0 and vLLM's Ray executor places its workers in the group's bundles.
    """
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    bundles = spec.placement_bundles
    if bundles is None:
        return {
            "num_cpus": 1,
            "num_gpus": spec.num_gpus,
            "resources": dict(spec.resources),
            "scheduling_strategy": "SPREAD",
        }, None
    group = placement_group(bundles, strategy="STRICT_PACK", name="")
    return {
        "num_cpus": 1,
        "num_gpus": 0,
        "scheduling_strategy": PlacementGroupSchedulingStrategy(
            placement_group=group, placement_group_bundle_index=0, placement_group_capture_child_tasks=True
        ),
    }, group


def start_engines(spec: EngineSpec, *, max_restarts: int) -> EnginePool:
    """Find or start ``spec.replicas`` engine actors (not waiting for them to load).

    Starts none when the cluster can never hold them all (``EnginePool.unplaceable`` says why).
    """
    from actors.remote import EngineActor

    handles, owned, groups = [], [], []
    checked = False
    for replica in range(spec.replicas):
        name = f"{spec.actor_prefix}-{replica}"
        try:
            handle = ray.get_actor(name, namespace=NAMESPACE)
            handles.append(handle)
            owned.append(False)
            log.info("reusing live engine actor %s", name)
            continue
        except ValueError:
            pass
        if not checked:  # before the first actor this call starts
            checked, problem = True, placement_problem(spec)
            if problem is not None:
                log.error("%s", problem)
                return EnginePool(spec=spec, handles=handles, owned=owned, unplaceable=problem)
        options, group = actor_options(spec)
        handle = EngineActor.options(
            name=name,
            namespace=NAMESPACE,
            max_restarts=max_restarts,
            # No Ray-level retry of engine calls: a call that dies with its actor fails its shard,
            # and the scheduler retries the shard (counted, logged; every write is idempotent).
            max_task_retries=0,
            runtime_env={"env_vars": spec.env},
            **options,
        ).remote(model=spec.path, engine_kwargs=spec.engine_kwargs, seed=spec.seed)
        handles.append(handle)
        owned.append(True)
        if group is not None:
            groups.append(group)
    return EnginePool(spec=spec, handles=handles, owned=owned, groups=groups)


def placement_problem(spec: EngineSpec, *, autoscaler_wait_s: float = 15.0) -> str | None:
    """Why the cluster can never hold all of ``spec``'s replicas, or None.

    Counts what the live nodes' total resources hold, replica by replica (first fit: exact for
    identical replicas). A cluster with an autoscaler may grow, so it is never refused here.
    """
    need = spec.replica_demand()
    nodes = [dict(n["Resources"]) for n in ray.nodes() if n.get("Alive")]
    fits = 0
    for node in nodes:
        while fits < spec.replicas and all(node.get(k, 0.0) >= v for k, v in need.items()):
            for key, value in need.items():
                node[key] -= value
            fits += 1
    if fits >= spec.replicas:
        return None
    if cluster_can_grow(wait_s=autoscaler_wait_s):
        log.info(
            "model %s: the cluster's nodes hold %d of its %d replicas (each needs %s); waiting for the "
            "autoscaler to add nodes (at most %.0f s)",
            spec.model,
            fits,
            spec.replicas,
            show_resources(need),
            AUTOSCALE_WAIT_S,
        )
        return None
    alive = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    totals = {k: sum(n.get(k, 0.0) for n in alive) for k in need}
    return (
        f"model {spec.model}: {spec.replicas} replicas needing {show_resources(need)} each cannot be "
        f"placed; the cluster's {len(nodes)} nodes ({show_resources(totals)} in all) hold {fits} at most, "
        f"and no autoscaler can add nodes: lower its `replicas` or `resources`, or add nodes"
    )


def cluster_can_grow(*, wait_s: float = 15.0) -> bool:
    """Whether an autoscaler can add nodes to this cluster.

    Ray's monitor runs on every head and reports node types. Without a cluster config (a local
    ``ray.init``, nodes started by hand) it reports each node as its own read-only type; with
    one, the config's node types. A fresh head reports after a few seconds: wait that long.
    """
    from ray._private import ray_constants
    from ray.autoscaler._private.util import format_readonly_node_type
    from ray.experimental.internal_kv import _internal_kv_get

    deadline = time.monotonic() + wait_s
    while True:
        try:
            raw = _internal_kv_get(ray_constants.DEBUG_AUTOSCALING_STATUS)
            if raw:
                report = json.loads(raw).get("autoscaler_report") or {}
                mapping: dict[str, str] = report.get("node_type_mapping") or {}
                if mapping:
                    return bool(report.get("pending_launches")) or any(
                        kind != format_readonly_node_type(node) for node, kind in mapping.items()
                    )
            else:
                types = _v2_node_types()
                if types:
                    return any(kind != format_readonly_node_type(node) for node, kind in types.items())
        except Exception as exc:  # an internal Ray interface: if it changes, assume a fixed cluster
            log.warning("could not read the autoscaler's status: %s", exc)
            return False
        if time.monotonic() >= deadline:
            return False
        time.sleep(1.0)


def _v2_node_types() -> dict[str, str]:
    """Node id -> node type, from autoscaler v2's status (empty when it runs v1 or none)."""
    from ray.autoscaler.v2.sdk import get_cluster_status
    from ray.autoscaler.v2.utils import is_autoscaler_v2

    if not is_autoscaler_v2(fetch_from_server=True):
        return {}
    status = get_cluster_status(ray.get_runtime_context().gcs_address)
    return {n.node_id: n.ray_node_type_name for n in [*status.active_nodes, *status.idle_nodes]}


def show_resources(resources: dict[str, float]) -> str:
    """Resources as one line: ``CPU 1, GPU 2``."""
    return ", ".join(f"{k} {v:g}" for k, v in sorted(resources.items()))


def request_capacity(specs: list[EngineSpec]) -> list[dict[str, float]]:
    """Tell the autoscaler up front what every engine needs, so GPU nodes start launching before
    the actors queue for them; a no-op on a cluster without an autoscaler."""
    from ray.autoscaler.sdk import request_resources

    bundles = [b for spec in specs for b in spec.demand()]
    request_resources(bundles=bundles)
    return bundles


def release_capacity() -> None:
    """Withdraw the request: idle nodes can go once the grid has drained."""
    from ray.autoscaler.sdk import request_resources

    request_resources(bundles=[])
