"""One launch, driven end to end on a running Ray cluster: ``run_sweep`` and its outcome.

Problems are prompted, engine specs resolved and the grid built into shards; the run is
recorded in the manifest before any work; shards already complete on disk are skipped; the
engines the rest need are started (one set of actors per distinct spec) and handed to the
scheduler; then the run's end is recorded, the summary table computed by DuckDB over the
run's Parquet files and the HTML report written.

Left out: the command line, starting or attaching to Ray, and printing (``sweep.launch``);
the checks before Ray starts (``sweep.preflight``); what is recorded and how
(``sweep.records``); running shards on engines (``sweep.scheduler``, ``sweep.runner``).
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sweep.config import SweepConfig
from sweep.data.prompting import PromptedProblem
from sweep.preflight import prepare_problems
from sweep.records import finish_run, record_run, write_problems

log = logging.getLogger("sweep")


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


def run_sweep(
    config: SweepConfig,
    *,
    prompted: dict[str, list[PromptedProblem]] | None = None,
    show_progress: bool = True,
    write_report: bool = True,
) -> SweepOutcome:
    """Run the grid on the current Ray cluster (``ray.init`` must have been called). ``prompted``:
    the datasets as ``prepare_problems`` gives them, when the caller has loaded them already."""
    import ray

    from actors.pool import EnginePool, release_capacity, request_capacity, start_engines
    from actors.spec import EngineSpec, resolve_engine_spec
    from sweep.grid import build_shards
    from sweep.results.runs import grid_record
    from sweep.results.schema import SAMPLES
    from sweep.results.store import ResultsStore
    from sweep.runner import RunContext
    from sweep.scheduler import run_shards

    started = time.perf_counter()
    started_at = datetime.now(timezone.utc).isoformat()
    prompted = prompted if prompted is not None else prepare_problems(config)
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

    problem_files = write_problems(store, prompted)
    run_id = uuid.uuid4().hex[:12]
    # Recorded before any work: readers show this run's grid from now on, even if it is cut short.
    record_run(store, config, specs, run_id, started_at, grid_record(shards, problem_files))
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
                scheduler=config.scheduler,
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
    finish_run(
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
