"""Command line: ``python -m analysis.query <output> "SELECT ..."`` runs read-only SQL over a sweep's results.

The query sees the views ``samples``, ``problems`` and ``prompts`` (``analysis.views``) and
may read files under the results folder, nothing else: the sandbox is
``analysis.views.connect_readonly`` plus ``run_select``. Results print as a table, or as
CSV / JSON (an array of row objects) on stdout; Parquet needs ``--out``. A refused or
failing query, or a missing or empty results folder, exits 2 with one message on stderr.

Left out: remote (``s3://``) results folders, and more than one statement per call.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TextIO

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from analysis.views import QueryRefused, connect_readonly, run_select

EXIT_USAGE = 2
FORMATS = ("table", "csv", "json", "parquet")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.query", description=__doc__)
    parser.add_argument("output", help="the sweep's results folder")
    parser.add_argument("sql", help="one SELECT over samples / problems / prompts")
    parser.add_argument("--format", choices=FORMATS, default="table", help="default: table")
    parser.add_argument("--out", help="write here instead of stdout (required for parquet)")
    args = parser.parse_args(argv)
    if args.format == "parquet" and not args.out:
        print("error: --format parquet needs --out FILE", file=sys.stderr)
        return EXIT_USAGE

    try:
        con = connect_readonly(args.output)
        table = run_select(con, args.sql).to_arrow_table()
    except (QueryRefused, duckdb.Error) as exc:
        print(f"error: {_describe(exc, args.output)}", file=sys.stderr)
        return EXIT_USAGE

    try:
        if args.format == "parquet":
            pq.write_table(table, args.out)
        elif args.out:
            with open(args.out, "w", newline="") as sink:
                TEXT_WRITERS[args.format](table, sink)
        else:
            TEXT_WRITERS[args.format](table, sys.stdout)
    except OSError as exc:
        print(f"error: cannot write {args.out or 'stdout'}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return 0


def print_table(table: pa.Table, sink: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=sink, width=max(Console(file=sink).width, 150))
    view = Table(caption=f"{table.num_rows} rows")
    for field in table.schema:
        numeric = pa.types.is_integer(field.type) or pa.types.is_floating(field.type)
        view.add_column(field.name, justify="right" if numeric else "left")
    for row in table.to_pylist():
        view.add_row(*("NULL" if value is None else str(value) for value in row.values()))
    console.print(view)


def print_csv(table: pa.Table, sink: TextIO) -> None:
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


def print_json(table: pa.Table, sink: TextIO) -> None:
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


TEXT_WRITERS: dict[str, Callable[[pa.Table, TextIO], None]] = {
    "table": print_table,
    "csv": print_csv,
    "json": print_json,
}


def _describe(exc: Exception, output: str) -> str:
    message = str(exc)
    if isinstance(exc, duckdb.PermissionException):
        message += f" (queries may read only the views and files under {output})"
    return message


if __name__ == "__main__":
    sys.exit(main())
