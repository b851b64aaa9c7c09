"""DuckDB views over a sweep's results folder, and the loader for ``analysis/sql/*.sql``.

Views: ``samples`` (one row per sample), ``problems``, ``prompts`` and ``nodes`` (tree search), all
scoped to one run's grid (the latest unless a run is named; see ``connect``), ``all_samples`` and
``all_nodes`` over every run's files, and ``runs``. Each file view is created only when its
files exist, so a fresh or partial output folder still opens.

``connect_readonly`` is the sandbox for SQL written by users (``python -m analysis.query``,
a SQL endpoint): the views in a read-only database, with DuckDB's own switches locking out
every file outside the results folder, extensions and settings; ``run_select`` admits one
SELECT at a time. Remote (``s3://``-style) folders are left out of the sandbox for now.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.fs as pafs

SQL_DIR = Path(__file__).parent / "sql"
TABLES = ("samples", "problems", "prompts", "nodes")  # nodes: tree-search strategies only


def load_sql(name: str) -> str:
    """The text of ``analysis/sql/<name>.sql``."""
    return (SQL_DIR / f"{name}.sql").read_text()


def connect(
    output: str, *, run: str | None = None, connection: duckdb.DuckDBPyConnection | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with views over one run's grid in ``output``.

    ``run``: a run id from ``manifest.json``, or None / "latest" for the newest run (see
    ``sweep.runs``). ``samples``, ``nodes`` and ``problems`` read exactly the files of that
    run's grid; ``prompts`` the prompts its samples used. A folder with no recorded run (files
    written by hand, or before runs were recorded) is read whole. ``all_samples`` and
    ``all_nodes`` read every file in the folder, every run's, on purpose; ``runs`` lists the
    recorded runs. Raises ``sweep.runs.RunNotFound`` for an unknown run id, and
    ``DuplicateRows`` naming the files when one sample (model, strategy, settings, dataset,
    problem, sample index) appears twice in what the run reads.
    """
    from sweep.runs import select_run, run_files
    from sweep.storage import ResultsStore

    con = connection or duckdb.connect(":memory:")
    store = ResultsStore(output)
    manifest = store.read_manifest()
    record = select_run(manifest, run)
    scheme = output.split("://", 1)[0] + "://" if "://" in output and not output.startswith("file://") else ""
    root = store.root
    everything = {table: f"{scheme}{root}/{table}/**/*.parquet" for table in TABLES}
    if record is None:
        scoped = {t: [everything[t]] for t in TABLES if _has_files(output, t)}
    else:
        files = run_files(store, record)
        scoped = {
            "samples": [scheme + f for f in files.samples],
            "nodes": [scheme + f for f in files.nodes],
            "problems": [scheme + f for f in files.problems],
        }
        if _has_files(output, "prompts"):
            scoped["prompts"] = [everything["prompts"]]
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
        if _has_files(output, table):
            _create_view(con, f"all_{table}", [everything[table]])
    con.execute(load_sql("view_runs"), {"runs": _runs_rows(manifest, current=record)})
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
            f"{model}/{strategy} {dataset} problem {problem} sample {sample}: {count} rows in {', '.join(names)}"
            for model, strategy, _, dataset, problem, sample, count, names in duplicates
        ]
        raise DuplicateRows(
            "the same sample appears more than once in what this reader reads:\n  " + "\n  ".join(lines)
        )


def _runs_rows(manifest: dict[str, Any], *, current: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One struct per recorded run, for the ``runs`` view."""
    from sweep.runs import recorded_runs

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


class QueryRefused(ValueError):
    """A user's SQL or results folder that the read-only sandbox will not run."""


# Set when the database opens: extensions are neither fetched nor loaded on demand, and
# Python variables never resolve as tables (the endpoint's locals are not data).
_READONLY_CONFIG: dict[str, Any] = {
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "allow_persistent_secrets": False,
    "python_enable_replacements": False,
}


def connect_readonly(output: str) -> duckdb.DuckDBPyConnection:
    """A locked-down connection to ``output``'s views, for SQL a user writes.

    The views are built in a scratch database file that is then reopened read-only, so
    CREATE/INSERT/DROP and ATTACH fail. After that only files under ``output`` may be read
    (``allowed_directories`` with ``enable_external_access = false``: the views' globs keep
    working, ``read_csv('/etc/passwd')``, COPY/EXPORT elsewhere, INSTALL/LOAD do not), and
    ``lock_configuration`` makes every SET, this one included, fail.

    What DuckDB's switches leave open: the allowed folder is writable too (COPY ... TO
    inside it) and the temp catalog takes CREATE TEMP; ``run_select`` closes both.
    """
    if "://" in output:
        raise QueryRefused(f"read-only queries need a local results folder, not {output}")
    root = Path(output).resolve()
    if not root.exists():
        raise QueryRefused(f"results folder {output} does not exist")
    if not root.is_dir():
        raise QueryRefused(f"results folder {output} is not a folder")
    if not any(_has_files(str(root), table) for table in TABLES):
        raise QueryRefused(f"results folder {output} holds no Parquet results ({', '.join(TABLES)})")

    scratch = tempfile.mkdtemp(prefix="sweep-views-")
    database = f"{scratch}/views.duckdb"  # DuckDB spills to views.duckdb.tmp/ beside it
    try:
        with duckdb.connect(database) as build:
            connect(str(root), connection=build)
            build.execute("CHECKPOINT")  # the views in the file itself, not in a WAL
        con = duckdb.connect(database, read_only=True, config=_READONLY_CONFIG)
        # allowed_directories can only be set once the database runs, and before the lock.
        # The trailing slash keeps a sibling such as "<root>-old" out of the prefix match.
        con.execute("SET allowed_directories = $dirs", {"dirs": [f"{root}/"]})
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    weakref.finalize(con, shutil.rmtree, scratch, ignore_errors=True)
    return con


def run_select(con: duckdb.DuckDBPyConnection, sql: str) -> duckdb.DuckDBPyRelation:
    """Run one user statement on a ``connect_readonly`` connection, if DuckDB parses it as a SELECT.

    DuckDB's parser decides (DESCRIBE, SHOW, SUMMARIZE, WITH and VALUES are SELECTs); the
    parsed statement itself is what runs, so nothing is parsed twice. This refuses COPY TO
    and EXPORT into the results folder and CREATE TEMP, which the connection would allow,
    and EXPLAIN ANALYZE, which would run what it explains.
    """
    try:
        statements = con.extract_statements(sql)
    except duckdb.ParserException as exc:
        raise QueryRefused(str(exc)) from None
    if len(statements) != 1:
        raise QueryRefused(f"expected one SQL statement, got {len(statements)}")
    (statement,) = statements
    if statement.type != duckdb.StatementType.SELECT:
        raise QueryRefused(f"only SELECT queries are allowed, not {statement.type.name}")
    return con.sql(statement)


def query(con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any] | None = None) -> Any:
    """Run a named SQL file with bound parameters; returns an Arrow table."""
    return con.sql(load_sql(name), params=params or {}).to_arrow_table()


def _has_files(output: str, table: str) -> bool:
    if "://" in output:
        fs, root = pafs.FileSystem.from_uri(output)
    else:
        fs, root = pafs.LocalFileSystem(), str(Path(output).resolve())
    selector = pafs.FileSelector(f"{root}/{table}", recursive=True, allow_not_found=True)
    return any(info.path.endswith(".parquet") for info in fs.get_file_info(selector))


def _quote(text: str) -> str:
    return text.replace("'", "''")
