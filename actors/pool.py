"""Driver side of the engines: resolve a model entry into an engine spec, start or find its actors.

Engine actors are named after a hash of their spec, inside one Ray namespace. A launcher
that finds live actors with its spec's name reuses them (a test session, or a second sweep
on a running cluster) and leaves them running; actors it starts itself it also stops.

Placement is checked, never waited on blindly. Replicas that the cluster's nodes can never
hold, on a cluster without an autoscaler, are not started: the pool carries the reason
(``EnginePool.unplaceable``). ``ReplicaWatch`` tells the scheduler which replicas can take
shards (placed, not restarting), logs what it still waits for, and gives up on a model none of
whose replicas found a node within ``PLACEMENT_WAIT_S`` (``AUTOSCALE_WAIT_S`` where an
autoscaler can add nodes).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray

from actors.models import count_parameters, resolve_model_path
from actors.settings import ModelConfig

log = logging.getLogger(__name__)

NAMESPACE = "scaling-sweep"

# Float32 because the CPU engine runs bfloat16 5x slower; eager because torch.compile costs
# minutes of start-up and gave nothing measurable on the CPU. KV blocks of 32 tokens instead of
# the CPU default 128: a prefix-cache hit covers all but <32 tokens of a shared context, which
# tree search re-sends at every depth (measured: 1.3-1.8x tokens/s for REBASE, and sampling
# no slower; BENCHMARKS.md).
CPU_ENGINE_DEFAULTS: dict[str, Any] = {
    "dtype": "float32",
    "enforce_eager": True,
    "max_model_len": 4096,
    "block_size": 32,
}
GPU_ENGINE_DEFAULTS: dict[str, Any] = {}
# vLLM's INFO lines stream through Ray to the launcher's terminal; keep warnings and errors.
ENGINE_ENV: dict[str, str] = {"VLLM_LOGGING_LEVEL": "WARNING"}
# How long a model may wait for a node for any of its replicas: on a fixed cluster (its
# resources are held by other work), and where an autoscaler can add nodes (cloud GPU nodes
# take minutes to come up). A progress line says what is awaited every PROGRESS_S.
PLACEMENT_WAIT_S = 300.0
AUTOSCALE_WAIT_S = 3600.0
PROGRESS_S = 30.0  # the first line comes after FIRST_PROGRESS_S: a placement usually takes less
FIRST_PROGRESS_S = 5.0


def cpu_engine_env() -> dict[str, str]:
    """Environment that vLLM's CPU backend documents for throughput (measured: +12% with preload)."""
    env = {
        "VLLM_CPU_KVCACHE_SPACE": "3",  # GiB of KV cache: fits several engines in 24 GiB
        "VLLM_CPU_OMP_THREADS_BIND": "auto",
        "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",  # the default reserves a core: 0.56x on 2 cores
    }
    preload = [
        p
        for p in (
            "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
            os.path.join(sys.prefix, "lib", "libiomp5.so"),
        )
        if Path(p).is_file()
    ]
    if preload:
        env["LD_PRELOAD"] = ":".join(preload)
    return env


@dataclass(frozen=True)
class EngineSpec:
    """Everything needed to start one model's engine actors."""

    model: str  # label
    path: str
    params: int
    device: str  # "cpu" | "gpu"
    replicas: int
    engine_kwargs: dict[str, Any]
    env: dict[str, str]
    seed: int
    num_gpus: int = 0  # GPUs per replica (= tensor_parallel_size on GPUs)
    identity: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, float] = field(default_factory=dict)

    @property
    def placement_bundles(self) -> list[dict[str, float]] | None:
        """A tensor-parallel GPU engine's placement group: one bundle per GPU (None: no group)."""
        if self.num_gpus <= 1:
            return None
        first = {"CPU": 1.0, "GPU": 1.0, **self.resources}  # the actor itself, and worker 0
        return [first] + [{"GPU": 1.0, **self.resources} for _ in range(self.num_gpus - 1)]

    @property
    def replica_bundles(self) -> list[dict[str, float]]:
        """One replica's resource bundles: its placement group's, or its actor's own."""
        return self.placement_bundles or [{"CPU": 1.0, "GPU": float(self.num_gpus), **self.resources}]

    def replica_demand(self) -> dict[str, float]:
        """What one replica holds, all on one node (a tensor-parallel group is STRICT_PACK)."""
        total: dict[str, float] = {}
        for bundle in self.replica_bundles:
            for key, value in bundle.items():
                total[key] = total.get(key, 0.0) + value
        return {k: v for k, v in total.items() if v}

    def demand(self) -> list[dict[str, float]]:
        """Resource bundles all replicas need: what the autoscaler is asked for up front."""
        one = self.replica_bundles
        return [{k: v for k, v in b.items() if v} for _ in range(self.replicas) for b in one]

    @property
    def actor_prefix(self) -> str:
        # Named after what runs, not the label: a PRM entry with a policy's spec shares its actor.
        identity = json.dumps(self.identity, sort_keys=True, separators=(",", ":"), default=str)
        return f"engine-{Path(self.path).name}-{hashlib.sha256(identity.encode()).hexdigest()[:10]}"


def resolve_engine_spec(model: ModelConfig, *, cluster_has_gpus: bool, seed: int) -> EngineSpec:
    """Fill in device defaults, the model folder and the parameter count."""
    device = model.device if model.device != "auto" else ("gpu" if cluster_has_gpus else "cpu")
    path = resolve_model_path(model.name, model.path)
    defaults = CPU_ENGINE_DEFAULTS if device == "cpu" else GPU_ENGINE_DEFAULTS
    engine_kwargs = {**defaults, **model.engine}
    if device == "gpu" and model.tensor_parallel_size > 1:
        # vLLM's docs: inside a Ray placement group, tensor-parallel workers run as Ray actors
        # in its bundles (the engine core process inherits the group from this actor).
        engine_kwargs.setdefault("distributed_executor_backend", "ray")
    env = {**ENGINE_ENV, **(cpu_engine_env() if device == "cpu" else {}), **model.env}
    params = model.params or count_parameters(path)
    identity = {"path": path, "engine": engine_kwargs, "device": device, "seed": seed, "params": params}
    return EngineSpec(
        model=model.name,
        path=path,
        params=params,
        device=device,
        replicas=model.replicas,
        engine_kwargs=engine_kwargs,
        env=env,
        seed=seed,
        num_gpus=model.tensor_parallel_size if device == "gpu" else 0,
        identity=identity,
        resources=dict(model.resources),
    )


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
            _show(need),
            AUTOSCALE_WAIT_S,
        )
        return None
    alive = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    totals = {k: sum(n.get(k, 0.0) for n in alive) for k in need}
    return (
        f"model {spec.model}: {spec.replicas} replicas needing {_show(need)} each cannot be placed; "
        f"the cluster's {len(nodes)} nodes ({_show(totals)} in all) hold {fits} at most, and no "
        f"autoscaler can add nodes: lower its `replicas` or `resources`, or add nodes"
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


def _show(resources: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in sorted(resources.items()))


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
                    _show(spec.replica_demand()),
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
                f"{_show(pool.spec.replica_demand())}"
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
