"""Results layout and idempotent, atomic Parquet writes (local paths or pyarrow filesystem URIs).

A shard's file is written to a temporary name and renamed into place, so a file at its
final name is either whole or absent. A file counts as complete only if its footer reads,
its schema is ours and its row count is the one the shard must produce; anything else is
redone. That makes every write idempotent, which is what lets Ray retry freely.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from sweep.schema import SCHEMA_VERSION

log = logging.getLogger(__name__)

META_SHARD = b"scaling_sweep.shard_id"
META_ROWS = b"scaling_sweep.rows"
META_VERSION = b"scaling_sweep.schema_version"


@dataclass(frozen=True)
class ResultsStore:
    """The output folder of one sweep: the filesystem is resolved once per process and pickles with it."""

    output: str

    def __post_init__(self) -> None:
        # Absolute at construction, on the driver: Ray workers may run in another directory.
        if "://" not in self.output:
            object.__setattr__(self, "output", str(Path(self.output).resolve()))

    @cached_property
    def _fs_root(self) -> tuple[pafs.FileSystem, str]:
        if "://" in self.output:
            return pafs.FileSystem.from_uri(self.output)
        return pafs.LocalFileSystem(), str(Path(self.output).resolve())

    @property
    def fs(self) -> pafs.FileSystem:
        return self._fs_root[0]

    @property
    def root(self) -> str:
        return self._fs_root[1]

    def samples_path(self, model: str, strategy: str, shard_id: str) -> str:
        return f"{self.root}/samples/model={model}/strategy={strategy}/{shard_id}.parquet"

    def nodes_path(self, model: str, strategy: str, shard_id: str) -> str:
        return f"{self.root}/nodes/model={model}/strategy={strategy}/{shard_id}.parquet"

    def problems_path(self, dataset: str, digest: str) -> str:
        return f"{self.root}/problems/dataset={dataset}/{digest}.parquet"

    def prompts_path(self, model: str, digest: str) -> str:
        return f"{self.root}/prompts/model={model}/{digest}.parquet"

    @property
    def manifest_path(self) -> str:
        return f"{self.root}/manifest.json"

    def write_table(self, path: str, table: pa.Table, *, schema: pa.Schema, shard_id: str = "") -> None:
        """Cast to ``schema`` and write atomically, stamping shard id and row count."""
        metadata = {
            META_SHARD: shard_id.encode(),
            META_ROWS: str(table.num_rows).encode(),
            META_VERSION: SCHEMA_VERSION.encode(),
        }
        table = table.cast(schema).replace_schema_metadata(metadata)
        fs = self.fs
        parent = path.rsplit("/", 1)[0]
        fs.create_dir(parent, recursive=True)
        temporary = f"{parent}/.{uuid.uuid4().hex}.tmp"
        with fs.open_output_stream(temporary) as sink:
            pq.write_table(table, sink, compression="zstd")
        fs.move(temporary, path)

    def is_complete(self, path: str, *, schema: pa.Schema, rows: int | None, shard_id: str = "") -> bool:
        """Whether ``path`` holds a whole, schema-valid file of the expected size."""
        fs = self.fs
        if fs.get_file_info(path).type != pafs.FileType.File:
            return False
        try:
            with fs.open_input_file(path) as source:
                meta = pq.ParquetFile(source).metadata
                file_schema = meta.schema.to_arrow_schema()
        except (OSError, pa.ArrowInvalid) as exc:
            log.warning("redoing %s: unreadable (%s)", path, exc)
            return False
        kv = file_schema.metadata or {}
        if not file_schema.remove_metadata().equals(schema):
            log.warning("redoing %s: schema differs", path)
            return False
        stated = int(kv.get(META_ROWS, b"-1"))
        if kv.get(META_SHARD, b"").decode() != shard_id or meta.num_rows != stated:
            log.warning("redoing %s: metadata does not match its content", path)
            return False
        if rows is not None and meta.num_rows != rows:
            log.warning("redoing %s: %d rows, expected %d", path, meta.num_rows, rows)
            return False
        return True

    def read_manifest(self) -> dict[str, Any]:
        fs = self.fs
        if fs.get_file_info(self.manifest_path).type != pafs.FileType.File:
            return {}
        with fs.open_input_stream(self.manifest_path) as source:
            return json.loads(source.read().decode())

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        fs = self.fs
        fs.create_dir(self.root, recursive=True)
        temporary = f"{self.root}/.manifest.{uuid.uuid4().hex}.tmp"
        with fs.open_output_stream(temporary) as sink:
            sink.write(json.dumps(manifest, indent=2, default=str).encode())
        fs.move(temporary, self.manifest_path)
