"""The ``/sql`` statements of one Serve replica: each on a cursor and a worker thread of its own,
bounded by the app's row cap and timeout, stopped when its HTTP client goes, and counted for
``/status``.

What it leaves out: HTTP (``sweep/serve/app.py`` answers a ``QueryFailed`` with a 400), and the
views and the sandbox a statement runs in (``analysis/views.py``, ``analysis/sandbox.py``).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import duckdb

from analysis.query import jsonable
from analysis.sandbox import QueryRefused, QueryTimeout, Watchdog, run_select


class QueryFailed(ValueError):
    """A statement refused (not one SELECT, past its timeout) or failing; the message says why."""


class SqlRunner:
    """Runs one replica's statements on its views, many at once."""

    def __init__(
        self, views: Callable[[], Any], *, max_rows: int | None, timeout_s: float | None, workers: int
    ) -> None:
        self._views = views  # the replica's current views: a statement takes a cursor of them
        self._max_rows = max_rows
        self._timeout_s = timeout_s
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sql")
        self._watchdog = Watchdog()  # one thread times out and cancels every request's statement
        self._stats = {"running": 0, "done": 0, "timed_out": 0, "cancelled": 0}
        self._seconds: deque[float] = deque(maxlen=1000)  # the last statements' time on the replica
        self._lock = threading.Lock()

    def stats(self) -> dict[str, Any]:
        """Statements running, done, timed out and cancelled; the recent median time when any ran."""
        with self._lock:
            stats: dict[str, Any] = dict(self._stats)
            recent = sorted(self._seconds)
        if recent:  # time from taking a cursor to the JSON body, without HTTP and Serve
            stats["recent_p50_ms"] = recent[len(recent) // 2] * 1000
        return stats

    async def run(self, query: str) -> bytes:
        """The JSON body of ``query``'s rows; ``QueryFailed`` when it is refused or fails."""
        cancel = threading.Event()
        job = self._pool.submit(self._run, query, cancel)
        try:
            return await asyncio.wrap_future(job)
        except asyncio.CancelledError:
            # Serve cancels the request when its HTTP client disconnects: stop the query too
            # (a job still queued sees the flag and never starts).
            cancel.set()
            with self._lock:
                self._stats["cancelled"] += 1
            raise
        except (QueryRefused, duckdb.Error) as exc:
            raise QueryFailed(f"{type(exc).__name__}: {exc}") from None

    def _run(self, query: str, cancel: threading.Event) -> bytes:
        """On a worker thread: the query on its own cursor, and the JSON body of its rows."""
        start = time.perf_counter()
        cursor = self._views().cursor()
        with self._lock:
            self._stats["running"] += 1
        try:
            selection = run_select(
                cursor,
                query,
                max_rows=self._max_rows,
                timeout_s=self._timeout_s,
                cancel=cancel,
                watchdog=self._watchdog,
            )
        except QueryTimeout:
            with self._lock:
                self._stats["timed_out"] += 1
            raise
        finally:
            cursor.close()
            with self._lock:
                self._stats["running"] -= 1
                self._stats["done"] += 1
        table = selection.table
        body = {
            "columns": table.column_names,
            "rows": [[jsonable(v) for v in row.values()] for row in table.to_pylist()],
            "truncated": selection.truncated,
            "note": selection.note,
        }
        encoded = json.dumps(body, default=str, allow_nan=False).encode()
        with self._lock:
            self._seconds.append(time.perf_counter() - start)
        return encoded
