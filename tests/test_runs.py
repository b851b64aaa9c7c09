"""Readers show one run's grid: the latest by default, another by id, every run's only on purpose."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sample_rows import sample_row, write_shard

from analysis.estimators import compute_accuracy
from analysis.views import DuplicateRows, connect
from sweep.results.runs import RunNotFound, grid_record, select_run
from sweep.results.store import ResultsStore


def shard(shard_id: str, *, config_id: str, strategy: str = "sampling") -> Any:
    return SimpleNamespace(
        shard_id=shard_id,
        model="m",
        strategy=SimpleNamespace(label=strategy),
        dataset="toy",
        config_id=config_id,
    )


def write_grid(store: ResultsStore, config_id: str, *, correct: bool, problems: range) -> list[Any]:
    """One shard per problem, 4 samples each, all right or all wrong."""
    shards = []
    for p in problems:
        shard_id = f"{config_id}-{p}"
        rows = [
            sample_row(
                shard_id=shard_id,
                config_id=config_id,
                problem_id=f"p{p}",
                sample_index=i,
                answer_key="1" if correct else "2",
                extracted_answer="1",
                correct=correct,
            )
            for i in range(4)
        ]
        write_shard(store, rows)
        shards.append(shard(shard_id, config_id=config_id))
    return shards


def record(store: ResultsStore, run_id: str, shards: list[Any]) -> None:
    manifest = store.read_manifest()
    runs = [*manifest.get("runs", []), {"run_id": run_id, "started": "t", **grid_record(shards, {})}]
    store.write_manifest({**manifest, "runs": runs})


@pytest.fixture
def two_runs(tmp_path: Path) -> ResultsStore:
    """Run "old" (temperature A: every sample right) then run "new" (temperature B: every sample wrong)."""
    store = ResultsStore(str(tmp_path / "out"))
    record(store, "old", write_grid(store, "cell-a", correct=True, problems=range(3)))
    record(store, "new", write_grid(store, "cell-b", correct=False, problems=range(3)))
    return store


def count(con: Any, table: str) -> int:
    return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]


def test_readers_show_the_latest_run_only(two_runs: ResultsStore) -> None:
    con = connect(two_runs.output)
    assert count(con, "samples") == 12
    assert con.sql("SELECT DISTINCT config_id FROM samples").fetchall() == [("cell-b",)]
    assert count(con, "all_samples") == 24  # the old grid's rows stay readable on purpose
    assert con.sql("SELECT run_id, current FROM runs ORDER BY started, run_id").fetchall() == [
        ("new", True),
        ("old", False),
    ]
    accuracy = compute_accuracy(con, resamples=5)
    assert set(accuracy.loc[accuracy["method"] == "majority_vote", "accuracy"]) == {0.0}


def test_a_named_run_reads_its_own_grid(two_runs: ResultsStore) -> None:
    con = connect(two_runs.output, run="old")
    assert con.sql("SELECT DISTINCT config_id FROM samples").fetchall() == [("cell-a",)]
    accuracy = compute_accuracy(con, resamples=5)
    assert set(accuracy.loc[accuracy["method"] == "majority_vote", "accuracy"]) == {1.0}


def test_the_report_describes_the_run_its_connection_reads(two_runs: ResultsStore) -> None:
    """A run recorded after the views were made does not change which run the report's header
    describes: the one the connection reads, as its ``runs`` view marks it."""
    from analysis.report import gather_facts

    con = connect(two_runs.output)  # reads "new"
    record(two_runs, "newer", [shard(f"cell-a-{p}", config_id="cell-a") for p in range(3)])
    assert gather_facts(con, two_runs.output).record["run_id"] == "new"
    assert gather_facts(connect(two_runs.output, run="old"), two_runs.output).record["run_id"] == "old"


def test_an_unknown_run_is_refused_with_the_known_ones(two_runs: ResultsStore) -> None:
    with pytest.raises(RunNotFound, match="'nope'.*old, new"):
        connect(two_runs.output, run="nope")


def test_a_run_that_goes_back_reuses_the_old_files(two_runs: ResultsStore) -> None:
    record(two_runs, "back", [shard(f"cell-a-{p}", config_id="cell-a") for p in range(3)])
    con = connect(two_runs.output)
    assert con.sql("SELECT DISTINCT config_id FROM samples").fetchall() == [("cell-a",)]
    assert select_run(two_runs.read_manifest())["run_id"] == "back"


def test_a_run_cut_short_shows_what_it_wrote(two_runs: ResultsStore) -> None:
    record(two_runs, "partial", [shard("cell-c-0", config_id="cell-c")])
    con = connect(two_runs.output)
    assert not con.sql("SELECT 1 FROM duckdb_views() WHERE view_name = 'samples'").fetchall()
    assert count(con, "all_samples") == 24


def test_duplicate_samples_fail_loudly_naming_the_files(tmp_path: Path) -> None:
    store = ResultsStore(str(tmp_path / "out"))
    shards = write_grid(store, "cell-a", correct=True, problems=range(2))
    # A second file holding problem 0 of the same cell again (say, copied in by hand).
    rows = [
        sample_row(shard_id="copy", config_id="cell-a", problem_id="p0", sample_index=i) for i in range(4)
    ]
    write_shard(store, rows)
    record(store, "run", [*shards, shard("copy", config_id="cell-a")])
    with pytest.raises(
        DuplicateRows, match=r"problem p0 sample 0: 2 rows in .*cell-a-0\.parquet.*copy\.parquet"
    ):
        connect(store.output)


def test_a_folder_without_recorded_runs_is_read_whole(tmp_path: Path) -> None:
    store = ResultsStore(str(tmp_path / "out"))
    write_grid(store, "cell-a", correct=True, problems=range(2))
    con = connect(store.output)
    assert count(con, "samples") == 8
    assert count(con, "runs") == 0
    with pytest.raises(RunNotFound):
        connect(store.output, run="anything")
