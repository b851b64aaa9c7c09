"""Adaptive sampling live against fixed-n majority voting, and against its own offline replay.

On a finished sweep with a `sampling` strategy (n up to n_max) and a live `adaptive` strategy
(same temperature, n_max) over the same problems (configs/demo.yaml has both), prints:

- live: samples drawn per problem and their ratio to n_max, accuracy with its bootstrap interval;
- fixed n: majority vote at n_max from the sampling strategy's stored samples;
- replayed: the same rule on random orderings of the sampling strategy's samples.

    flock /tmp/engine-tests.lock timeout 1200 .venv/bin/python -m sweep.launch configs/demo.yaml \\
        --output /tmp/demo-results --no-progress
    .venv/bin/python benchmarks/adaptive_live.py /tmp/demo-results
"""

from __future__ import annotations

from bench_common import results_parser


def main() -> None:
    parser = results_parser()
    parser.add_argument("--strategy", default="adaptive", help="the live adaptive strategy's label")
    args = parser.parse_args()

    from analysis.adaptive import method_name
    from analysis.estimators import compute_accuracy
    from analysis.views import connect
    from sweep.inference.stopping import StoppingRule
    from sweep.results.runs import select_run
    from sweep.results.store import ResultsStore

    config = select_run(ResultsStore(args.output).read_manifest())["config"]
    entry = next(s for s in config["strategies"] if s.get("label", s["name"]) == args.strategy)
    rule = StoppingRule(entry["rule"], entry["threshold"], window=entry["window"])
    table = compute_accuracy(connect(args.output), resamples=args.resamples, seed=0, adaptive=[rule])

    def row(strategy: str, method: str, n: int) -> dict:
        match = table[(table["strategy"] == strategy) & (table["method"] == method) & (table["n"] == n)]
        return match.iloc[0].to_dict()

    n_max = entry["n_max"]
    fixed = row("sampling", "majority_vote", n_max)
    live = row(args.strategy, "majority_vote", n_max)
    replay = row("sampling", method_name(rule), n_max)
    print(f"rule {rule.rule} threshold {rule.threshold:g} window {rule.window}, n_max {n_max}, "
          f"{int(fixed['problems'])} problems")
    print(f"{'':10} {'samples':>8} {'ratio':>6} {'FLOPs ratio':>11} {'accuracy':>9}  interval")
    for name, r in (("fixed n", fixed), ("live", live), ("replayed", replay)):
        print(f"{name:10} {r['samples_per_problem']:8.2f} {r['samples_per_problem'] / n_max:6.3f} "
              f"{r['flops_per_problem'] / fixed['flops_per_problem']:11.3f} {r['accuracy']:9.3f}  "
              f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]")


if __name__ == "__main__":
    main()
