"""The sandbox for SQL that users write (``python -m analysis.query``, the Serve app's SQL endpoint).

``connect_readonly`` opens the views of one run (``analysis.views.connect``) in a read-only
database, with DuckDB's own switches locking out every file outside the results folder,
extensions and settings; ``run_select`` admits one SELECT at a time, under a row cap and a
timeout (``statement_timeout``, fired by a ``Watchdog`` thread), and ``select_batches`` streams
one without the cap. A user's mistake is a ``QueryRefused`` (``QueryTimeout``, ``QueryCancelled``).

Left out: the views themselves (``analysis.views``), and remote (``s3://``-style) folders, which
the sandbox refuses for now.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from analysis.views import DuplicateRows, connect


class QueryRefused(ValueError):
    """A user's SQL or results folder that the read-only sandbox will not run."""


class QueryTimeout(QueryRefused):
    """A user's statement that ran past its timeout and was interrupted."""


class QueryCancelled(QueryRefused):
    """A user's statement stopped because its caller cancelled it (a client that went away)."""


# Limits on SQL that users write; each is configurable where it is used (the query CLI's
# flags, the Serve app's options). None lifts a limit.
DEFAULT_MAX_ROWS = 10_000
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MEMORY_LIMIT = "2GB"  # DuckDB's own buffers; beyond it a query spills, then fails
DEFAULT_SPILL_LIMIT = "8GB"  # disk a query may spill to before it fails

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


def connect_readonly(
    output: str,
    *,
    run: str | None = None,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    spill_limit: str = DEFAULT_SPILL_LIMIT,
) -> duckdb.DuckDBPyConnection:
    """A locked-down connection to the views of one run of ``output`` (``connect``'s ``run``), for user SQL.

    The views are built in a scratch database file that is then reopened read-only, so
    CREATE/INSERT/DROP and ATTACH fail. After that only files under ``output`` may be read
    (``allowed_directories`` with ``enable_external_access = false``: the views' globs keep
    working, ``read_csv('/etc/passwd')``, COPY/EXPORT elsewhere, INSTALL/LOAD do not), and
    ``lock_configuration`` makes every SET, this one included, fail. ``memory_limit`` and
    ``spill_limit`` bound the database's memory and temporary files; they hold for every
    cursor of the connection together (one database), so a server that hands each request a
    ``con.cursor()`` bounds all its queries at once.

    No file is left behind: the scratch folder is removed as soon as the read-only database
    has opened it (the open file stays readable), and the folder DuckDB spills into is one it
    creates on demand and removes when the database closes.

    What DuckDB's switches leave open: the allowed folder is writable too (COPY ... TO
    inside it) and the temp catalog takes CREATE TEMP; ``run_select`` closes both.
    """
    from sweep.results.runs import RunNotFound
    from sweep.results.store import TABLES, ManifestError, ResultsStore

    if "://" in output:
        raise QueryRefused(f"read-only queries need a local results folder, not {output}")
    root = Path(output).resolve()
    if not root.exists():
        raise QueryRefused(f"results folder {output} does not exist")
    if not root.is_dir():
        raise QueryRefused(f"results folder {output} is not a folder")
    if not any(ResultsStore(str(root)).has_files(table) for table in TABLES):
        raise QueryRefused(f"results folder {output} holds no Parquet results ({', '.join(TABLES)})")

    scratch = tempfile.mkdtemp(prefix="sweep-views-")
    try:
        database = f"{scratch}/views.duckdb"
        with duckdb.connect(database) as build:
            try:
                connect(str(root), run=run, connection=build)
            except (RunNotFound, DuplicateRows, ManifestError) as exc:
                raise QueryRefused(str(exc)) from None
            build.execute("CHECKPOINT")  # the views in the file itself, not in a WAL
        config = {
            **_READONLY_CONFIG,
            "memory_limit": memory_limit,
            "max_temp_directory_size": spill_limit,
            # Not there yet: DuckDB makes it on the first spill and removes it on close.
            "temp_directory": f"{scratch}.spill",
        }
        con = duckdb.connect(database, read_only=True, config=config)
        # allowed_directories can only be set once the database runs, and before the lock.
        # The trailing slash keeps a sibling such as "<root>-old" out of the prefix match.
        con.execute("SET allowed_directories = $dirs", {"dirs": [f"{root}/"]})
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)  # the open database keeps its file
    return con


@dataclass(frozen=True)
class Selection:
    """A user query's rows, at most ``max_rows`` of them (``truncated``: it had more)."""

    table: pa.Table
    truncated: bool
    max_rows: int | None

    @property
    def note(self) -> str | None:
        """What a reader is told when the result was cut, else None."""
        if not self.truncated:
            return None
        return f"result cut at {self.max_rows:,} rows (the row cap); the query returned more"


def run_select(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    *,
    max_rows: int | None = DEFAULT_MAX_ROWS,
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
    cancel: threading.Event | None = None,
    watchdog: Watchdog | None = None,
) -> Selection:
    """Run one user statement on a ``connect_readonly`` connection, if DuckDB parses it as a SELECT.

    At most ``max_rows`` rows come back (``Selection.truncated`` says the query had more): the
    cap is a LIMIT on the query's own plan, so DuckDB stops producing rows there instead of
    building the whole result. A statement still running after ``timeout_s`` is interrupted
    and raises ``QueryTimeout``; setting ``cancel`` from another thread stops it with
    ``QueryCancelled``. Each cursor (``con.cursor()``) is interrupted on its own, which is how
    a server gives each request its own limits and cancels one; a server passes its one
    ``watchdog`` to every call.
    """
    relation = _select(con, sql)
    if max_rows is not None:
        relation = relation.limit(max_rows + 1)  # one more row tells a full result from a cut one
    with statement_timeout(con, timeout_s, cancel=cancel, watchdog=watchdog):
        table = relation.to_arrow_table()
    truncated = max_rows is not None and table.num_rows > max_rows
    return Selection(table.slice(0, max_rows) if truncated else table, truncated, max_rows)


@contextmanager
def select_batches(
    con: duckdb.DuckDBPyConnection, sql: str, *, timeout_s: float | None = DEFAULT_TIMEOUT_S
) -> Iterator[pa.RecordBatchReader]:
    """``run_select`` without a row cap, as a stream of Arrow batches (for exports of any size).

    The timeout covers the whole ``with`` block: running the query and reading every batch.
    """
    relation = _select(con, sql)
    with statement_timeout(con, timeout_s):
        yield relation.to_arrow_reader()


class Watchdog:
    """One thread that interrupts the statements it watches: past their deadline, or cancelled.

    A server keeps one and passes it to every ``run_select``, so a statement pays no thread
    start (measured: ~4 ms per statement on a busy 2-core machine, more than the Serve hop
    itself). Without one, each statement gets a watchdog of its own. The thread starts on the
    first watch and ends after ``linger_s`` with nothing to watch.

    A statement past its deadline or cancelled is interrupted (DuckDB's ``interrupt()``), and
    again every ``tick_s`` until it is unwatched: an interrupt that lands before DuckDB starts
    the statement is lost. ``unwatch`` takes the same lock as the interrupts, so none lands on
    whatever the connection runs next.
    """

    def __init__(self, *, tick_s: float = 0.1, linger_s: float = 30.0) -> None:
        self._tick_s = tick_s
        self._linger_s = linger_s
        self._wake = threading.Condition()
        self._watches: dict[int, _Watch] = {}
        self._running = False

    def watch(
        self, con: duckdb.DuckDBPyConnection, deadline: float | None, cancel: threading.Event | None
    ) -> _Watch:
        entry = _Watch(con, deadline, cancel)
        with self._wake:
            self._watches[id(entry)] = entry
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="sql-watchdog", daemon=True).start()
            self._wake.notify()
        return entry

    def unwatch(self, entry: _Watch) -> None:
        with self._wake:
            self._watches.pop(id(entry), None)
            self._wake.notify()

    def _run(self) -> None:
        idle_since: float | None = None
        with self._wake:
            while True:
                now = time.monotonic()
                if not self._watches:
                    idle_since = idle_since or now
                    if now - idle_since >= self._linger_s:
                        self._running = False
                        return
                    self._wake.wait(self._linger_s - (now - idle_since))
                    continue
                idle_since = None
                pause = self._interrupt_due(now)
                self._wake.wait(pause if math.isfinite(pause) else None)

    def _interrupt_due(self, now: float) -> float:
        """Interrupt every watched statement that is due; the seconds until the next check."""
        pause = math.inf
        for entry in self._watches.values():
            reason = entry.due(now)
            if reason is not None:
                entry.fired = entry.fired or reason
                entry.con.interrupt()
                pause = min(pause, self._tick_s)
            elif entry.cancel is not None:
                pause = min(pause, self._tick_s)
            elif entry.deadline is not None:
                pause = min(pause, max(entry.deadline - now, 0.0))
        return pause


@dataclass
class _Watch:
    con: duckdb.DuckDBPyConnection
    deadline: float | None  # time.monotonic()
    cancel: threading.Event | None
    fired: str | None = None  # "cancelled" | "timeout", once interrupted

    def due(self, now: float) -> str | None:
        if self.cancel is not None and self.cancel.is_set():
            return "cancelled"
        if self.deadline is not None and now >= self.deadline:
            return "timeout"
        return None


@contextmanager
def statement_timeout(
    con: duckdb.DuckDBPyConnection,
    timeout_s: float | None,
    *,
    cancel: threading.Event | None = None,
    watchdog: Watchdog | None = None,
) -> Iterator[None]:
    """Interrupt ``con`` (DuckDB's ``interrupt``) if the block is still running after ``timeout_s``,
    or once ``cancel`` is set (by another thread: a server whose client went away).

    ``watchdog`` (default: one for this block) fires the interrupt; the interrupted statement
    raises in the block, which this turns into ``QueryTimeout`` or ``QueryCancelled``.
    """
    if timeout_s is None and cancel is None:
        yield
        return
    if cancel is not None and cancel.is_set():
        raise QueryCancelled("the query was cancelled before it started")
    watchdog = watchdog or Watchdog(linger_s=0.0)
    entry = watchdog.watch(con, None if timeout_s is None else time.monotonic() + timeout_s, cancel)
    try:
        yield
    except Exception:  # DuckDB's InterruptException, or Arrow's error when a stream is cut
        if entry.fired == "cancelled":
            raise QueryCancelled("the query was cancelled") from None
        if entry.fired == "timeout":
            raise QueryTimeout(f"the query ran past its {timeout_s:g} s timeout and was stopped") from None
        raise
    finally:
        watchdog.unwatch(entry)


def _select(con: duckdb.DuckDBPyConnection, sql: str) -> duckdb.DuckDBPyRelation:
    """The relation of ``sql`` if DuckDB parses it as one SELECT, else QueryRefused.

    DuckDB's parser decides (DESCRIBE, SHOW, SUMMARIZE, WITH and VALUES are SELECTs); the
    parsed statement itself is what runs, so nothing is parsed twice. This refuses COPY TO
    and EXPORT into the results folder and CREATE TEMP, which the connection would allow,
    and EXPLAIN ANALYZE, which would run what it explains. The relation is lazy: nothing
    runs until it is read.
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
