"""ResultsStore: atomic writes, and is_complete accepting only whole files of the right shape."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sweep.schema import PROMPTS, SAMPLES, SCHEMA_VERSION
from sweep.storage import META_ROWS, META_SHARD, META_VERSION, ResultsStore


def sample_rows(count: int, shard_id: str = "shard-a") -> pa.Table:
    rows = [
        {
            "run_id": "run",
            "shard_id": shard_id,
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
