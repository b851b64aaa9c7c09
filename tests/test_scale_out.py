"""Scale-out on Ray's real autoscaler with the fake multi-node provider: engines that need a
"GPU" (a custom resource only worker nodes offer) start a sweep with zero workers; the
autoscaler adds workers, the sweep completes with exact rows, and idle workers go away. A
worker node killed mid-sweep loses no row: its shards run again on the other engine.

Each test runs its own head (own port and temp dir) and ends only that cluster's processes.
The launcher runs as a subprocess attached to it, as `ray job submit` would run it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_cluster import FakeCluster

pytestmark = pytest.mark.timeout(900)

ROOT = Path(__file__).resolve().parent.parent
WORKER = {"resources": {"CPU": 2, "fake_gpu": 1}, "node_config": {}, "min_workers": 0}


@pytest.fixture
def cluster(request: pytest.FixtureRequest) -> Iterator[FakeCluster]:
    workers = getattr(request, "param", 2)
    fake = FakeCluster(head_cpus=2, worker_types={"fake-gpu": {**WORKER, "max_workers": workers}}, idle_timeout_minutes=0.2)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


def env_for(cluster: FakeCluster) -> dict[str, str]:
    return {**os.environ, "RAY_ADDRESS": cluster.address, "RAY_AUTH_MODE": "disabled"}


def ask(cluster: FakeCluster, code: str) -> Any:
    """Run ``code`` (which sets ``result``) in a driver attached to the cluster; returns result."""
    script = (
        "import json, ray\n"
        "ray.init(address='auto', logging_level='ERROR')\n"
        f"{code}\n"
        "print('RESULT ' + json.dumps(result))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env_for(cluster), capture_output=True, text=True, timeout=120, cwd=ROOT,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stderr[-2000:]
    return json.loads(lines[-1][len("RESULT ") :])


def alive_workers(cluster: FakeCluster) -> list[str]:
    return ask(
        cluster,
        "head = ray.get_runtime_context().get_node_id()\n"
        "result = [n['NodeID'] for n in ray.nodes() if n['Alive'] and n['NodeID'] != head]",
    )


def write_grid(tmp_path: Path, *, count: int, replicas: int) -> Path:
    raw = yaml.safe_load((ROOT / "tests" / "configs" / "tiny.yaml").read_text())
    raw["models"][0]["resources"] = {"fake_gpu": 1}  # only worker nodes have it
    raw["models"][0]["replicas"] = replicas
    raw["datasets"][0]["count"] = count
    raw["scheduler"].update({"shard_size": 1, "engine_max_restarts": 3})
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def read_rows(output: Path) -> list[tuple[str, str, int]]:
    import pyarrow.dataset as ds

    from sweep.results.schema import SAMPLES

    files = [str(f) for f in sorted((output / "samples").rglob("*.parquet"))]
    table = ds.dataset(files, format="parquet", schema=SAMPLES).to_table()
    return list(zip(table["strategy"].to_pylist(), table["problem_id"].to_pylist(), table["sample_index"].to_pylist()))


def launch(cluster: FakeCluster, grid: Path, output: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sweep.launch", str(grid), "--output", str(output), "--no-progress"],
        env=env_for(cluster),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.engine  # the launched sweep starts the CPU engine on a worker
def test_autoscaler_adds_workers_for_the_grid_and_removes_them_after(cluster: FakeCluster, tmp_path: Path) -> None:
    assert alive_workers(cluster) == []  # zero workers at start
    grid, output = write_grid(tmp_path, count=4, replicas=1), tmp_path / "out"

    started = time.monotonic()
    process = launch(cluster, grid, output)
    first_sample = None
    while process.poll() is None:
        if first_sample is None and list((output / "samples").rglob("*.parquet")):
            first_sample = time.monotonic() - started
        time.sleep(0.2)
    _, stderr = process.communicate()
    assert process.returncode == 0, stderr[-3000:]
    # What the launcher waited for, said before the wait.
    assert "model smollm2-135m-instruct: the cluster's nodes hold 0 of its 1 replicas" in stderr
    assert "waiting for the autoscaler to add nodes" in stderr
    print(f"submit to first sample on a cold fake cluster: {first_sample:.1f} s; sweep {time.monotonic() - started:.1f} s")

    rows = read_rows(output)
    assert len(rows) == 4 * (1 + 4) and len(set(rows)) == len(rows)  # greedy + sampling n_max=4, no duplicate
    manifest = json.loads((output / "manifest.json").read_text())
    (engine_node,) = manifest["runs"][-1]["engine_nodes"]["smollm2-135m-instruct"]
    # The launcher started this engine, so its busy time is this run's: recorded for the report.
    assert 0 < manifest["runs"][-1]["engine_busy_fraction"]["smollm2-135m-instruct"] <= 1
    head = ask(cluster, "result = ray.get_runtime_context().get_node_id()")
    assert engine_node != head, "the engine ran on an autoscaled worker"

    deadline = time.monotonic() + 120  # idle timeout 12 s, plus the autoscaler's own pace
    while alive_workers(cluster) and time.monotonic() < deadline:
        time.sleep(2)
    assert alive_workers(cluster) == [], "idle workers were removed"


@pytest.mark.engine
@pytest.mark.parametrize("cluster", [3], indirect=True)
def test_worker_node_killed_mid_sweep_loses_no_row(cluster: FakeCluster, tmp_path: Path) -> None:
    from actors.spec import resolve_engine_spec
    from sweep.config import load_config

    grid, output = write_grid(tmp_path, count=10, replicas=2), tmp_path / "out"
    config = load_config(grid)
    prefix = resolve_engine_spec(config.models[0], cluster_has_gpus=False, seed=config.seed).actor_prefix

    process = launch(cluster, grid, output)
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline and process.poll() is None and not list((output / "samples").rglob("*.parquet")):
        time.sleep(0.2)
    assert process.poll() is None, process.communicate()[1][-3000:]
    node = ask(
        cluster,
        f"result = ray.get(ray.get_actor('{prefix}-0', namespace='scaling-sweep').ready.remote())['node_id']",
    )
    victims = cluster.raylet_of(node)
    assert victims, f"no processes found for node {node}"
    written = len(list((output / "samples").rglob("*.parquet")))
    for pid in victims:  # the whole node: its raylet and every worker on it, engine included
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]
    assert written < 20, "the kill must land mid-sweep"
    rows = read_rows(output)
    assert len(rows) == 10 * (1 + 4) and len(set(rows)) == len(rows)


@pytest.mark.parametrize("cluster", [1], indirect=True)
def test_capacity_requested_up_front_launches_workers_before_any_actor(cluster: FakeCluster) -> None:
    """request_capacity alone (no actor yet) makes the autoscaler add a worker; releasing it
    lets the idle worker go."""
    code = (
        "import time\n"
        "from actors.pool import request_capacity, release_capacity\n"
        "from actors.spec import EngineSpec\n"
        "spec = EngineSpec(model='m', path='/m', params=1, device='cpu', replicas=1, engine_kwargs={}, env={},"
        " seed=0, resources={'fake_gpu': 1})\n"
        "request_capacity([spec])\n"
        "head = ray.get_runtime_context().get_node_id()\n"
        "deadline = time.monotonic() + 90\n"
        "while time.monotonic() < deadline and not [n for n in ray.nodes() if n['Alive'] and n['NodeID'] != head]:\n"
        "    time.sleep(1)\n"
        "up = len([n for n in ray.nodes() if n['Alive'] and n['NodeID'] != head])\n"
        "release_capacity()\n"
        "result = up"
    )
    assert ask(cluster, code) == 1
    deadline = time.monotonic() + 120
    while alive_workers(cluster) and time.monotonic() < deadline:
        time.sleep(2)
    assert alive_workers(cluster) == []
