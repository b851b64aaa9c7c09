"""Results layout and idempotent, atomic Parquet writes (local paths or pyarrow filesystem URIs).

The layout is written here once, for the writer and every reader: one folder per table
(``TABLES``), partitioned by model and strategy (samples, nodes), dataset (problems) or model
(prompts), one file per shard. Readers take ``table_glob`` and ``has_files`` instead of
spelling paths themselves.

A shard's file is written to a temporary name and renamed into place, so a file at its
final name is either whole or absent. A file counts as complete only if its footer reads,
its schema is ours, its row count is the one the shard must produce and every page reads
back (pages carry CRC checksums, verified on reading); anything else is redone. That makes
every write idempotent, which is what lets Ray retry freely.

One launch at a time writes a local output folder: ``lock`` holds an ``flock`` on
``.sweep.lock`` in it. Other filesystems (``s3://``, ``gs://``) get no lock: flock does not
reach them, so two launches into one URI would both compute and race on the manifest.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from sweep.results.schema import SCHEMA_VERSION

log = logging.getLogger(__name__)

META_SHARD = b"scaling_sweep.shard_id"
META_ROWS = b"scaling_sweep.rows"
META_VERSION = b"scaling_sweep.schema_version"
LOCK_NAME = ".sweep.lock"
TABLES = ("samples", "problems", "prompts", "nodes")  # nodes: tree-search strategies only


class OutputError(Exception):
    """A user-caused problem with the output folder (not a folder, not writable, in use);
    the message names the path."""


class ManifestError(OutputError):
    """manifest.json exists but is not a JSON object; the message says how to recover."""

    def __init__(self, path: str, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(
            f"{path}: corrupt manifest ({reason}). The shards beside it are intact: rerun the sweep's "
            f"launch command, which sets the file aside and writes a new manifest (or move it aside yourself)"
        )


@dataclass(frozen=True)
class ResultsStore:
    """The output folder of one sweep: the filesystem is resolved once per process and pickles with it."""

    output: str

    def __post_init__(self) -> None:
        if not self.output.strip():
            raise OutputError("output: empty; give a results folder")
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

    @property
    def scheme(self) -> str:
        """What a reader such as DuckDB puts before ``root``: ``s3://`` and the like; empty for a
        local folder (a ``file://`` URI too), whose root is a plain path."""
        if "://" in self.output and not self.output.startswith("file://"):
            return self.output.split("://", 1)[0] + "://"
        return ""

    def uri(self, path: str) -> str:
        """``path`` (one of this store's, under ``root``) as a reader opens it: with ``scheme``."""
        return self.scheme + path

    def table_dir(self, table: str) -> str:
        """The folder of one of ``TABLES``; its files lie in partition folders below it."""
        assert table in TABLES, table
        return f"{self.root}/{table}"

    def table_glob(self, table: str) -> str:
        """Every Parquet file of ``table``, every run's, as one glob a reader opens (``uri``)."""
        return self.uri(f"{self.table_dir(table)}/**/*.parquet")

    def has_files(self, table: str) -> bool:
        """Whether any Parquet file of ``table`` exists (a fresh or partial folder may have none)."""
        selector = pafs.FileSelector(self.table_dir(table), recursive=True, allow_not_found=True)
        return any(info.path.endswith(".parquet") for info in self.fs.get_file_info(selector))

    def samples_path(self, model: str, strategy: str, shard_id: str) -> str:
        return f"{self.table_dir('samples')}/model={model}/strategy={strategy}/{shard_id}.parquet"

    def nodes_path(self, model: str, strategy: str, shard_id: str) -> str:
        return f"{self.table_dir('nodes')}/model={model}/strategy={strategy}/{shard_id}.parquet"

    def problems_path(self, dataset: str, digest: str) -> str:
        return f"{self.table_dir('problems')}/dataset={dataset}/{digest}.parquet"

    def prompts_path(self, model: str, digest: str) -> str:
        return f"{self.table_dir('prompts')}/model={model}/{digest}.parquet"

    @property
    def manifest_path(self) -> str:
        return f"{self.root}/manifest.json"

    @property
    def local_root(self) -> str | None:
        """The folder on this machine's filesystem (``file://`` URIs too); None for other stores."""
        return self.root if isinstance(self.fs, pafs.LocalFileSystem) else None

    def check_writable(self) -> None:
        """Create the output folder if needed and make sure this process can write in it.

        Raises OutputError naming the path: a file where the folder should be (or above it),
        a folder that cannot be created or written. Only local folders are checked; other
        stores fail on the first write.
        """
        root = self.local_root
        if root is None:
            return
        folder = Path(root)
        for place in (folder, *folder.parents):
            if place.exists() or place.is_symlink():
                if not place.is_dir():
                    what = "the output path" if place == folder else f"{place}, above it,"
                    raise OutputError(f"output {folder}: {what} is a file, not a folder")
                break
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"output {folder}: cannot create the folder: {exc.strerror or exc}") from None
        probe = folder / f".write-test.{uuid.uuid4().hex}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise OutputError(f"output {folder}: cannot write in the folder: {exc.strerror or exc}") from None

    def lock(self) -> OutputLock:
        """Take the output folder for this process; another launch into it gets OutputError.

        The lock is an ``flock`` on ``.sweep.lock``, which the kernel drops when the process
        ends however it ends (Ctrl-C, a crash, kill -9), so a dead launch never blocks the
        next one. The file names its holder (pid, host, start time); the holder empties it on
        a clean release, so one left filled was a launch that died: it is taken over, with a
        warning. Stores that are not local folders get no lock (see the module docstring).
        Use it as a context manager, or call ``release()``.
        """
        root = self.local_root
        if root is None:
            log.warning("%s: not a local folder, so no lock: never launch twice into it at once", self.output)
            return OutputLock(None)
        path = os.path.join(root, LOCK_NAME)
        try:
            os.makedirs(root, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise OutputError(
                f"output {root}: cannot create the lock file {path}: {exc.strerror or exc}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_holder(fd)
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise OutputError(
                    f"output {root} is in use by another launch ({_describe_holder(holder)}; "
                    f"lock file {path}): wait for it to end or stop it, then rerun"
                ) from None
            # A filesystem without flock (some network mounts): run, but say so.
            log.warning("%s: cannot lock (%s): do not launch twice into it at once", path, exc)
            return OutputLock(None)
        previous = _read_holder(fd)
        if previous:
            log.warning(
                "taking over the lock on %s: its holder (%s) ended without releasing it",
                root,
                _describe_holder(previous),
            )
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        return OutputLock(fd)

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
            # Page checksums let is_complete tell a damaged page from a whole one.
            pq.write_table(table, sink, compression="zstd", write_page_checksum=True)
        fs.move(temporary, path)

    def is_complete(self, path: str, *, schema: pa.Schema, rows: int | None, shard_id: str = "") -> bool:
        """Whether ``path`` holds a whole, schema-valid file of the expected size.

        The footer is checked first (cheap), then every page is read back, checksums verified:
        a damaged page behind an intact footer is caught here, not by a reader. That read costs
        about as much as the file is large (~50 ms for a 15 MB shard of 12,800 samples, on one
        core), at every launch, for every shard of the grid.
        """
        fs = self.fs
        if fs.get_file_info(path).type != pafs.FileType.File:
            return False
        try:
            with fs.open_input_file(path) as source:
                meta = pq.ParquetFile(source).metadata
                file_schema = meta.schema.to_arrow_schema()
        except (OSError, ValueError, pa.ArrowException) as exc:
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
        try:
            with fs.open_input_file(path) as source:
                # Batch by batch: one shard's decoded columns are never all in memory at once.
                pages = pq.ParquetFile(source, page_checksum_verification=True)
                read = sum(batch.num_rows for batch in pages.iter_batches())
        except (OSError, ValueError, pa.ArrowException) as exc:
            log.warning("redoing %s: damaged data pages (%s)", path, exc)
            return False
        if read != meta.num_rows:
            log.warning("redoing %s: %d rows read back, the footer says %d", path, read, meta.num_rows)
            return False
        return True

    def read_manifest(self) -> dict[str, Any]:
        """The manifest as a dict ({} when there is none yet).

        Raises ManifestError, naming the file and how to recover, when it is not a JSON object.
        """
        fs = self.fs
        if fs.get_file_info(self.manifest_path).type != pafs.FileType.File:
            return {}
        try:
            with fs.open_input_stream(self.manifest_path) as source:
                manifest = json.loads(source.read().decode())
        except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise ManifestError(self.manifest_path, str(exc)) from None
        if not isinstance(manifest, dict):
            raise ManifestError(self.manifest_path, f"a JSON {type(manifest).__name__}, not an object")
        return manifest

    def set_aside_manifest(self) -> str:
        """Rename the manifest to ``manifest.corrupt-<UTC time>.json``, keeping its bytes; returns that path.

        The shards do not depend on it: the next launch skips every complete one and writes a
        new manifest for its own grid.
        """
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        target = f"{self.root}/manifest.corrupt-{stamp}.json"
        self.fs.move(self.manifest_path, target)
        return target

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        fs = self.fs
        fs.create_dir(self.root, recursive=True)
        temporary = f"{self.root}/.manifest.{uuid.uuid4().hex}.tmp"
        with fs.open_output_stream(temporary) as sink:
            sink.write(json.dumps(manifest, indent=2, default=str).encode())
        fs.move(temporary, self.manifest_path)


class OutputLock:
    """A held output-folder lock (``ResultsStore.lock``); releasing it twice is harmless."""

    def __init__(self, fd: int | None) -> None:
        self._fd = fd  # None: nothing held (not a local folder, or no flock there)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)  # a clean release: the next launch has nothing to warn about
        finally:
            os.close(fd)  # closing drops the flock

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_holder(fd: int) -> dict[str, Any]:
    """What a lock file says about its holder ({} when empty or unreadable)."""
    try:
        size = os.fstat(fd).st_size
        holder = json.loads(os.pread(fd, min(size, 4096), 0).decode()) if size else {}
    except (OSError, ValueError):
        return {"unreadable": True}
    return holder if isinstance(holder, dict) else {"unreadable": True}


def _describe_holder(holder: dict[str, Any]) -> str:
    if not holder or "pid" not in holder:
        return "holder unknown"
    return f"pid {holder.get('pid')} on host {holder.get('host', '?')}, started {holder.get('started', '?')}"
