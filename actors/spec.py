"""An engine spec: a ``models:`` entry resolved into everything its engine actors need.

Resolution fills in the device (``auto``: a GPU when the cluster has one), the engine
defaults of that device, the actor environment, the model folder and the parameter count.
The spec's identity names the actors (``actor_prefix``), so two entries that would run the
same engine share its actors. Its bundles say what one replica holds, for placement.

Left out: starting, finding and stopping actors and checking where they fit
(``actors.pool``), and watching their placement while a sweep runs (``actors.watch``).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actors.models import count_parameters, resolve_model_path
from actors.settings import ModelConfig

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
