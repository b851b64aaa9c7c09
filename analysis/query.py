"""Command line: ``python -m analysis.query <output> "SELECT ..."`` runs read-only SQL over a sweep's results.

The query sees the views ``samples``, ``problems``, ``prompts`` and ``nodes`` of one run (the
latest, or ``--run``), ``all_samples`` / ``all_nodes`` over every run and ``runs``
(``analysis.views``), and may read files under the results folder, nothing else: the sandbox is
``analysis.sandbox.connect_readonly`` plus ``run_select``. Results print as a table, or as CSV /
JSON (an array of row objects) on stdout; Parquet needs ``--out``. A refused or failing query,
or a missing or empty results folder, exits 2 with one message on stderr.

Limits: on stdout a result stops at 10,000 rows (a note on stderr says it was cut) and a
statement at 60 s; ``--max-rows`` and ``--timeout`` change them, ``--no-limit`` lifts both.
Exports with ``--out`` are unlimited unless those flags are given; Parquet is written as the
rows stream out of DuckDB. Values print as they are: the table never reads them as Rich markup.

Left out: remote (``s3://``) results folders, and more than one statement per call.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from analysis.sandbox import (
    DEFAULT_MAX_ROWS,
    DEFAULT_MEMORY_LIMIT,
    DEFAULT_TIMEOUT_S,
    QueryRefused,
    connect_readonly,
    run_select,
    select_batches,
)

EXIT_USAGE = 2
FORMATS = ("table", "csv", "json", "parquet")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.query",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("output", help="the sweep's results folder")
    parser.add_argument("sql", help="one SELECT over samples / problems / prompts / nodes")
    parser.add_argument("--format", choices=FORMATS, default="table", help="default: table")
    parser.add_argument(
        "--out", help="write here instead of stdout (required for parquet); unlimited by default"
    )
    parser.add_argument(
        "--run", help="the run whose grid the views show (an id from the runs view); default: the latest"
    )
    parser.add_argument(
        "--max-rows",
        type=_positive_int,
        help=f"row cap (default on stdout: {DEFAULT_MAX_ROWS:,}; with --out: none)",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_seconds,
        help=f"statement timeout in seconds (default on stdout: {DEFAULT_TIMEOUT_S:g})",
    )
    parser.add_argument("--no-limit", action="store_true", help="lift the row cap and the timeout")
    parser.add_argument(
        "--memory-limit",
        default=DEFAULT_MEMORY_LIMIT,
        help=f"DuckDB's memory limit (default {DEFAULT_MEMORY_LIMIT})",
    )
    args = parser.parse_args(argv)
    if args.format == "parquet" and not args.out:
        print("error: --format parquet needs --out FILE", file=sys.stderr)
        return EXIT_USAGE
    if args.no_limit and (args.max_rows is not None or args.timeout is not None):
        print(
            "error: --no-limit lifts both limits; drop --max-rows / --timeout, or --no-limit", file=sys.stderr
        )
        return EXIT_USAGE
    limited = not args.no_limit and not args.out  # stdout gets the defaults; exports only what is asked
    max_rows = args.max_rows if args.max_rows is not None else (DEFAULT_MAX_ROWS if limited else None)
    timeout_s = args.timeout if args.timeout is not None else (DEFAULT_TIMEOUT_S if limited else None)

    try:
        con = connect_readonly(args.output, run=args.run, memory_limit=args.memory_limit)
        if args.format == "parquet" and max_rows is None:
            _export_parquet(con, args.sql, args.out, timeout_s=timeout_s)
            return 0
        selection = run_select(con, args.sql, max_rows=max_rows, timeout_s=timeout_s)
    except (QueryRefused, duckdb.Error) as exc:
        print(f"error: {_describe(exc, args.output)}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"error: cannot write {args.out}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except pa.ArrowException as exc:  # a failure while the export streams out of DuckDB
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    table = selection.table
    try:
        if args.format == "parquet":
            pq.write_table(table, args.out)
        elif args.out:
            with open(args.out, "w", newline="") as sink:
                TEXT_WRITERS[args.format](table, sink)
        else:
            TEXT_WRITERS[args.format](table, sys.stdout, note=selection.note)
    except OSError as exc:
        print(f"error: cannot write {args.out or 'stdout'}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if selection.note:
        print(f"note: {selection.note}; --max-rows N raises the cap, --no-limit lifts it", file=sys.stderr)
    return 0


def print_table(table: pa.Table, sink: TextIO, *, note: str | None = None) -> None:
    """A Rich table. Cells and headers are ``Text``, never markup: ``\\boxed{[a,b]}`` prints as written."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(file=sink, width=max(Console(file=sink).width, 150))
    view = Table(caption=f"{table.num_rows} rows")
    for field in table.schema:
        numeric = pa.types.is_integer(field.type) or pa.types.is_floating(field.type)
        view.add_column(Text(field.name), justify="right" if numeric else "left")
    for row in table.to_pylist():
        view.add_row(*(Text("NULL" if value is None else str(value)) for value in row.values()))
    console.print(view)
    if note:
        console.print(Text(f"({note})", style="dim"))


def print_csv(table: pa.Table, sink: TextIO, *, note: str | None = None) -> None:
    # CSV has no nested values: list/struct/map columns (step_scores) go out as JSON text.
    columns = [
        pa.array([None if v is None else json.dumps(jsonable(v)) for v in column.to_pylist()], pa.string())
        if pa.types.is_nested(column.type)
        else column
        for column in table.columns
    ]
    flat = pa.table(columns, names=table.column_names)
    buffer = pa.BufferOutputStream()
    pacsv.write_csv(flat, buffer)
    sink.write(buffer.getvalue().to_pybytes().decode())


def print_json(table: pa.Table, sink: TextIO, *, note: str | None = None) -> None:
    json.dump(jsonable(table.to_pylist()), sink, default=str)
    sink.write("\n")


def jsonable(value: Any) -> Any:
    """NaN and infinities as null (JSON has no spelling for them); decimals as numbers.

    DuckDB sums integers to HUGEINT, which reaches Arrow as a decimal: ``sum(correct::INT)``
    should read back as 2, not "2".
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


TEXT_WRITERS: dict[str, Callable[..., None]] = {
    "table": print_table,
    "csv": print_csv,
    "json": print_json,
}


def _export_parquet(con: duckdb.DuckDBPyConnection, sql: str, path: str, *, timeout_s: float | None) -> None:
    """Every row of ``sql`` into ``path``, batch by batch as DuckDB produces them; no partial file
    is left when the query fails or times out."""
    try:
        with (
            select_batches(con, sql, timeout_s=timeout_s) as reader,
            pq.ParquetWriter(path, reader.schema) as writer,
        ):
            for batch in reader:
                writer.write_batch(batch)
    except BaseException:
        Path(path).unlink(missing_ok=True)
        raise


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text}")
    return value


def _positive_seconds(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


def _describe(exc: Exception, output: str) -> str:
    message = str(exc)
    if isinstance(exc, duckdb.PermissionException):
        message += f" (queries may read only the views and files under {output})"
    return message


if __name__ == "__main__":
    sys.exit(main())
