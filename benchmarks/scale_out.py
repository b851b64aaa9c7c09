"""Scale-out on Ray's fake multi-node autoscaler: time from submit to first sample on a cold
cluster, then the engines' busy-time fraction over a multi-shard sweep with 2 replicas.

Workers carry a custom resource ``fake_gpu`` that stands in for a GPU; the engines require it,
so the cluster starts with zero workers and the autoscaler adds them. (1) Cold: the launcher is
run against the bare head; recorded: seconds from ``run_sweep`` to the first samples file. (2)
Busy: two engine replicas are started and loaded first, then a sweep of many shards runs on
them; each engine reports the seconds it spent inside ``LLMEngine.step`` and the span from its
first step to its last; busy fraction = busy / span.

    .venv/bin/python benchmarks/scale_out.py [--problems 24]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def grid(output: Path, *, problems: int, replicas: int, shard_size: int) -> dict:
    return {
        "name": "scale-out",
        "output": str(output),
        "models": [
            {
                "name": "smollm2-135m-instruct",
                "replicas": replicas,
                "resources": {"fake_gpu": 1},
                "engine": {"max_model_len": 1024},
            }
        ],
        "datasets": [{"name": "arithmetic", "source": "arithmetic", "count": problems, "levels": [1, 2]}],
        "strategies": [{"name": "sampling", "n": [4], "temperature": 0.7}],
        "generation": {"max_tokens": 96},
        "scheduler": {"shard_size": shard_size, "max_inflight_per_engine": 3},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=24)
    args = parser.parse_args()

    import os

    import ray
    import yaml
    from fake_cluster import FakeCluster

    from actors.pool import start_engines
    from actors.spec import resolve_engine_spec
    from sweep.config import load_config
    from sweep.driver import run_sweep

    scratch = Path(tempfile.mkdtemp(prefix="scale-out-"))
    worker = {"resources": {"CPU": 2, "fake_gpu": 1}, "node_config": {}, "min_workers": 0, "max_workers": 2}
    cluster = FakeCluster(head_cpus=2, worker_types={"fake-gpu": worker}, idle_timeout_minutes=1)
    cluster.start()
    os.environ["RAY_AUTH_MODE"] = "disabled"
    try:
        ray.init(address=cluster.address, logging_level="WARNING")

        def load(name: str, **kw: int):  # noqa: ANN202
            path = scratch / f"{name}.yaml"
            path.write_text(yaml.safe_dump(grid(scratch / name, **kw)))
            return load_config(path)

        # (1) Cold cluster: zero workers, engines not started.
        cold = load("cold", problems=4, replicas=1, shard_size=2)
        first: list[float] = []
        started = time.monotonic()

        def watch() -> None:
            while not first:
                if list((scratch / "cold" / "samples").rglob("*.parquet")):
                    first.append(time.monotonic() - started)
                time.sleep(0.1)

        threading.Thread(target=watch, daemon=True).start()
        run_sweep(cold, show_progress=False, write_report=False)
        print(f"cold fake cluster: submit -> first sample {first[0]:.1f} s "
              f"(autoscale a worker, start the engine, run one shard)")  # fmt: skip

        # (2) Busy fraction: two loaded replicas, then the sweep.
        busy = load("busy", problems=args.problems, replicas=2, shard_size=2)
        spec = resolve_engine_spec(busy.models[0], cluster_has_gpus=False, seed=busy.seed)
        pool = start_engines(spec, max_restarts=0)
        ray.get([h.ready.remote() for h in pool.handles], timeout=600)
        outcome = run_sweep(busy, show_progress=False, write_report=False)
        assert not outcome.shards_failed
        # Fresh engines: their first step is this sweep's first request, their last its last.
        for replica, clock in enumerate(ray.get([h.busy.remote() for h in pool.handles])):
            print(f"replica {replica}: busy {clock['busy_s']:.1f} s of {clock['span_s']:.1f} s = "
                  f"{clock['busy_s'] / clock['span_s']:.3f} ({int(clock['steps'])} steps)")  # fmt: skip
        print(f"sweep: {outcome.shards_total} shards in {outcome.seconds:.1f} s")
        pool.shutdown()
        ray.shutdown()
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
