"""OpenAI endpoint latency: greedy through ``POST /v1/chat/completions`` (the official ``openai``
client, over loopback HTTP and Ray Serve) against the same greedy request sent straight to the
engine actor (``RemoteEngine.generate``, in-process, no HTTP, no Serve).

Starts its own local Ray (own temp folder, no dashboard), starts (or finds) the engine of the
grid's first model, runs the grid into ``output`` when that folder has no results yet, serves
the app over it and times both paths, alternating, after a warm-up of each. Both read the same
prompt (the dataset's template around one question) and decode the same greedy completion, so
the difference is what the endpoint adds: HTTP and JSON, Serve's routing, validation, the
mapping to a configuration, the tokenizer's length check and the answer's extraction.

    .venv/bin/python benchmarks/openai_latency.py /tmp/openai-bench [--grid tests/configs/tiny.yaml] [--repeats 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from bench_common import ROOT, local_serve, percentile

QUESTION = "Tom has 3 apples. He buys 2 more apples. How many apples does Tom have now?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", help="a results folder; the grid is run into it when it has no manifest")
    parser.add_argument("--grid", default=str(ROOT / "tests" / "configs" / "tiny.yaml"))
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()

    import openai
    import ray
    from ray import serve

    from actors.pool import start_engines
    from actors.protocol import GenerationRequest
    from actors.remote import RemoteEngine
    from actors.spec import resolve_engine_spec
    from sweep.config import load_config
    from sweep.data.problems import Problem
    from sweep.data.prompting import prompt_problems
    from sweep.driver import run_sweep
    from sweep.serve.app import build_app

    output = Path(args.output).resolve()
    config = load_config(args.grid).model_copy(update={"output": str(output)})
    with local_serve("openai-bench-") as port:
        spec = resolve_engine_spec(config.models[0], cluster_has_gpus=False, seed=config.seed)
        pool = start_engines(spec, max_restarts=3)
        ray.get([h.ready.remote() for h in pool.handles], timeout=900)
        if not (output / "manifest.json").is_file():
            run_sweep(config, show_progress=False, write_report=False)
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_app(str(output)), name="openai-bench", route_prefix="/")
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)

        # The direct call: the request the greedy strategy sends for this question.
        dataset = config.datasets[0]
        problem = Problem(
            dataset=dataset.name, problem_id="bench", question=QUESTION, answer="", grader=dataset.grader
        )
        (prompted,) = prompt_problems([problem], dataset)
        greedy = next(s for s in config.strategies if s.name == "greedy")
        sampling = greedy.sampling(config.generation, n=1)
        request = GenerationRequest(
            request_id="bench", messages=prompted.messages, prompt=prompted.prompt, sampling=sampling, seed=config.seed
        )
        engine = RemoteEngine(pool.handles[0])

        def direct() -> tuple[float, int]:
            start = time.perf_counter()
            (result,) = engine.generate([request])
            return time.perf_counter() - start, result.completions[0].tokens

        def endpoint() -> tuple[float, int]:
            start = time.perf_counter()
            answer = client.chat.completions.create(
                model=config.models[0].name,
                messages=[{"role": "user", "content": QUESTION}],
            )
            return time.perf_counter() - start, answer.usage.completion_tokens

        for _ in range(3):  # warm-up: the app's tokenizer, accuracy table and engine lookup; the prefix cache
            direct()
            endpoint()
        direct_s, endpoint_s, tokens = [], [], set()
        for _ in range(args.repeats):  # alternating, so load on the shared cores hits both alike
            seconds, n = direct()
            direct_s.append(seconds)
            tokens.add(("direct", n))
            seconds, n = endpoint()
            endpoint_s.append(seconds)
            tokens.add(("endpoint", n))

    added = [e - d for e, d in zip(endpoint_s, direct_s, strict=True)]
    result = {
        "grid": args.grid,
        "repeats": args.repeats,
        "completion_tokens": sorted(tokens),
        "direct_p50_ms": statistics.median(direct_s) * 1000,
        "endpoint_p50_ms": statistics.median(endpoint_s) * 1000,
        "added_p50_ms": statistics.median(added) * 1000,
        "added_p90_ms": percentile(added, 0.9) * 1000,
    }
    print(
        f"greedy, {args.repeats} alternating pairs: direct engine call p50 {result['direct_p50_ms']:.1f} ms, "
        f"/v1/chat/completions p50 {result['endpoint_p50_ms']:.1f} ms; added p50 "
        f"{result['added_p50_ms']:.1f} ms, p90 {result['added_p90_ms']:.1f} ms"
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
