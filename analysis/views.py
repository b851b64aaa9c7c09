"""DuckDB views over a sweep's results folder, and the loader for ``analysis/sql/*.sql``.

Views: ``samples`` (one row per sample), ``problems``, ``prompts`` and ``nodes`` (tree search), all
scoped to one run's grid (the latest unless a run is named; see ``connect``), ``all_samples`` and
``all_nodes`` over every run's files, and ``runs``. Each file view is created only when its
files exist, so a fresh or partial output folder still opens.

Left out: where the files lie (the layout is ``sweep.results.store``'s, which the writer
shares) and the sandbox for SQL that users write (``analysis.sandbox``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

SQL_DIR = Path(__file__).parent / "sql"


def load_sql(name: str) -> str:
    """The text of ``analysis/sql/<name>.sql``."""
    return (SQL_DIR / f"{name}.sql").read_text()


def create_flops_macros(con: duckdb.DuckDBPyConnection) -> None:
    """The FLOPs rule (``sweep/inference/flops.py``) as DuckDB macros (``analysis/sql/flops.sql``)
    on ``con``, for every reader; idempotent."""
    con.execute(load_sql("flops"))


def connect(
    output: str, *, run: str | None = None, connection: duckdb.DuckDBPyConnection | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with views over one run's grid in ``output``.

    ``run``: a run id from ``manifest.json``, or None / "latest" for the newest run (see
    ``sweep.results.runs``). ``samples``, ``nodes`` and ``problems`` read exactly the files of that
    run's grid; ``prompts`` the prompts its samples used. A folder with no recorded run (files
    written by hand, or before runs were recorded) is read whole. ``all_samples`` and
    ``all_nodes`` read every file in the folder, every run's, on purpose; ``runs`` lists the
    recorded runs. Raises ``sweep.results.runs.RunNotFound`` for an unknown run id, and
    ``DuplicateRows`` naming the files when one sample (model, strategy, settings, dataset,
    problem, sample index) appears twice in what the run reads.
    """
    from sweep.results.runs import run_files, select_run
    from sweep.results.store import TABLES, ResultsStore

    con = connection or duckdb.connect(":memory:")
    store = ResultsStore(output)
    manifest = store.read_manifest()
    record = select_run(manifest, run)
    if record is None:
        scoped = {t: [store.table_glob(t)] for t in TABLES if store.has_files(t)}
    else:
        files = run_files(store, record)
        scoped = {
            "samples": [store.uri(f) for f in files.samples],
            "nodes": [store.uri(f) for f in files.nodes],
            "problems": [store.uri(f) for f in files.problems],
        }
        if store.has_files("prompts"):
            scoped["prompts"] = [store.table_glob("prompts")]
    for table in ("samples", "nodes", "problems"):
        if scoped.get(table):
            _create_view(con, table, scoped[table])
    if scoped.get("prompts"):
        _create_view(con, "all_prompts", scoped["prompts"])
        if scoped.get("samples"):
            con.execute(load_sql("view_prompts"))
        else:
            con.execute("CREATE OR REPLACE VIEW prompts AS SELECT * FROM all_prompts")
    for table in ("samples", "nodes"):
        if store.has_files(table):
            _create_view(con, f"all_{table}", [store.table_glob(table)])
    con.execute(load_sql("view_runs"), {"runs": _runs_rows(manifest, current=record)})
    create_flops_macros(con)
    if scoped.get("samples"):
        _check_unique(con, scoped["samples"])
    return con


class DuplicateRows(ValueError):
    """One sample appears more than once in the files a reader reads."""


def _create_view(con: duckdb.DuckDBPyConnection, name: str, files: list[str]) -> None:
    listed = ", ".join(f"'{_quote(f)}'" for f in files)
    # The partition values are columns of the files already; hive parsing would clash.
    con.execute(
        f"CREATE OR REPLACE VIEW {name} AS "
        f"SELECT * FROM read_parquet([{listed}], hive_partitioning = false, union_by_name = true)"
    )


def _check_unique(con: duckdb.DuckDBPyConnection, files: list[str]) -> None:
    duplicates = con.execute(load_sql("duplicate_samples"), {"files": files}).fetchall()
    if duplicates:
        lines = [
            f"{model}/{strategy} {dataset} problem {problem} sample {sample}: "
            f"{count} rows in {', '.join(names)}"
            for model, strategy, _, dataset, problem, sample, count, names in duplicates
        ]
        raise DuplicateRows(
            "the same sample appears more than once in what this reader reads:\n  " + "\n  ".join(lines)
        )


def _runs_rows(manifest: dict[str, Any], *, current: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One struct per recorded run, for the ``runs`` view."""
    from sweep.results.runs import recorded_runs

    return [
        {
            "run_id": r["run_id"],
            "started": r.get("started"),
            "finished": r.get("finished"),
            "shards": sum(len(c["shards"]) for c in r["grid"]),
            "shards_failed": len(r.get("shards_failed") or {}),
            "current": current is not None and r["run_id"] == current["run_id"],
        }
        for r in recorded_runs(manifest)
    ]


def query(con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any] | None = None) -> Any:
    """Run a named SQL file with bound parameters; returns an Arrow table."""
    return con.sql(load_sql(name), params=params or {}).to_arrow_table()


def _quote(text: str) -> str:
    return text.replace("'", "''")
