"""Estimators at scale: ``compute_accuracy`` on 10M synthetic samples against a pandas baseline.

Writes 10,000,384 sample rows (2 models × 2 strategies × 9,766 problems × 256 samples, with
reward scores) as Parquet through ResultsStore into a temporary folder, then runs, each in its
own subprocess so that its peak RSS (``ru_maxrss``) is its own:

(a) ``compute_accuracy`` with every estimator, R = 100 resamples, n = 1, 2, 4, ..., 256, and
    B = 1000 bootstrap replicates over problems for the intervals; then the fits (saturation,
    log-FLOPs, compute-optimal) refit on every replicate;
    The bootstrap's own time inside (a) is read from ``compute_accuracy``'s log record, since
    other work on shared cores makes the difference of two whole runs mostly noise; so is the
    adaptive stopping replay's (``analysis/adaptive.py``: its six default rules, each on random
    orderings of every problem's 256 samples, 13 per problem at this size; ``--no-adaptive``
    leaves it out);
(b) a straightforward pandas majority-vote curve over the same kind of random subsets
    (shuffle, ``groupby.cumcount`` for the position, ``groupby`` vote counts per n; ties to the
    lowest sample index, as in (a)), on ``--pandas-resamples`` of the R resamples and scaled
    linearly to R: loading once, plus R times the measured time per resample (each resample is
    the same work; full R takes over ten minutes).

The speed ratio compares the majority-vote curve: pandas' (scaled) time against the whole of (a),
which computes eight more voting estimators and pass@n besides, so it understates the ratio.
The two majority-vote curves use different random subsets; their largest gap is printed as a
check that they compute the same thing (expect about 0.01 or less).

    .venv/bin/python benchmarks/analysis_10m.py [--problems 9766] [--resamples 100] [--bootstrap 1000]
        [--pandas-resamples 3] [--no-adaptive] [--data FOLDER] [--skip-pandas]
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

MODELS = {"model-a": 7_000_000_000, "model-b": 34_000_000_000}
STRATEGIES = ("sampling", "sampling-t07")
SAMPLES = 256
SHARD_PROBLEMS = 1000
WRONG_KEYS = 12  # wrong answers per problem, drawn with Zipf-like weights
NO_ANSWER = 0.05  # chance a sample has no extracted answer
REWARD_PARAMS = 34_000_000_000


def generate(output: Path, *, problems: int, seed: int = 0) -> int:
    """Write the synthetic sweep; returns the number of sample rows."""
    from sweep.results.schema import SAMPLES as SCHEMA
    from sweep.results.store import ResultsStore

    store = ResultsStore(str(output))
    rng = np.random.default_rng(seed)
    keys = pa.array([f"k{k}" for k in range(WRONG_KEYS + 1)])  # k0 is the right answer
    wrong_cdf = np.cumsum(1 / np.arange(1, WRONG_KEYS + 1)) / np.sum(1 / np.arange(1, WRONG_KEYS + 1))
    rows = 0
    for (model, params), strategy in [(m, s) for m in MODELS.items() for s in STRATEGIES]:
        skill = rng.beta(1.2, 1.6, size=problems)  # (problem,) -> chance a sample is right
        for start in range(0, problems, SHARD_PROBLEMS):
            p = np.arange(start, min(start + SHARD_PROBLEMS, problems))
            size = len(p) * SAMPLES
            u = rng.random((len(p), SAMPLES))  # (problem, sample)
            right = u < skill[p, None]
            key = np.where(right, 0, 1 + np.searchsorted(wrong_cdf, rng.random(u.shape)))
            answered = rng.random(u.shape) >= NO_ANSWER
            tokens = rng.integers(100, 700, size=u.shape).astype(np.int32)
            prompt_tokens = np.repeat(rng.integers(50, 300, size=len(p)), SAMPLES).astype(np.int32)
            # A noisy verifier: right answers score higher on average.
            steps = rng.beta(2 + 3 * right[..., None], 3, size=(*u.shape, 4)).astype(np.float64)
            shard_id = f"{model}-{strategy}-{start:06d}"
            problem_ids = pa.DictionaryArray.from_arrays(
                pa.array(np.repeat(np.arange(len(p)), SAMPLES).astype(np.int32)),
                pa.array([f"p{i:06d}" for i in p]),
            )
            key_codes = pa.array(key.ravel().astype(np.int32), mask=~answered.ravel())
            answer_key = pa.DictionaryArray.from_arrays(key_codes, keys)
            columns = {
                "run_id": constant("bench", size),
                "shard_id": constant(shard_id, size),
                "config_id": constant(f"{model}-{strategy}", size),
                "settings": constant("{}", size),
                "model": constant(model, size),
                "model_params": pa.array(np.full(size, params, dtype=np.int64)),
                "strategy": constant(strategy, size),
                "dataset": constant("synthetic", size),
                "problem_id": problem_ids,
                "prompt_id": problem_ids,
                "sample_index": pa.array(np.tile(np.arange(SAMPLES, dtype=np.int32), len(p))),
                "seed": pa.nulls(size, pa.int64()),
                "temperature": pa.array(np.full(size, 0.7, dtype=np.float32)),
                "completion": constant("", size),
                "extracted_answer": answer_key,
                "answer_key": answer_key,
                "correct": pa.array((right & answered).ravel()),
                "prompt_tokens": pa.array(prompt_tokens),
                "completion_tokens": pa.array(tokens.ravel()),
                "finish_reason": constant("stop", size),
                "cumulative_logprob": pa.nulls(size, pa.float64()),
                "prompt_flops": pa.array(2.0 * params * prompt_tokens),
                "completion_flops": pa.array(2.0 * params * tokens.ravel()),
                "context_flops": pa.array(np.zeros(size)),
                "latency_s": pa.array(np.full(size, 1.0)),
                "error": pa.nulls(size, pa.string()),
                "reward_model": constant("prm", size),
                "step_scores": pa.nulls(size, pa.list_(pa.float64())),
                "score_last": pa.array(steps[..., -1].ravel()),
                "score_min": pa.array(steps.min(axis=-1).ravel()),
                "score_prod": pa.array(steps.prod(axis=-1).ravel()),
                "score_mean": pa.array(steps.mean(axis=-1).ravel()),
                "reward_flops": pa.array(2.0 * REWARD_PARAMS * tokens.ravel().astype(np.float64)),
                "budget": pa.nulls(size, pa.int32()),
                "node_id": pa.nulls(size, pa.int32()),
            }
            table = pa.table(columns)
            path = store.samples_path(model, strategy, shard_id)
            store.write_table(path, table, schema=SCHEMA, shard_id=shard_id)
            rows += size
    return rows


def constant(text: str, size: int) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(size, dtype=np.int32)), pa.array([text]))


def run_estimators(
    output: str, resamples: int, bootstrap: int, threads: int, memory_limit: str, adaptive: bool
) -> dict:
    import duckdb

    from analysis.adaptive import DEFAULT_RULES
    from analysis.compute_optimal import fit_compute_optimal
    from analysis.estimators import compute_accuracy
    from analysis.log_flops import fit_log_flops
    from analysis.saturation import fit_saturation
    from analysis.views import connect

    class Timings(logging.Handler):
        seconds = 0.0
        adaptive_seconds = 0.0
        orderings = 0

        def emit(self, record: logging.LogRecord) -> None:
            self.seconds += getattr(record, "bootstrap_seconds", 0.0)
            self.adaptive_seconds += getattr(record, "adaptive_seconds", 0.0)
            self.orderings = getattr(record, "adaptive_orderings", self.orderings)

    handler = Timings()
    for name in ("analysis.estimators", "analysis.adaptive"):
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(logging.DEBUG)
    con = duckdb.connect(":memory:", config={"threads": threads, "memory_limit": memory_limit})
    connect(output, connection=con)
    start = time.perf_counter()
    rules = DEFAULT_RULES if adaptive else ()
    table = compute_accuracy(con, resamples=resamples, seed=0, bootstrap=bootstrap, adaptive=rules)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    fits = [fit_saturation(table), fit_log_flops(table), fit_compute_optimal(table).fits]
    fit_seconds = time.perf_counter() - start
    majority = table[table["method"] == "majority_vote"]
    spent = table[table["method"].str.startswith("adaptive_")].groupby("method")[
        ["samples_per_problem", "accuracy"]
    ].mean()
    return {
        "seconds": seconds,
        "bootstrap_seconds": handler.seconds,
        "adaptive_seconds": handler.adaptive_seconds,
        "orderings": handler.orderings,
        "adaptive": {m: [r.samples_per_problem, r.accuracy] for m, r in spent.iterrows()},
        "fit_seconds": fit_seconds,
        "fits": sum(len(f) for f in fits),
        "ci_width": float((table["ci_high"] - table["ci_low"]).median()),
        "rows": len(table),
        "methods": sorted(table["method"].unique()),
        "majority": {f"{r.model}/{r.strategy}/{r.n}": r.accuracy for r in majority.itertuples()},
    }


def run_pandas(output: str, resamples: int, seed: int) -> dict:
    """Majority vote over random n-subsets, the plain pandas way (ties: lowest sample_index)."""
    import pandas as pd
    import pyarrow.parquet as pq

    columns = ["model", "strategy", "dataset", "problem_id", "sample_index", "answer_key", "correct"]
    start = time.perf_counter()
    # The partition folders repeat columns of the files; hive parsing would clash, as in views.py.
    df = pq.read_table(f"{output}/samples", columns=columns, partitioning=None).to_pandas()
    df["group"] = df["model"].astype(str) + "/" + df["strategy"].astype(str) + "/" + df["dataset"].astype(str)
    df["problem"] = df.groupby(["group", "problem_id"], observed=True).ngroup()
    df = df[["group", "problem", "sample_index", "answer_key", "correct"]]
    loaded = time.perf_counter() - start
    ns = [2**k for k in range(9)]
    rng = np.random.default_rng(seed)
    hits = {n: np.zeros(df["problem"].max() + 1) for n in ns}
    for _ in range(resamples):
        shuffled = df.iloc[rng.permutation(len(df))]
        position = shuffled.groupby("problem").cumcount()
        for n in ns:
            subset = shuffled[(position < n) & shuffled["answer_key"].notna()]
            votes = subset.groupby(["problem", "answer_key"], observed=True).agg(
                votes=("sample_index", "size"), first=("sample_index", "min"), correct=("correct", "any")
            )
            ranked = votes.sort_values(["votes", "first"], ascending=[False, True])
            winners = ranked.groupby(level="problem").head(1)
            problems = winners.index.get_level_values("problem")
            hits[n][problems] += winners["correct"].to_numpy()
    seconds = time.perf_counter() - start
    group_of = df.groupby("problem")["group"].first()
    majority = {}
    for n in ns:
        per_problem = pd.Series(hits[n] / resamples, index=range(len(hits[n])))
        by_group = per_problem.groupby(group_of.reindex(per_problem.index).to_numpy()).mean()
        for group, accuracy in by_group.items():
            model, strategy, _ = group.split("/")
            majority[f"{model}/{strategy}/{n}"] = accuracy
    return {"seconds": seconds, "load_seconds": loaded, "resamples": resamples, "majority": majority}


def child(args: argparse.Namespace) -> None:
    if args.child == "duckdb":
        result = run_estimators(
            args.data, args.resamples, args.bootstrap, args.threads, args.memory_limit, not args.no_adaptive
        )
    else:
        result = run_pandas(args.data, args.pandas_resamples, seed=1)
    result["max_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps(result))


def spawn(kind: str, data: str, args: argparse.Namespace) -> dict:
    command = [
        sys.executable, __file__, "--child", kind, "--data", data,
        "--resamples", str(args.resamples), "--pandas-resamples", str(args.pandas_resamples),
        "--bootstrap", str(args.bootstrap),
        "--threads", str(args.threads), "--memory-limit", args.memory_limit,
        *(["--no-adaptive"] if args.no_adaptive else []),
    ]  # fmt: skip
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=9766)
    parser.add_argument("--resamples", type=int, default=100)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--pandas-resamples", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-limit", default="3GB")
    parser.add_argument("--data", help="an existing synthetic output folder (skips generation; kept)")
    parser.add_argument("--no-adaptive", action="store_true", help="leave out the adaptive stopping replay")
    parser.add_argument("--skip-pandas", action="store_true", help="run (a) only: no ratio")
    parser.add_argument("--child", choices=["duckdb", "pandas"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    scratch = None if args.data else Path(tempfile.mkdtemp(prefix="analysis-10m-"))
    data = args.data or str(scratch / "out")
    try:
        if scratch:
            start = time.perf_counter()
            rows = generate(Path(data), problems=args.problems)
            print(f"generated {rows:,} sample rows in {time.perf_counter() - start:.0f} s: {data}")
        ours = spawn("duckdb", data, args)
        base = None if args.skip_pandas else spawn("pandas", data, args)
    finally:
        if scratch:
            shutil.rmtree(scratch)
    adaptive = "" if args.no_adaptive else ", adaptive replay"
    print(f"compute_accuracy (all estimators{adaptive}, R={args.resamples}, n=1..256, bootstrap B={args.bootstrap}): "
          f"{ours['seconds']:.1f} s, {ours['rows']} rows, median CI width {ours['ci_width']:.4f}, "
          f"peak RSS {ours['max_rss_gib']:.2f} GiB "
          f"(DuckDB threads={args.threads}, memory_limit={args.memory_limit})")
    share = ours["bootstrap_seconds"] / ours["seconds"]
    print(f"of which the bootstrap over problems: {ours['bootstrap_seconds']:.1f} s ({share:.1%})")
    if not args.no_adaptive:
        share = ours["adaptive_seconds"] / ours["seconds"]
        print(f"of which the adaptive stopping replay ({len(ours['adaptive'])} rules, {ours['orderings']} orderings "
              f"of 256 samples per problem): {ours['adaptive_seconds']:.1f} s ({share:.1%})")
        for method, (samples, accuracy) in sorted(ours["adaptive"].items()):
            print(f"  {method}: {samples:.1f} samples per problem, accuracy {accuracy:.4f} (mean over the 4 groups)")
    print(f"fits on the table ({ours['fits']} fits, each refit on the B replicates): "
          f"{ours['fit_seconds']:.1f} s")
    if base is None:
        return
    # Loading is paid once; each resample costs the same, so the rest scales linearly with R.
    per_resample = (base["seconds"] - base["load_seconds"]) / args.pandas_resamples
    scaled = base["load_seconds"] + per_resample * args.resamples
    print(f"pandas majority vote, R={args.pandas_resamples}: {base['seconds']:.1f} s "
          f"(load {base['load_seconds']:.1f} s), peak RSS {base['max_rss_gib']:.2f} GiB; "
          f"scaled to R={args.resamples}: {scaled:.0f} s")
    ratio = scaled / ours["seconds"]
    print(f"speed ratio on the majority-vote curve (pandas scaled / compute_accuracy): {ratio:.1f}x")
    gap = max(abs(ours["majority"][k] - base["majority"][k]) for k in ours["majority"])
    print(f"largest majority-vote accuracy gap between the two (different random subsets): {gap:.4f}")


if __name__ == "__main__":
    main()
