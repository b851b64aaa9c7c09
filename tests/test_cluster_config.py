"""cluster.yaml passes Ray's own cluster-config validation, and engines ask for the right placement."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def load() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())


def validate(config: dict[str, Any]) -> dict[str, Any]:
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def test_cluster_yaml_is_valid_for_ray() -> None:
    prepared = validate(load())
    types = prepared["available_node_types"]
    head = types[prepared["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0  # a CPU head: no engines there
    gpus = {name: t["resources"]["GPU"] for name, t in types.items() if t["resources"].get("GPU")}
    assert sorted(gpus.values()) == [1, 8]
    for name in gpus:
        assert types[name]["min_workers"] == 0 and types[name]["max_workers"] > 0
    assert 0 < prepared["idle_timeout_minutes"] <= 30
    assert any('pip install -e ".[gpu]"' in c for c in prepared["setup_commands"])
    assert prepared["file_mounts"] == {"~/scaling-sweep": "."}  # the working directory is synced


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c | {"idle_timeout_minute": 5},  # a typo is an error, not a silent default
        lambda c: c | {"head_node_type": "missing"},
    ],
)
def test_ray_validation_rejects_broken_configs(mutate: Any) -> None:
    with pytest.raises((jsonschema.ValidationError, ValueError)):
        validate(mutate(load()))


def test_tensor_parallel_engines_get_a_strict_pack_placement_group() -> None:
    """On a Ray with 4 declared GPUs (no real ones needed for placement): a TP-2 engine's actor
    lands in bundle 0 of a STRICT_PACK group of two GPU bundles; a 1-GPU engine gets no group."""
    script = r'''
import ray
from ray.util.placement_group import placement_group_table
from actors.pool import actor_options
from actors.spec import EngineSpec

ray.init(num_cpus=4, num_gpus=4, resources={"a100": 4}, include_dashboard=False, logging_level="ERROR")
spec = EngineSpec(model="m", path="/m", params=1, device="gpu", replicas=2, engine_kwargs={}, env={}, seed=0,
                  num_gpus=2, resources={"a100": 1})
assert spec.placement_bundles == [{"CPU": 1.0, "GPU": 1.0, "a100": 1}, {"GPU": 1.0, "a100": 1}]
assert spec.demand() == spec.placement_bundles * 2

@ray.remote
class Probe:
    def where(self):
        ctx = ray.get_runtime_context()
        return ctx.get_placement_group_id(), ray.util.get_current_placement_group() is not None

options, group = actor_options(spec)
ray.get(group.ready(), timeout=60)
table = placement_group_table(group)
assert table["strategy"] == "STRICT_PACK" and len(table["bundles"]) == 2, table
pg_id, captured = ray.get(Probe.options(**options).remote().where.remote())
assert pg_id == group.id.hex() and captured
single = EngineSpec(model="s", path="/s", params=1, device="gpu", replicas=1, engine_kwargs={}, env={}, seed=0, num_gpus=1)
options, none = actor_options(single)
assert none is None and options["num_gpus"] == 1 and options["scheduling_strategy"] == "SPREAD"
print("PLACEMENT OK")
'''
    # Its own Ray: not the test session's, whose address an earlier test may have exported.
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=180, check=False, env=env
    )
    assert "PLACEMENT OK" in done.stdout, done.stderr[-3000:]


def test_gpu_tensor_parallel_spec_uses_vllm_ray_executor() -> None:
    from actors.spec import resolve_engine_spec
    from sweep.config import ModelConfig

    model = ModelConfig(name="big", path="EleutherAI/llemma_34b", params=34_000_000_000, device="gpu",
                        engine={"tensor_parallel_size": 4}, resources={"a100": 1})  # fmt: skip
    spec = resolve_engine_spec(model, cluster_has_gpus=True, seed=0)
    assert spec.num_gpus == 4 and spec.engine_kwargs["distributed_executor_backend"] == "ray"
    assert len(spec.placement_bundles or []) == 4 and "resources" not in spec.identity
    small = resolve_engine_spec(model.model_copy(update={"engine": {}}), cluster_has_gpus=True, seed=0)
    assert small.placement_bundles is None and "distributed_executor_backend" not in small.engine_kwargs
