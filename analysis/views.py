"""DuckDB views over a sweep's results folder, and the loader for ``analysis/sql/*.sql``.

Views: ``samples`` (one row per sample), ``problems``, ``prompts``. Each is created only
when its files exist, so a fresh or partial output folder still opens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow.fs as pafs

SQL_DIR = Path(__file__).parent / "sql"
TABLES = ("samples", "problems", "prompts")


def load_sql(name: str) -> str:
    """The text of ``analysis/sql/<name>.sql``."""
    return (SQL_DIR / f"{name}.sql").read_text()


def connect(output: str, *, connection: duckdb.DuckDBPyConnection | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with views over ``output``'s tables."""
    con = connection or duckdb.connect(":memory:")
    root = str(Path(output).resolve()) if "://" not in output else output.rstrip("/")
    for table in TABLES:
        pattern = f"{root}/{table}/**/*.parquet"
        if _has_files(output, table):
            # The partition values are columns of the files already; hive parsing would clash.
            con.execute(
                f"CREATE OR REPLACE VIEW {table} AS "
                f"SELECT * FROM read_parquet('{_quote(pattern)}', hive_partitioning = false, union_by_name = true)"
            )
    return con


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
