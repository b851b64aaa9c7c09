"""Sweep overhead: tokens/s of a sweep against the same prompts sent straight to a bare vLLM engine.

Both sides use the same model, engine options, environment, rendered prompts and sampling
parameters. Engine start-up is excluded on both sides: the bare engine is timed around
``LLM.generate``; the sweep's engine actor is started and loaded first (the launcher then
reuses it), and the sweep is timed from submission of the first shard to the summary.

    .venv/bin/python benchmarks/sweep_overhead.py [--problems 32] [--n 8] [--max-tokens 128]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def grid(problems: int, n: int, max_tokens: int, output: str) -> dict:
    return {
        "name": "overhead",
        "output": output,
        "seed": 0,
        "models": [{"name": "smollm2-135m-instruct", "engine": {"max_model_len": 2048}}],
        "datasets": [{"name": "arithmetic", "source": "arithmetic", "count": problems, "levels": [1, 2]}],
        "strategies": [{"name": "sampling", "n": [n], "temperature": 0.7}],
        "generation": {"max_tokens": max_tokens},
        # Enough shards in flight that every request is queued at once, as in the bare call.
        "scheduler": {"shard_size": 8, "max_inflight_per_engine": 4},
    }


BARE = r"""
import json, sys, time
from vllm import LLM, SamplingParams
spec = json.load(open(sys.argv[1]))
llm = LLM(model=spec["path"], seed=spec["seed"], **spec["engine"])
params = SamplingParams(**spec["sampling"], logprobs=0)
llm.generate(spec["prompts"][:2], params, use_tqdm=False)  # warm-up, as the sweep's engine had
start = time.perf_counter()
outputs = llm.generate(spec["prompts"], params, use_tqdm=False)
seconds = time.perf_counter() - start
tokens = sum(len(c.token_ids) for o in outputs for c in o.outputs)
print("RESULT " + json.dumps({"tokens": tokens, "seconds": seconds}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=32)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--pairs", type=int, default=3, help="bare/sweep pairs, alternated (the machine drifts)")
    args = parser.parse_args()

    import ray
    import yaml

    from actors.pool import start_engines
    from actors.spec import resolve_engine_spec
    from sweep.config import load_config
    from sweep.driver import run_sweep
    from sweep.preflight import prepare_problems

    scratch = Path(tempfile.mkdtemp(prefix="overhead-"))
    config_path = scratch / "grid.yaml"
    config_path.write_text(yaml.safe_dump(grid(args.problems, args.n, args.max_tokens, str(scratch / "out"))))
    config = load_config(config_path)
    spec = resolve_engine_spec(config.models[0], cluster_has_gpus=False, seed=config.seed)

    # The exact prompt texts the sweep's engine renders (same tokenizer chat template).
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(spec.path)
    prompted = prepare_problems(config)["arithmetic"]
    prompts = [tokenizer.apply_chat_template(p.messages, tokenize=False, add_generation_prompt=True) for p in prompted]
    sampling = {"n": args.n, "temperature": 0.7, "top_p": 1.0, "max_tokens": args.max_tokens}

    spec_file = scratch / "bare.json"
    spec_file.write_text(json.dumps({"path": spec.path, "seed": spec.seed, "engine": spec.engine_kwargs, "prompts": prompts, "sampling": sampling}))

    def run_bare() -> float:
        """A bare engine in its own process, with the same environment the engine actor gets."""
        done = subprocess.run(
            [sys.executable, "-c", BARE, str(spec_file)], env={**os.environ, **spec.env}, capture_output=True, text=True, check=True
        )
        result = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[7:])
        print(f"bare vLLM engine : {result['tokens']:>7.0f} tokens in {result['seconds']:6.1f} s = {result['tokens'] / result['seconds']:6.1f} tokens/s", flush=True)
        return result["tokens"] / result["seconds"]

    def run_launcher(pair: int) -> float:
        """The whole launcher path (shards, grading, Parquet, DuckDB) on the loaded engine."""
        fresh = config.model_copy(update={"output": str(scratch / f"out-{pair}")})
        start = time.perf_counter()
        outcome = run_sweep(fresh, show_progress=False)
        seconds = time.perf_counter() - start
        tokens = sum(r["tokens_per_problem"] * r["problems"] for r in outcome.summary.to_pylist())
        print(f"sweep (launcher) : {tokens:>7.0f} tokens in {seconds:6.1f} s = {tokens / seconds:6.1f} tokens/s", flush=True)
        return tokens / seconds

    ray.init(num_cpus=4, include_dashboard=False, logging_level="WARNING")
    pool = start_engines(spec, max_restarts=0)
    ray.get([h.ready.remote() for h in pool.handles])  # the engine loads once, outside the timing
    ratios = []
    for pair in range(args.pairs):
        bare_rate = run_bare()
        sweep_rate = run_launcher(pair)
        ratios.append(sweep_rate / bare_rate)
        print(f"pair {pair}: ratio sweep/bare = {ratios[-1]:.3f}", flush=True)
    pool.shutdown()
    ray.shutdown()
    print(f"ratio sweep/bare : median {statistics.median(ratios):.3f} (pairs: {', '.join(f'{r:.3f}' for r in ratios)})")


if __name__ == "__main__":
    main()
