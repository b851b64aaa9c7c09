"""Demo task: where does SmolLM2-135M show the scaling laws? Level × temperature on the real engine.

Runs one sweep with the product's own machinery (``sweep.driver.run_sweep``) on a grid this
script writes: one arithmetic dataset per level (``--problems`` each, seeded), greedy, and one
``sampling`` strategy per temperature drawing 8 samples per problem. It then reads the run with
``analysis.views.connect`` and ``analysis.estimators.compute_accuracy`` (n = 1, 2, 4, 8), so
every figure is the one the report computes, and prints one row per (level, temperature):

- per-sample accuracy: pass@1, the mean over each problem's 8 samples;
- MV@8 with its bootstrap interval over problems (``compute_accuracy``'s ``ci_low``/``ci_high``);
- MV@8 - MV@1, the voting gain, with a paired interval: replicate b of every row of a dataset
  used the same draw of problems, so the differences of the replicates bootstrap the gain;
- pass@n for n = 1, 2, 4, 8 (unbiased pass@k), greedy accuracy, tokens and unanswered share.

A row "shows the laws" when per-sample accuracy is in [0.3, 0.7], the gain exceeds MV@8's
interval half-width and its own interval lies above 0, and pass@n rises at every step.
The defaults are the grid of BENCHMARKS.md's "Demo task" table (~8 min of engine on 2 cores):

    flock /tmp/engine-tests.lock timeout 1500 .venv/bin/python benchmarks/demo_task.py --output /tmp/demo-task

A rerun into the same ``--output`` skips finished shards (a superset grid only runs what is new).
``--table-only`` prints the table of the folder's latest run without starting anything.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_common  # noqa: F401 - puts the repository on sys.path

MODEL = "smollm2-135m-instruct"
N_MAX = 8
N_VALUES = [1, 2, 4, N_MAX]


def dataset_name(level: int, shots: int, *, several: bool) -> str:
    return f"L{level}-fs{shots}" if several else f"L{level}"


def temperature_label(temperature: float) -> str:
    return f"t{temperature:g}"


def build_grid(args: argparse.Namespace) -> dict[str, Any]:
    """The sweep grid: one dataset per level, greedy and one sampling strategy per temperature."""
    return {
        "name": "demo-task",
        "output": str(args.output),
        "seed": args.seed,
        "models": [
            {
                "name": MODEL,
                "engine": {"max_model_len": 2048},
                "env": {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"},  # engine in-process: starts in seconds
            }
        ],
        "datasets": [
            {
                "name": dataset_name(level, shots, several=len(args.few_shot) > 1),
                "source": "arithmetic",
                "count": args.problems,
                "levels": [level],
                "seed": args.seed,
                "prompt": {"few_shot": shots},
            }
            for level in args.levels
            for shots in args.few_shot
        ],
        "strategies": [{"name": "greedy"}]
        + [
            {"name": "sampling", "label": temperature_label(t), "n": N_VALUES, "temperature": t}
            for t in args.temperatures
        ],
        "generation": {"max_tokens": args.max_tokens},
        "scheduler": {"shard_size": args.shard_size, "max_inflight_per_engine": 4},
    }


def run(args: argparse.Namespace) -> float:
    """Run (or resume) the grid on a local Ray cluster of our own; returns the wall seconds."""
    import ray
    import yaml

    from sweep.config import load_config
    from sweep.driver import run_sweep

    args.output.mkdir(parents=True, exist_ok=True)
    grid_path = args.output / "grid.yaml"
    grid_path.write_text(yaml.safe_dump(build_grid(args), sort_keys=False))
    config = load_config(grid_path)
    os.environ.pop("RAY_ADDRESS", None)  # never attach to someone else's cluster
    temp_dir = tempfile.mkdtemp(prefix="demo-task-ray-", dir="/tmp")
    ray.init(
        address="local", num_cpus=4, include_dashboard=False, _temp_dir=temp_dir, logging_level="WARNING"
    )
    try:
        started = time.perf_counter()
        outcome = run_sweep(config, show_progress=False, write_report=False)
        seconds = time.perf_counter() - started
    finally:
        ray.shutdown()
    if outcome.shards_failed:
        raise SystemExit(f"failed shards: {outcome.shards_failed}")
    return seconds


def measure(output: Path) -> list[dict[str, Any]]:
    """One row per (level, temperature) from the run's ``compute_accuracy`` table."""
    import numpy as np

    from analysis.estimators import compute_accuracy
    from analysis.views import connect

    con = connect(str(output))
    table = compute_accuracy(con, n_values=N_VALUES, seed=0)
    # What compute_accuracy does not report: the cell's temperature, length and unanswered share.
    usage = con.sql(
        "SELECT dataset, strategy, any_value(temperature) AS temperature, "
        "avg(completion_tokens) AS tokens, avg((extracted_answer IS NULL)::INT) AS unanswered "
        "FROM samples GROUP BY ALL"
    ).df()

    def cell(dataset: str, strategy: str, method: str, n: int) -> Any:
        where = (table.dataset == dataset) & (table.strategy == strategy)
        rows = table[where & (table.method == method) & (table.n == n)]
        assert len(rows) == 1, (dataset, strategy, method, n, len(rows))
        return rows.iloc[0]

    rows = []
    for dataset in sorted(table.dataset.unique()):
        greedy = cell(dataset, "greedy", "greedy", 1)
        for strategy in sorted(s for s in table[table.dataset == dataset].strategy.unique() if s != "greedy"):
            mv1 = cell(dataset, strategy, "majority_vote", 1)
            mv8 = cell(dataset, strategy, "majority_vote", N_MAX)
            passes = [cell(dataset, strategy, "pass_at_n", n).accuracy for n in N_VALUES]
            gain = np.asarray(mv8.accuracy_replicates) - np.asarray(mv1.accuracy_replicates)  # paired
            used = usage[(usage.dataset == dataset) & (usage.strategy == strategy)].iloc[0]
            rows.append(
                {
                    "dataset": dataset,
                    "temperature": round(float(used.temperature), 3),
                    "problems": int(mv8.problems),
                    "sample": float(passes[0]),
                    "mv8": float(mv8.accuracy),
                    "mv8_low": float(mv8.ci_low),
                    "mv8_high": float(mv8.ci_high),
                    "gain": float(mv8.accuracy - mv1.accuracy),
                    "gain_low": float(np.percentile(gain, 2.5)),
                    "gain_high": float(np.percentile(gain, 97.5)),
                    "pass": [float(p) for p in passes],
                    "greedy": float(greedy.accuracy),
                    "tokens": float(used.tokens),
                    "unanswered": float(used.unanswered),
                }
            )
    return rows


def shows_laws(row: dict[str, Any]) -> bool:
    half_width = (row["mv8_high"] - row["mv8_low"]) / 2
    rising = all(a < b for a, b in zip(row["pass"], row["pass"][1:]))
    return 0.3 <= row["sample"] <= 0.7 and row["gain"] > half_width and row["gain_low"] > 0 and rising


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| dataset | T | per-sample | MV@8 [95% CI] | MV@8 − MV@1 [paired 95% CI] | pass@1/2/4/8 | greedy "
        "| tokens/sample | no answer | laws show |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["dataset"], r["temperature"])):
        passes = " / ".join(f"{p:.2f}" for p in r["pass"])
        lines.append(
            f"| {r['dataset']} | {r['temperature']:g} | {r['sample']:.2f} "
            f"| {r['mv8']:.2f} [{r['mv8_low']:.2f}, {r['mv8_high']:.2f}] "
            f"| {r['gain']:+.2f} [{r['gain_low']:+.2f}, {r['gain_high']:+.2f}] "
            f"| {passes} | {r['greedy']:.2f} | {r['tokens']:.0f} | {r['unanswered']:.0%} "
            f"| {'yes' if shows_laws(r) else 'no'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--levels", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--temperatures", type=float, nargs="+", default=[0.4, 0.7, 1.0])
    parser.add_argument("--problems", type=int, default=40, help="problems per level")
    parser.add_argument("--seed", type=int, default=0, help="the generator's and the sweep's seed")
    parser.add_argument("--few-shot", type=int, nargs="+", default=[2], help="shots; a dataset each")
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--shard-size", type=int, default=8)
    parser.add_argument("--output", type=Path, default=Path(tempfile.gettempdir()) / "demo-task")
    parser.add_argument("--table-only", action="store_true", help="read the latest run; start nothing")
    args = parser.parse_args()

    if not args.table_only:
        seconds = run(args)
        print(f"sweep: {seconds:.0f} s wall")
    rows = measure(args.output)
    problems = ", ".join(str(p) for p in sorted({r["problems"] for r in rows}))
    print(f"SmolLM2-135M-Instruct, arithmetic seed {args.seed}, {problems} problems per level")
    print(format_table(rows))
    (args.output / "demo_task.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
