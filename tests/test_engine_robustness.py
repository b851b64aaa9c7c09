"""No hangs at the engine: on the real vLLM CPU engine, in vLLM's default multiprocess mode.

That mode is what real sweeps run, and where the hang lived: ``LLMEngine.step()`` with no
request running waits on the engine core's output queue forever, so a batch whose every
request vLLM refused (a prompt longer than ``max_model_len``) froze the step loop, and every
later request with it. (The in-process engine of tiny.yaml returns from an idle step, so it
would not show the fault.) Here: a refused request fails alone and at once, the engine keeps
serving, a request past its deadline is aborted and reported, a caller never waits on a silent
actor beyond its bound, and replicas the cluster can never hold fail fast, naming the model.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.timeout(900)

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "configs" / "tiny.yaml"
CONTEXT = 512  # tokens; also makes this engine's spec (and actor name) differ from the session's
HUGE = "What is 1 + 1? " * 400  # about 3,200 tokens: far beyond the context


def multiprocess_model(**update: Any) -> Any:
    """tiny.yaml's model on vLLM's default multiprocess engine, with a 512-token context."""
    from sweep.config import load_config

    model = load_config(TINY).models[0]
    return model.model_copy(update={"engine": {"max_model_len": CONTEXT}, "env": {}, **update})


@pytest.fixture(scope="module")
def mp_pool(ray_address: str) -> Iterator[Any]:
    import ray

    from actors.pool import start_engines
    from actors.spec import resolve_engine_spec

    spec = resolve_engine_spec(multiprocess_model(), cluster_has_gpus=False, seed=0)
    assert "VLLM_ENABLE_V1_MULTIPROCESSING" not in spec.env
    pool = start_engines(spec, max_restarts=2)
    ray.get([h.ready.remote() for h in pool.handles], timeout=600)
    yield pool
    pool.shutdown()


def request(request_id: str, prompt: str, **sampling: Any) -> Any:
    from actors.protocol import GenerationRequest

    return GenerationRequest(request_id, prompt=prompt, sampling={"max_tokens": 8, "temperature": 0.0, **sampling})


def test_over_long_problem_in_a_shard_of_one_is_an_error_row(mp_pool: Any, tmp_path: Path) -> None:
    from sweep.config import load_config
    from sweep.driver import run_sweep

    data = tmp_path / "mixed.jsonl"
    questions = [("a", "What is 2 + 3?", "5"), ("b", HUGE, "2"), ("c", "What is 7 - 4?", "3")]
    data.write_text("".join(json.dumps({"id": i, "question": q, "answer": a}) + "\n" for i, q, a in questions))
    raw = yaml.safe_load(TINY.read_text())
    raw["models"] = [multiprocess_model().model_dump(mode="json", exclude_defaults=True)]
    raw["datasets"] = [
        {
            "name": "mixed",
            "source": "jsonl",
            "path": str(data),
            "fields": {"id": "id", "question": "question", "answer": "answer"},
            "grader": "numeric",
        }
    ]
    raw["strategies"] = [{"name": "greedy"}, {"name": "sampling", "n": [2], "temperature": 0.7}]
    raw["scheduler"]["shard_size"] = 1
    raw["output"] = str(tmp_path / "out")
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump(raw))

    started = time.monotonic()
    outcome = run_sweep(load_config(grid), show_progress=False, write_report=False)
    seconds = time.monotonic() - started
    assert not outcome.shards_failed and not outcome.dead_engines

    import pyarrow.dataset as ds

    from sweep.results.schema import SAMPLES

    files = sorted(str(f) for f in (tmp_path / "out" / "samples").rglob("*.parquet"))
    rows = ds.dataset(files, format="parquet", schema=SAMPLES).to_table().to_pylist()
    assert len(rows) == 3 * (1 + 2)  # every problem, every sample: the refused one too
    for row in rows:
        if row["problem_id"] == "b":
            assert row["error"] and "maximum context length" in row["error"], row["error"]
            assert row["completion_tokens"] == 0 and not row["correct"]
        else:
            assert row["error"] is None and row["completion_tokens"] > 0
    print(f"sweep with an over-long problem: {seconds:.1f} s")


def test_refused_requests_fail_alone_and_the_engine_serves_on(mp_pool: Any) -> None:
    from actors.protocol import RequestFailed
    from actors.remote import RemoteEngine

    engine = RemoteEngine(mp_pool.handles[0], timeout_s=120)
    for _ in range(2):  # refused twice in a row: the loop must come back to waiting each time
        started = time.monotonic()
        (long,) = engine.generate([request("long", HUGE)])
        assert long.error and "maximum context length" in long.error and not long.completions
        assert time.monotonic() - started < 10

        (short,) = engine.generate([request("short", "What is 2 + 2?")])
        assert short.error is None and short.completions[0].tokens > 0

    # Bad parameters: refused alone, beside a request that runs.
    bad, good = engine.generate([request("bad", "2 + 2 =", temperature=-1.0), request("good", "2 + 2 =")])
    assert bad.error and "temperature" in bad.error and good.error is None and good.completions

    # The scoring reads have no error slot: the batch raises, at once, and the engine serves on.
    started = time.monotonic()
    with pytest.raises(RequestFailed, match="1 of 2 reads failed"):
        engine.next_token_logprobs([HUGE, "2 + 2 ="], [" 4", " 5"])
    with pytest.raises(RequestFailed):
        engine.completion_logprobs([(HUGE, " 2")])
    assert time.monotonic() - started < 10
    ((tokens, read),) = engine.next_token_logprobs(["2 + 2 ="], [" 4", " 5"])
    assert tokens > 0 and read[" 4"] > float("-inf")


def test_a_request_past_its_deadline_is_aborted_and_reported(mp_pool: Any) -> None:
    from actors.protocol import DeadlineExceeded
    from actors.remote import RemoteEngine

    hurried = RemoteEngine(mp_pool.handles[0], timeout_s=0.3)
    long_answer = {"max_tokens": 400, "ignore_eos": True}  # seconds of decoding on 2 cores
    started = time.monotonic()
    (late,) = hurried.generate([request("late", "Count from 1 to 500:", **long_answer)])
    assert late.error and "DeadlineExceeded" in late.error and not late.completions
    assert time.monotonic() - started < 10
    with pytest.raises(DeadlineExceeded):
        hurried.completion_logprobs([(f"Count {i}:", " 1 2" * 60) for i in range(64)])  # 64 x ~240 tokens

    (next_one,) = RemoteEngine(mp_pool.handles[0], timeout_s=120).generate([request("next", "2 + 2 =")])
    assert next_one.error is None and next_one.completions[0].tokens > 0


def test_caller_gives_up_on_an_actor_that_never_answers(ray_address: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault injected: an actor that never answers (a wedged process). The caller's wait is
    bounded at the deadline plus its grace, and then fails the call."""
    import ray

    import actors.remote
    from actors.remote import EngineTimeout, RemoteEngine

    @ray.remote(num_cpus=0)
    class Silent:
        async def generate(self, requests: Any, timeout_s: float | None = None) -> Any:
            import asyncio

            await asyncio.sleep(3600)

    monkeypatch.setattr(actors.remote, "STUCK_AFTER_S", 0.5)
    handle = Silent.remote()
    started = time.monotonic()
    with pytest.raises(EngineTimeout, match="gave no answer in 1.5 s"):
        RemoteEngine(handle, timeout_s=0.5).generate([request("x", "2 + 2 =")])
    assert time.monotonic() - started < 10
    ray.kill(handle)


def test_replicas_beyond_the_cluster_fail_fast_naming_the_model(ray_address: str, tmp_path: Path) -> None:
    """The session cluster has 4 CPUs and no autoscaler: 5 one-CPU replicas can never run."""
    import ray

    from actors.pool import NAMESPACE
    from actors.spec import resolve_engine_spec
    from sweep.config import load_config

    raw = yaml.safe_load(TINY.read_text())
    raw["models"][0].update({"replicas": 5, "engine": {"max_model_len": 256}})  # an actor of its own
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump(raw))
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "sweep.launch", str(grid), "--output", str(tmp_path / "out"), "--no-progress"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    seconds = time.monotonic() - started
    assert done.returncode == 1, done.stderr[-3000:]
    assert "error: the engine of model smollm2-135m-instruct" in done.stderr
    assert "5 replicas needing CPU 1 each cannot be placed" in done.stderr
    assert "hold 4 at most" in done.stderr
    assert seconds < 120, f"took {seconds:.0f} s"
    spec = resolve_engine_spec(load_config(grid).models[0], cluster_has_gpus=False, seed=0)
    with pytest.raises(ValueError):  # no actor was started for it
        ray.get_actor(f"{spec.actor_prefix}-0", namespace=NAMESPACE)


def test_a_model_whose_replicas_find_no_node_is_given_up_on(ray_address: str) -> None:
    """Room for it in the cluster, but not now (another actor holds a CPU) and no autoscaler:
    the watch gives up after its wait, naming the model; a placed model is reported placed."""
    import ray

    from actors.pool import EnginePool
    from actors.spec import EngineSpec
    from actors.watch import ReplicaWatch

    @ray.remote
    class Idle:
        def ready(self) -> int:
            return 1

    holder = Idle.options(num_cpus=1).remote()
    ray.get(holder.ready.remote(), timeout=60)
    big, small = Idle.options(num_cpus=4).remote(), Idle.options(num_cpus=0).remote()
    ray.get(small.ready.remote(), timeout=60)

    def pool(name: str, handle: Any, cpus: float) -> EnginePool:
        spec = EngineSpec(
            model=name, path="/m", params=1, device="cpu", replicas=1, engine_kwargs={}, env={}, seed=0,
            identity={"model": name}, resources={"CPU": cpus},
        )  # fmt: skip
        return EnginePool(spec=spec, handles=[handle], owned=[True])

    watch = ReplicaWatch({"big": pool("big", big, 4), "small": pool("small", small, 0)}, wait_s=2.0)
    given_up: dict[str, str] = {}
    started = time.monotonic()
    while watch.waiting and not given_up and time.monotonic() - started < 30:
        given_up.update(watch.poll())
        time.sleep(0.2)
    assert set(given_up) == {"big"}
    assert "no replica of big found a node in 2 s; each needs CPU 4, and no autoscaler" in given_up["big"]
    assert watch.ready("small") == [0] and watch.ready("big") == []
    for handle in (holder, big, small):
        ray.kill(handle)


@pytest.mark.parametrize(("error", "refused"), [("RequestFailed", True), ("DeadlineExceeded", False)])
def test_a_shard_is_retried_unless_its_engine_refused_a_request(ray_address: str, error: str, refused: bool) -> None:
    """A refused request is refused again on a retry; a late one may pass on a less busy engine.
    The error comes through two Ray tasks, as from the engine actor through a shard task."""
    import ray

    import actors.protocol
    from sweep.scheduler import _refused

    @ray.remote
    def engine_call() -> None:
        raise getattr(actors.protocol, error)("no")

    @ray.remote
    def shard_task() -> None:
        ray.get(engine_call.remote())

    with pytest.raises(ray.exceptions.RayTaskError) as failure:
        ray.get(shard_task.remote(), timeout=60)
    assert _refused(failure.value) is refused
