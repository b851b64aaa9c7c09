"""Driver side of the engines: resolve a model entry into an engine spec, start or find its actors.

Engine actors are named after a hash of their spec, inside one Ray namespace. A launcher
that finds live actors with its spec's name reuses them (a test session, or a second sweep
on a running cluster) and leaves them running; actors it starts itself it also stops.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray

from sweep.config import ModelConfig
from sweep.grid import digest
from sweep.models import count_parameters, resolve_model_path

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

    def demand(self) -> list[dict[str, float]]:
        """Resource bundles all replicas need: what the autoscaler is asked for up front."""
        one = self.placement_bundles or [{"CPU": 1.0, "GPU": float(self.num_gpus), **self.resources}]
        return [{k: v for k, v in b.items() if v} for _ in range(self.replicas) for b in one]

    @property
    def actor_prefix(self) -> str:
        # Named after what runs, not the label: a PRM entry with a policy's spec shares its actor.
        return f"engine-{Path(self.path).name}-{digest(self.identity, 10)}"


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
    """Find or start ``spec.replicas`` engine actors (not waiting for them to load)."""
    from actors.remote import EngineActor

    handles, owned, groups = [], [], []
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
        options, group = actor_options(spec)
        handle = EngineActor.options(
            name=name,
            namespace=NAMESPACE,
            max_restarts=max_restarts,
            # generate() is a pure function of its requests: retrying it after a restart is safe.
            max_task_retries=2,
            runtime_env={"env_vars": spec.env},
            **options,
        ).remote(model=spec.path, engine_kwargs=spec.engine_kwargs, seed=spec.seed)
        handles.append(handle)
        owned.append(True)
        if group is not None:
            groups.append(group)
    return EnginePool(spec=spec, handles=handles, owned=owned, groups=groups)


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
