"""ResultsStore: atomic writes, is_complete accepting only whole files of the right shape (pages
included), the manifest, and the output folder's checks and lock."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from processes import default_ctrl_c

from sweep.results.schema import PROMPTS, SAMPLES, SCHEMA_VERSION
from sweep.results.store import (
    LOCK_NAME,
    META_ROWS,
    META_SHARD,
    META_VERSION,
    ManifestError,
    OutputError,
    ResultsStore,
)

ROOT = Path(__file__).resolve().parent.parent


def sample_rows(count: int, shard_id: str = "shard-a") -> pa.Table:
    rows = [
        {
            "run_id": "run",
            "shard_id": shard_id,
            "config_id": "cell",
            "settings": "{}",
            "model": "tiny",
            "model_params": 1000,
            "strategy": "sampling",
            "dataset": "arith",
            "problem_id": f"p{i // 2}",
            "prompt_id": "prompt",
            "sample_index": i % 2,
            "seed": 7,
            "temperature": 0.7,
            # Varied text so the file is big enough that truncation cuts real data.
            "completion": f"The answer is {i}. " * (i + 1),
            "extracted_answer": str(i),
            "answer_key": str(i),
            "correct": i % 3 == 0,
            "prompt_tokens": 10,
            "completion_tokens": 5 + i,
            "finish_reason": "stop",
            "cumulative_logprob": -1.5 * i,
            "prompt_flops": 2.0e4,
            "completion_flops": 2.0e3 * (5 + i),
            "context_flops": 0.0,
            "latency_s": 0.25,
            "error": None,
            "reward_flops": 0.0,
        }
        for i in range(count)
    ]
    return pa.Table.from_pylist(rows, schema=SAMPLES)


@pytest.fixture
def store(tmp_path: Path) -> ResultsStore:
    return ResultsStore(str(tmp_path / "out"))


def write_samples(store: ResultsStore, rows: int = 6, shard_id: str = "shard-a") -> str:
    path = store.samples_path("tiny", "sampling", shard_id)
    store.write_table(path, sample_rows(rows, shard_id), schema=SAMPLES, shard_id=shard_id)
    return path


def test_paths_follow_layout(store: ResultsStore, tmp_path: Path) -> None:
    root = str((tmp_path / "out").resolve())
    assert store.samples_path("m", "s", "abc") == f"{root}/samples/model=m/strategy=s/abc.parquet"
    assert store.problems_path("d", "h") == f"{root}/problems/dataset=d/h.parquet"
    assert store.prompts_path("m", "h") == f"{root}/prompts/model=m/h.parquet"
    assert store.manifest_path == f"{root}/manifest.json"


def test_write_then_complete(store: ResultsStore) -> None:
    path = write_samples(store)
    assert store.is_complete(path, schema=SAMPLES, rows=6, shard_id="shard-a")
    assert store.is_complete(path, schema=SAMPLES, rows=None, shard_id="shard-a")


def test_written_file_is_cast_and_stamped(store: ResultsStore) -> None:
    path = store.samples_path("tiny", "sampling", "shard-a")
    # A loose input type (int64 sample_index) is cast to the schema.
    loose = sample_rows(4).cast(
        pa.schema([f.with_type(pa.int64()) if f.name == "sample_index" else f for f in SAMPLES])
    )
    store.write_table(path, loose, schema=SAMPLES, shard_id="shard-a")
    table = pq.read_table(path)
    assert table.schema.remove_metadata().equals(SAMPLES)
    meta = table.schema.metadata
    assert meta[META_SHARD] == b"shard-a"
    assert meta[META_ROWS] == b"4"
    assert meta[META_VERSION] == SCHEMA_VERSION.encode()
    assert table.to_pylist() == sample_rows(4).to_pylist()


def test_missing_file_is_not_complete(store: ResultsStore) -> None:
    path = store.samples_path("tiny", "sampling", "absent")
    assert not store.is_complete(path, schema=SAMPLES, rows=6, shard_id="absent")


def test_directory_at_path_is_not_complete(store: ResultsStore) -> None:
    path = store.samples_path("tiny", "sampling", "dir")
    Path(path).mkdir(parents=True)
    assert not store.is_complete(path, schema=SAMPLES, rows=None, shard_id="dir")


@pytest.mark.parametrize("keep", [0.0, 0.5, 0.9])
def test_truncated_file_is_not_complete(store: ResultsStore, keep: float) -> None:
    path = write_samples(store)
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: int(len(data) * keep)])
    assert not store.is_complete(path, schema=SAMPLES, rows=6, shard_id="shard-a")


def test_cut_tail_bytes_is_not_complete(store: ResultsStore) -> None:
    path = write_samples(store)
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[:-1])
    assert not store.is_complete(path, schema=SAMPLES, rows=6, shard_id="shard-a")


def test_garbage_file_is_not_complete(store: ResultsStore) -> None:
    path = store.samples_path("tiny", "sampling", "shard-a")
    Path(path).parent.mkdir(parents=True)
    Path(path).write_text("not parquet at all, but long enough to have a tail PAR1")
    assert not store.is_complete(path, schema=SAMPLES, rows=6, shard_id="shard-a")


def test_different_schema_is_not_complete(store: ResultsStore) -> None:
    path = store.samples_path("tiny", "sampling", "shard-a")
    prompts = pa.table(
        {
            "model": ["tiny"] * 6,
            "dataset": ["arith"] * 6,
            "problem_id": [f"p{i}" for i in range(6)],
            "prompt_id": ["x"] * 6,
            "prompt": ["Q"] * 6,
            "prompt_tokens": [3] * 6,
        }
    )
    store.write_table(path, prompts, schema=PROMPTS, shard_id="shard-a")
    assert store.is_complete(path, schema=PROMPTS, rows=6, shard_id="shard-a")
    assert not store.is_complete(path, schema=SAMPLES, rows=6, shard_id="shard-a")


def test_schema_missing_one_column_is_not_complete(store: ResultsStore) -> None:
    path = write_samples(store)
    table = pq.read_table(path)
    pq.write_table(table.drop_columns(["error"]), path)  # a file from an older layout
    assert not store.is_complete(path, schema=SAMPLES, rows=6, shard_id="shard-a")


def test_wrong_row_count_is_not_complete(store: ResultsStore) -> None:
    path = write_samples(store, rows=6)
    assert not store.is_complete(path, schema=SAMPLES, rows=8, shard_id="shard-a")
    assert not store.is_complete(path, schema=SAMPLES, rows=4, shard_id="shard-a")


def test_stated_rows_disagreeing_with_content_is_not_complete(store: ResultsStore) -> None:
    path = write_samples(store, rows=6)
    table = pq.read_table(path)
    metadata = {**table.schema.metadata, META_ROWS: b"8"}
    pq.write_table(table.replace_schema_metadata(metadata), path)
    assert not store.is_complete(path, schema=SAMPLES, rows=None, shard_id="shard-a")


def test_wrong_shard_id_is_not_complete(store: ResultsStore) -> None:
    path = write_samples(store, shard_id="shard-a")
    assert not store.is_complete(path, schema=SAMPLES, rows=6, shard_id="shard-b")
    assert not store.is_complete(path, schema=SAMPLES, rows=6)  # no id given: "" != "shard-a"


def test_file_without_our_metadata_is_not_complete(store: ResultsStore) -> None:
    path = store.samples_path("tiny", "sampling", "shard-a")
    Path(path).parent.mkdir(parents=True)
    pq.write_table(sample_rows(6), path)  # right schema and rows, but not written by the store
    assert not store.is_complete(path, schema=SAMPLES, rows=6, shard_id="shard-a")


def test_rewrite_replaces_and_leaves_no_temp_files(store: ResultsStore, tmp_path: Path) -> None:
    path = write_samples(store, rows=6)
    write_samples(store, rows=4)  # a retry that produced another table: replaced whole
    assert pq.read_metadata(path).num_rows == 4
    store.write_manifest({"a": 1})
    store.write_manifest({"a": 2})
    root = tmp_path / "out"
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert files == ["manifest.json", "samples/model=tiny/strategy=sampling/shard-a.parquet"]
    assert not [p for p in (tmp_path / "out").rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]


def test_manifest_round_trip(store: ResultsStore) -> None:
    assert store.read_manifest() == {}
    manifest = {
        "name": "smoke",
        "shards": {"abc": {"rows": 6, "model": "tiny"}},
        "n": [1, 2, 4],
        "nested": {"ok": True, "none": None, "ratio": 0.5},
    }
    store.write_manifest(manifest)
    assert store.read_manifest() == manifest
    store.write_manifest({"name": "smoke", "shards": {}})
    assert store.read_manifest() == {"name": "smoke", "shards": {}}


def test_manifest_serialises_non_json_values_as_text(store: ResultsStore, tmp_path: Path) -> None:
    store.write_manifest({"output": tmp_path})
    assert store.read_manifest() == {"output": str(tmp_path)}


def test_store_accepts_file_uri(tmp_path: Path) -> None:
    store = ResultsStore((tmp_path / "uri").resolve().as_uri())
    path = store.samples_path("tiny", "sampling", "shard-a")
    store.write_table(path, sample_rows(2, "shard-a"), schema=SAMPLES, shard_id="shard-a")
    assert store.is_complete(path, schema=SAMPLES, rows=2, shard_id="shard-a")
    assert (tmp_path / "uri" / "samples" / "model=tiny" / "strategy=sampling" / "shard-a.parquet").is_file()


# --- damaged pages behind an intact footer ---------------------------------------------------


def flip_byte_in_column(path: str, column: str) -> None:
    """Damage the last data byte of ``column``'s chunk: the footer stays whole and readable."""
    meta = pq.read_metadata(path)
    index = meta.schema.names.index(column)
    chunk = meta.row_group(0).column(index)
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    position = start + chunk.total_compressed_size - 1
    data = bytearray(Path(path).read_bytes())
    data[position] ^= 0xFF
    Path(path).write_bytes(bytes(data))


@pytest.mark.parametrize("column", ["completion", "problem_id", "correct", "cumulative_logprob", "seed"])
def test_damaged_page_with_intact_footer_is_not_complete(
    store: ResultsStore, column: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_samples(store, rows=40)
    flip_byte_in_column(path, column)
    assert pq.read_metadata(path).num_rows == 40  # the footer alone says all is well
    with caplog.at_level(logging.WARNING):
        assert not store.is_complete(path, schema=SAMPLES, rows=40, shard_id="shard-a")
    assert "damaged data pages" in caplog.text


def test_damaged_shard_is_redone_whole(store: ResultsStore) -> None:
    """What a launch does with a damaged shard: it is not complete, so the shard is written
    again, and then it reads back exactly."""
    path = write_samples(store, rows=40)
    flip_byte_in_column(path, "completion")
    assert not store.is_complete(path, schema=SAMPLES, rows=40, shard_id="shard-a")
    write_samples(store, rows=40)
    assert store.is_complete(path, schema=SAMPLES, rows=40, shard_id="shard-a")
    assert pq.read_table(path).to_pylist() == sample_rows(40).to_pylist()


def test_file_written_without_page_checksums_still_counts(store: ResultsStore) -> None:
    """Shards written before pages carried checksums are read back whole, not redone."""
    path = store.samples_path("tiny", "sampling", "shard-a")
    metadata = {META_SHARD: b"shard-a", META_ROWS: b"6", META_VERSION: SCHEMA_VERSION.encode()}
    Path(path).parent.mkdir(parents=True)
    pq.write_table(sample_rows(6).replace_schema_metadata(metadata), path, compression="zstd")
    assert store.is_complete(path, schema=SAMPLES, rows=6, shard_id="shard-a")


# --- a corrupt manifest ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [b'{"runs": [', b"\xff\xfe not utf-8", b"", b'["a", "list"]', b"null"],
    ids=["cut-json", "binary", "empty", "list", "null"],
)
def test_corrupt_manifest_names_the_file_and_the_way_out(store: ResultsStore, content: bytes) -> None:
    store.write_manifest({"runs": []})
    Path(store.manifest_path).write_bytes(content)
    with pytest.raises(ManifestError) as info:
        store.read_manifest()
    message = str(info.value)
    assert store.manifest_path in message and "corrupt manifest" in message
    assert "rerun the sweep's launch command" in message


def test_corrupt_manifest_is_set_aside_with_its_bytes(store: ResultsStore) -> None:
    store.write_manifest({"runs": [{"run_id": "a"}]})
    Path(store.manifest_path).write_bytes(b'{"runs": [{"run_id": "a"')
    kept = store.set_aside_manifest()
    assert Path(kept).read_bytes() == b'{"runs": [{"run_id": "a"'
    assert Path(kept).name.startswith("manifest.corrupt-") and kept.endswith(".json")
    assert store.read_manifest() == {}  # the next launch starts a new one


# --- the output folder -----------------------------------------------------------------------


@pytest.mark.parametrize("output", ["", "   "])
def test_empty_output_is_refused(output: str) -> None:
    with pytest.raises(OutputError, match="output: empty"):
        ResultsStore(output)


def test_check_writable_creates_the_folder(tmp_path: Path) -> None:
    store = ResultsStore(str(tmp_path / "a" / "b"))
    store.check_writable()
    assert (tmp_path / "a" / "b").is_dir()
    assert list((tmp_path / "a" / "b").iterdir()) == []  # the write test leaves nothing


def test_output_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "results").write_text("not a folder")
    with pytest.raises(OutputError, match="the output path is a file"):
        ResultsStore(str(tmp_path / "results")).check_writable()
    assert (tmp_path / "results").read_text() == "not a folder"  # untouched
    with pytest.raises(OutputError, match=f"{tmp_path / 'results'}, above it, is a file"):
        ResultsStore(str(tmp_path / "results" / "sub")).check_writable()


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder this process cannot write in: a read-only one when not root; as root, a
    kernel filesystem folder that refuses new files (skip when there is none)."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir(mode=0o555)
        return folder
    for candidate in (Path("/sys/fs"), Path("/proc/self")):
        try:
            (candidate / ".write-probe").touch()
        except OSError:
            return candidate
        (candidate / ".write-probe").unlink()
    pytest.skip("no folder here refuses writes to root")


def test_unwritable_output_is_refused(tmp_path: Path) -> None:
    folder = unwritable_folder(tmp_path)
    with pytest.raises(OutputError, match="cannot write in the folder"):
        ResultsStore(str(folder)).check_writable()
    with pytest.raises(OutputError, match="cannot create the folder"):
        ResultsStore(str(folder / "sub" / "out")).check_writable()


# --- the output folder's lock ------------------------------------------------------------------


def test_second_lock_is_refused_naming_the_holder(store: ResultsStore) -> None:
    with store.lock():
        holder = json.loads((Path(store.root) / LOCK_NAME).read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with pytest.raises(OutputError) as info:
            ResultsStore(store.output).lock()  # another open of the file: flock refuses it
        message = str(info.value)
        assert f"pid {os.getpid()}" in message and socket.gethostname() in message
        assert holder["started"] in message and "in use by another launch" in message
    with store.lock():  # released: taken again
        pass
    assert (Path(store.root) / LOCK_NAME).read_text() == ""  # a clean release leaves no holder


def test_lock_is_released_when_the_body_raises(store: ResultsStore) -> None:
    with pytest.raises(RuntimeError), store.lock():
        raise RuntimeError("a crash inside the sweep")
    store.lock().release()


def test_lock_of_a_file_uri_is_the_local_folder(tmp_path: Path) -> None:
    uri = ResultsStore((tmp_path / "uri").resolve().as_uri())
    with uri.lock(), pytest.raises(OutputError, match="in use"):
        ResultsStore(str(tmp_path / "uri")).lock()


def test_stale_lock_is_taken_over_with_a_warning(
    store: ResultsStore, caplog: pytest.LogCaptureFixture
) -> None:
    Path(store.root).mkdir(parents=True)
    stale = {"pid": 2**22 + 12345, "host": "elsewhere", "started": "2020-01-01T00:00:00+00:00"}
    (Path(store.root) / LOCK_NAME).write_text(json.dumps(stale))  # left by a launch that died
    with caplog.at_level(logging.WARNING), store.lock():
        assert json.loads((Path(store.root) / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert "taking over the lock" in caplog.text and f"pid {stale['pid']} on host elsewhere" in caplog.text


HOLDER = textwrap.dedent(
    """
    import sys, time
    from sweep.results.store import ResultsStore
    with ResultsStore(sys.argv[1]).lock():
        print("locked", flush=True)
        time.sleep(120)
    """
)


def hold_in_subprocess(output: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, output],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_ctrl_c,
    )
    assert process.stdout is not None and process.stdout.readline() == "locked\n"
    return process


def test_lock_is_released_on_ctrl_c(store: ResultsStore, caplog: pytest.LogCaptureFixture) -> None:
    process = hold_in_subprocess(store.output)
    with pytest.raises(OutputError, match=f"pid {process.pid}"):
        store.lock()
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)
    with caplog.at_level(logging.WARNING), store.lock():
        pass
    assert "taking over" not in caplog.text  # released cleanly on the way out


def test_lock_of_a_killed_holder_is_taken_over(store: ResultsStore, caplog: pytest.LogCaptureFixture) -> None:
    process = hold_in_subprocess(store.output)
    process.kill()  # kill -9: no clean release, but the kernel drops the flock
    process.wait(timeout=60)
    with caplog.at_level(logging.WARNING), store.lock():
        pass
    assert f"taking over the lock on {store.root}" in caplog.text and f"pid {process.pid}" in caplog.text
