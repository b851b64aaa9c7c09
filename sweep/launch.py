"""Command line: ``python -m sweep.launch grid.yaml`` runs (or resumes) a sweep and prints a summary.

The config and datasets are validated before Ray starts: a user error exits 2 with one
message. The launcher attaches to a running Ray cluster (RAY_ADDRESS, inside a Ray job, or
one started with ``ray start`` on this machine) and otherwise starts a local one.

Left out: the sweep itself (``sweep.driver.run_sweep``, which tests and benchmarks call
directly) and the checks before Ray starts (``sweep.preflight``); this module parses the
arguments, holds the output folder's lock, prints, and turns what happened into an exit status.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from sweep.config import ConfigError, SweepConfig, load_config
from sweep.data.problems import DatasetError
from sweep.data.prompting import PromptedProblem
from sweep.driver import SweepOutcome, run_sweep
from sweep.preflight import check_token_caps, prepare_problems

log = logging.getLogger("sweep")

EXIT_USAGE = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def _init_ray() -> None:
    """Attach to a running cluster when there is one, else start a local Ray."""
    import ray

    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS")
    ray.init(address=address, namespace=None, log_to_driver=True, logging_level=logging.WARNING)


def print_summary(outcome: SweepOutcome) -> None:
    """The results table and where they are. Every value is printed as plain text, never read as
    Rich markup: an answer like ``\\boxed{[a,b]}`` or ``[/oops]`` prints as it is."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(width=max(Console().width, 150))
    table = Table(title=Text(f"sweep summary ({outcome.output})"))
    columns = {
        "model": None,
        "dataset": None,
        "strategy": None,
        "method": None,
        "n": None,
        "problems": None,
        "accuracy": "{:.3f}",
        "tokens/problem": "{:.1f}",
        "FLOPs/problem": "{:.3e}",
        "latency s": "{:.2f}",
        "errors": None,
    }
    keys = {
        "tokens/problem": "tokens_per_problem",
        "FLOPs/problem": "flops_per_problem",
        "latency s": "latency_s",
    }
    for column in columns:
        table.add_column(
            column, justify="left" if column in ("model", "dataset", "strategy", "method") else "right"
        )
    for row in outcome.summary.to_pylist():
        cells = []
        for column, number in columns.items():
            value = row[keys.get(column, column)]
            cells.append(Text("" if value is None else number.format(value) if number else str(value)))
        table.add_row(*cells)
    console.print(table)
    run = outcome.shards_total - outcome.shards_skipped
    console.print(
        f"{outcome.shards_total} shards: {outcome.shards_skipped} already complete, {run} run"
        f"{f', {len(outcome.shards_failed)} FAILED' if outcome.shards_failed else ''}; "
        f"{outcome.seconds:.1f} s wall",
        markup=False,
    )
    console.print(
        f"results: {os.path.abspath(outcome.output) if '://' not in outcome.output else outcome.output}",
        markup=False,
    )
    if outcome.report:
        console.print(f"report:  {outcome.report}", markup=False)


def _set_aside_corrupt_manifest(store: Any) -> None:
    """A manifest that does not parse is kept under another name; this launch writes a new one."""
    from sweep.results.store import ManifestError

    try:
        store.read_manifest()
    except ManifestError as exc:
        kept = store.set_aside_manifest()
        log.warning(
            "%s: corrupt (%s); kept as %s. This launch writes a new manifest; the complete shards are "
            "kept and skipped, and the records of earlier runs stay in the kept file.",
            store.manifest_path,
            exc.reason,
            kept,
        )


def main(argv: list[str] | None = None) -> int:
    """Validate everything a user gave before Ray starts (exit 2 naming the field or path), hold
    the output folder's lock, then run; the lock is released however the process ends."""
    parser = argparse.ArgumentParser(prog="python -m sweep.launch", description=__doc__.split("\n\nLeft out")[0])
    parser.add_argument("config", help="grid YAML")
    parser.add_argument("--output", help="override the config's output folder")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    try:
        config = load_config(args.config)
        if args.output is not None:
            if not args.output.strip():
                raise ConfigError("--output: empty; give a results folder")
            config = config.model_copy(update={"output": args.output})
        prompted = prepare_problems(config)  # validate datasets before anything starts; used by the run
        check_token_caps(config, cluster_has_gpus=None)
    except (ConfigError, DatasetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    from sweep.results.store import OutputError, ResultsStore

    try:
        store = ResultsStore(config.output)
        store.check_writable()
        lock = store.lock()
    except OutputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    with lock:
        _set_aside_corrupt_manifest(store)
        return _run(config, prompted=prompted, show_progress=not args.no_progress)


def _run(config: SweepConfig, *, prompted: dict[str, list[PromptedProblem]], show_progress: bool) -> int:
    """Start or attach to Ray, run the sweep and print what happened; the exit status."""
    try:
        _init_ray()
        if any(m.device == "auto" for m in [*config.models, *config.reward_models]):
            import ray

            try:
                check_token_caps(config, cluster_has_gpus=ray.cluster_resources().get("GPU", 0) > 0)
            except ConfigError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return EXIT_USAGE
        outcome = run_sweep(config, prompted=prompted, show_progress=show_progress)
    except KeyboardInterrupt:
        # Every finished shard is already on disk, whole; a rerun resumes from there.
        print(
            f"\ninterrupted: rerun the same command to finish the missing shards ({config.output})",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    print_summary(outcome)
    for model, reason in outcome.dead_engines.items():
        print(f"error: the engine of model {model} failed to start: {reason}", file=sys.stderr)
    if outcome.shards_failed:
        print(f"error: {len(outcome.shards_failed)} shards failed; rerun to retry them", file=sys.stderr)
        return EXIT_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
