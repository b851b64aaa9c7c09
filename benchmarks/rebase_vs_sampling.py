"""REBASE against flat sampling on the same engine: generated tokens/s, and FLOPs per problem.

One engine actor (started here, warm, reused by every sweep) serves four sweeps in
alternation, S R R S: ``sampling`` draws N samples per problem, ``rebase`` searches with
budget N and the same model as its step-token PRM. Engine start-up is excluded; each side's
time is the launcher's wall time for its sweep (shards, PRM scoring, grading, writes).
Tokens/s counts generated tokens (tree nodes for REBASE, completions for sampling); FLOPs per
problem come from ``compute_accuracy`` (policy and reward model, weighted vote at n = N, for
which both sides pay for the PRM).

    .venv/bin/python benchmarks/rebase_vs_sampling.py [--problems 40] [--budget 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PRM = {
    "name": "smol-prm",
    "path": "smollm2-135m-instruct",
    "engine": {"max_model_len": 2048},
    "tag": "\nIs this step correct?",
    "good": " Yes",
    "bad": " No",
    "delimiter": "\n",
}


def grid(name: str, output: Path, strategy: dict, args: argparse.Namespace) -> dict:
    return {
        "name": name,
        "output": str(output),
        "models": [{"name": "smollm2-135m-instruct", "engine": {"max_model_len": 2048}}],
        "datasets": [{"name": "arithmetic", "source": "arithmetic", "count": args.problems, "levels": [1, 2]}],
        "reward_models": [PRM],
        "strategies": [strategy],
        "generation": {"max_tokens": args.max_tokens},
        "scheduler": {"shard_size": args.shard_size, "max_inflight_per_engine": args.inflight},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    sizes = {"--problems": 40, "--budget": 8, "--max-tokens": 160, "--shard-size": 5, "--inflight": 4}
    for flag, default in sizes.items():
        parser.add_argument(flag, type=int, default=default)
    args = parser.parse_args()

    import duckdb
    import ray

    from actors.pool import start_engines
    from actors.spec import resolve_engine_spec
    from analysis.estimators import compute_accuracy
    from analysis.views import connect
    from sweep.config import load_config
    from sweep.driver import run_sweep

    scratch = Path(tempfile.mkdtemp(prefix="rebase-bench-"))
    strategies = {
        "sampling": {"name": "sampling", "n": [args.budget], "temperature": 0.7, "reward_model": "smol-prm"},
        "rebase": {
            "name": "rebase",
            "budgets": [args.budget],
            "reward_model": "smol-prm",
            "temperature": 0.7,
            "step_max_tokens": 48,
            "max_tokens": args.max_tokens,
        },
    }
    ray.init(num_cpus=4, include_dashboard=False, logging_level="WARNING")
    first = load_config(_write(scratch / "warm.yaml", grid("warm", scratch / "warm", strategies["sampling"], args)))
    pool = start_engines(resolve_engine_spec(first.models[0], cluster_has_gpus=False, seed=0), max_restarts=0)
    ray.get([h.ready.remote() for h in pool.handles])

    rates: dict[str, list[float]] = {"sampling": [], "rebase": []}
    flops: dict[str, list[tuple[float, float]]] = {"sampling": [], "rebase": []}
    for run, kind in enumerate(["sampling", "rebase", "rebase", "sampling"]):
        output = scratch / f"{kind}-{run}"
        config = load_config(_write(scratch / f"{kind}-{run}.yaml", grid(kind, output, strategies[kind], args)))
        start = time.perf_counter()
        outcome = run_sweep(config, show_progress=False, write_report=False)
        seconds = time.perf_counter() - start
        assert not outcome.shards_failed, outcome.shards_failed
        table = "nodes" if kind == "rebase" else "samples"
        column = "tokens" if kind == "rebase" else "completion_tokens"
        tokens = duckdb.sql(
            f"SELECT sum({column}) FROM read_parquet($glob)", params={"glob": f"{output}/{table}/**/*.parquet"}
        ).fetchall()[0][0]
        rates[kind].append(tokens / seconds)
        curves = compute_accuracy(connect(str(output)), resamples=10)
        # Weighted vote: the method for which both sides pay for the reward model.
        row = curves[(curves["method"] == "weighted_vote_last") & (curves["n"] == args.budget)].iloc[0]
        flops[kind].append((row["policy_flops_per_problem"], row["reward_flops_per_problem"]))
        print(f"{kind:8} run {run}: {tokens:>6} tokens in {seconds:6.1f} s = {tokens / seconds:6.1f} tok/s; "
              f"FLOPs/problem policy {row['policy_flops_per_problem']:.3e} reward {row['reward_flops_per_problem']:.3e}; "
              f"accuracy {row['accuracy']:.3f}")  # fmt: skip
    pool.shutdown()
    ray.shutdown()

    pairs = [r / s for r, s in zip(rates["rebase"], reversed(rates["sampling"]), strict=True)]
    print(f"REBASE/sampling tokens/s: pairs {[round(p, 3) for p in pairs]}, mean {statistics.mean(pairs):.3f}")
    policy = statistics.mean(f[0] for f in flops["rebase"]) / statistics.mean(f[0] for f in flops["sampling"])
    reward = statistics.mean(f[1] for f in flops["rebase"]) / statistics.mean(f[1] for f in flops["sampling"])
    print(f"REBASE/sampling FLOPs per problem at N={args.budget}: policy {policy:.3f}, reward model {reward:.3f}")


def _write(path: Path, data: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(data))
    return path


if __name__ == "__main__":
    main()
