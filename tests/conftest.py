"""Shared fixtures: one Ray cluster and one real vLLM CPU engine for the whole test session.

The session starts its own local Ray (own temp dir) and exports its address, so launcher
subprocesses attach to it. The engine actor is started here, owned by the test process:
sweeps (in-process or subprocess) find it by name and reuse it instead of paying another
engine start, and a killed launcher does not take it down.

Every test that needs a real vLLM engine carries the ``engine`` marker, so
``pytest -m "not engine"`` runs the fast suite without starting one. Tests that use
``engine_pool`` (directly or through another fixture) are marked here, at collection; a test
that starts an engine some other way (its own in-process engine, a launcher subprocess on
its own cluster) is marked in its module.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "configs" / "tiny.yaml"
ENGINE_FIXTURES = frozenset({"engine_pool", "mp_pool"})  # fixtures that start a real engine


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test whose fixture closure starts the real engine with ``engine``."""
    for item in items:
        if ENGINE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.engine)


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    import ray

    temp_dir = tempfile.mkdtemp(prefix="ssw-ray-", dir="/tmp")
    ray.init(num_cpus=4, include_dashboard=False, _temp_dir=temp_dir, logging_level="WARNING")
    address = ray.get_runtime_context().gcs_address
    previous = os.environ.get("RAY_ADDRESS")
    os.environ["RAY_ADDRESS"] = address
    yield address
    ray.shutdown()
    if previous is None:
        os.environ.pop("RAY_ADDRESS", None)
    else:
        os.environ["RAY_ADDRESS"] = previous


@pytest.fixture(scope="session")
def engine_pool(ray_address: str) -> Iterator[Any]:
    """The real CPU engine for tiny.yaml's model, loaded once."""
    import ray

    from actors.pool import start_engines
    from actors.spec import resolve_engine_spec
    from sweep.config import load_config

    config = load_config(TINY)
    spec = resolve_engine_spec(config.models[0], cluster_has_gpus=False, seed=config.seed)
    pool = start_engines(spec, max_restarts=10)
    ray.get([h.ready.remote() for h in pool.handles], timeout=600)
    yield pool
    pool.shutdown()


@pytest.fixture
def tiny_config(tmp_path: Path) -> Any:
    """tiny.yaml with its output in a fresh temporary folder."""
    from sweep.config import load_config

    return load_config(TINY).model_copy(update={"output": str(tmp_path / "out")})
