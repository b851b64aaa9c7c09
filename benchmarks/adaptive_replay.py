"""Adaptive stopping replayed on a finished sweep, against fixed-n voting at the same n_max.

For every flat sampling group of the run, each default stopping rule (``analysis/adaptive.py``)
against the fixed-n method that reads the same votes at n = n_max: ESC and Beta against majority
vote, the score-weighted rule against weighted vote (``weighted_vote_last``). Prints the samples
spent per problem and their ratio to n_max, the FLOPs ratio (the prompt is paid once either way,
so it is closer to 1), and the accuracy difference with its paired 95% bootstrap interval (both
sides' replicates drew the same problems). Replayed, not live: the stored samples in random
orderings (``--resamples`` per problem, also the subsets of the fixed-n side).

    flock /tmp/engine-tests.lock timeout 1200 .venv/bin/python -m sweep.launch configs/demo.yaml \\
        --output /tmp/demo-results --no-progress
    .venv/bin/python benchmarks/adaptive_replay.py /tmp/demo-results [--resamples 1000]
"""

from __future__ import annotations

import numpy as np
from bench_common import results_parser


def main() -> None:
    parser = results_parser()
    parser.add_argument("--run", help="a run id (default: the latest)")
    args = parser.parse_args()

    from analysis.adaptive import DEFAULT_RULES, method_name
    from analysis.estimators import compute_accuracy
    from analysis.views import connect

    table = compute_accuracy(connect(args.output, run=args.run), resamples=args.resamples, seed=0)
    names = {method_name(r): r for r in DEFAULT_RULES}
    adaptive = table[table["method"].isin(list(names))]
    for (model, dataset, strategy), rows in adaptive.groupby(["model", "dataset", "strategy"], sort=True):
        group = table[(table["model"] == model) & (table["dataset"] == dataset) & (table["strategy"] == strategy)]
        n_max = int(rows["n"].iloc[0])
        fixed = group[group["n"] == n_max].set_index("method")
        single = group[(group["method"] == "majority_vote") & (group["n"] == 1)]["accuracy"]
        print(f"{model} / {dataset} / {strategy}: {int(rows['problems'].iloc[0])} problems, n_max {n_max}, "
              f"per-sample accuracy {single.iloc[0]:.3f}")
        for base in ("majority_vote", "weighted_vote_last"):
            if base in fixed.index:
                b = fixed.loc[base]
                print(f"  {base}@{n_max}: {b['accuracy']:.3f} [{b['ci_low']:.3f}, {b['ci_high']:.3f}], "
                      f"{b['flops_per_problem']:.3e} FLOPs")
        for r in rows.itertuples():
            base = fixed.loc["weighted_vote_last" if names[r.method].reads_scores else "majority_vote"]
            diff = np.asarray(r.accuracy_replicates) - np.asarray(base["accuracy_replicates"])
            low, high = np.nanquantile(diff, [0.025, 0.975])
            print(f"  {r.method:22s} samples {r.samples_per_problem:5.2f} ({r.samples_per_problem / n_max:.3f}x)  "
                  f"FLOPs {r.flops_per_problem / base['flops_per_problem']:.3f}x  accuracy {r.accuracy:.3f} "
                  f"[{r.ci_low:.3f}, {r.ci_high:.3f}]  diff {r.accuracy - base['accuracy']:+.4f} "
                  f"[{low:+.4f}, {high:+.4f}]")


if __name__ == "__main__":
    main()
