"""Sample reuse: tokens generated for the grid n ∈ {1,2,4,8} from one draw, against regenerating per n.

One sweep holds both: strategy ``reuse`` draws n_max = 8 samples once and evaluates every n
from them; strategies ``regen-1`` … ``regen-8`` draw 1, 2, 4 and 8 samples separately, as a
sweep without reuse would. Expected ratio about 8 / (1+2+4+8) = 0.53.

    .venv/bin/python benchmarks/sample_reuse.py [--problems 20] [--max-tokens 128]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NS = [1, 2, 4, 8]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()

    import duckdb
    import ray
    import yaml

    from sweep.config import load_config
    from sweep.driver import run_sweep

    scratch = Path(tempfile.mkdtemp(prefix="reuse-"))
    grid = {
        "name": "reuse",
        "output": str(scratch / "out"),
        "models": [{"name": "smollm2-135m-instruct", "engine": {"max_model_len": 2048}}],
        "datasets": [{"name": "arithmetic", "source": "arithmetic", "count": args.problems, "levels": [1, 2]}],
        "strategies": [{"name": "sampling", "label": "reuse", "n": NS, "temperature": 0.7}]
        + [{"name": "sampling", "label": f"regen-{n}", "n": [n], "temperature": 0.7} for n in NS],
        "generation": {"max_tokens": args.max_tokens},
        "scheduler": {"shard_size": 10, "max_inflight_per_engine": 4},
    }
    (scratch / "grid.yaml").write_text(yaml.safe_dump(grid))
    config = load_config(scratch / "grid.yaml")

    ray.init(num_cpus=4, include_dashboard=False, logging_level="WARNING")
    run_sweep(config, show_progress=False)
    ray.shutdown()

    rows = duckdb.sql(
        "SELECT strategy, sum(completion_tokens) AS tokens, count(*) AS samples "
        "FROM read_parquet($glob) GROUP BY strategy ORDER BY strategy",
        params={"glob": f"{config.output}/samples/**/*.parquet"},
    ).fetchall()
    tokens = {strategy: int(t) for strategy, t, _ in rows}
    samples = {strategy: int(n) for strategy, _, n in rows}
    regen = sum(tokens[f"regen-{n}"] for n in NS)
    print(f"reuse  : {samples['reuse']:>5} samples, {tokens['reuse']:>7} tokens (one draw of n_max=8)")
    print(f"regen  : {sum(samples[f'regen-{n}'] for n in NS):>5} samples, {regen:>7} tokens (n = {NS} drawn separately)")
    print(f"ratio reuse/regen tokens: {tokens['reuse'] / regen:.3f} (8/15 = {8 / 15:.3f})")


if __name__ == "__main__":
    main()
