"""analysis/query.py and sandbox.connect_readonly: real SQL on real Parquet, real attacks on the sandbox."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis.query import main
from analysis.sandbox import QueryCancelled, QueryRefused, QueryTimeout, connect_readonly, run_select
from sweep.results.schema import PROBLEMS, SAMPLES
from sweep.results.store import ResultsStore

ROOT = Path(__file__).resolve().parent.parent

# problem -> (subject, correctness of each sample)
CORRECT = {
    "p1": ("algebra", [True, False, True]),
    "p2": ("algebra", [False, False, False]),
    "p3": ("geometry", [True, True, False]),
}
# SELECT subject, count(*), sum(correct) over the join: hand-counted from CORRECT.
EXPECTED = [("algebra", 6, 2), ("geometry", 3, 2)]
JOIN_SQL = (
    "SELECT p.subject, count(*) AS samples, sum(s.correct::INT) AS correct "
    "FROM samples s JOIN problems p USING (dataset, problem_id) GROUP BY p.subject ORDER BY p.subject"
)


def sample(problem_id: str, index: int, correct: bool) -> dict[str, Any]:
    return {
        "run_id": "run",
        "shard_id": "shard",
        "config_id": "c",
        "settings": "{}",
        "model": "m",
        "model_params": 1000,
        "strategy": "s",
        "dataset": "d",
        "problem_id": problem_id,
        "prompt_id": f"prompt-{problem_id}",
        "sample_index": index,
        "seed": 0,
        "temperature": 1.0,
        "completion": "The answer is 1.",
        "extracted_answer": "1",
        "answer_key": "1",
        "correct": correct,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "finish_reason": "stop",
        "cumulative_logprob": None,
        "prompt_flops": 20000.0,
        "completion_flops": 10000.0,
        "context_flops": 0.0,
        "latency_s": 1.0,
        "error": None,
        "step_scores": [0.5, float(index)],
        "reward_flops": 0.0,
    }


def write_results(root: Path) -> None:
    store = ResultsStore(str(root))
    rows = [sample(pid, i, ok) for pid, (_, oks) in CORRECT.items() for i, ok in enumerate(oks)]
    samples = pa.Table.from_pylist(rows, schema=SAMPLES)
    store.write_table(store.samples_path("m", "s", "shard"), samples, schema=SAMPLES, shard_id="shard")
    problems = [
        {
            "dataset": "d",
            "problem_id": pid,
            "question": f"q {pid}",
            "reference_answer": "1",
            "grader": "exact",
            "subject": subject,
        }
        for pid, (subject, _) in CORRECT.items()
    ]
    table = pa.Table.from_pylist(problems, schema=PROBLEMS)
    store.write_table(store.problems_path("d", "digest"), table, schema=PROBLEMS)


@pytest.fixture
def output(tmp_path: Path) -> Path:
    write_results(tmp_path / "out")
    # A sibling folder whose name extends the results folder's: a bare prefix match would let it in.
    write_results(tmp_path / "out-old")
    (tmp_path / "secret.csv").write_text("key\nhunter2\n")
    return tmp_path / "out"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- legitimate queries ----------------------------------------------------------------------


def test_table(output: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, str(output), JOIN_SQL)
    assert (code, err) == (0, "")
    lines = [line for line in out.splitlines() if "algebra" in line or "geometry" in line]
    assert [line.split()[1::2] for line in lines] == [[s, str(n), str(c)] for s, n, c in EXPECTED]


def test_csv(output: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, str(output), JOIN_SQL, "--format", "csv")
    assert (code, err) == (0, "")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["subject"], int(r["samples"]), int(r["correct"])) for r in rows] == EXPECTED


def test_json(output: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, str(output), JOIN_SQL, "--format", "json")
    assert (code, err) == (0, "")
    assert [(r["subject"], r["samples"], r["correct"]) for r in json.loads(out)] == EXPECTED


def test_parquet(output: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "result.parquet"
    code, out, err = run(capsys, str(output), JOIN_SQL, "--format", "parquet", "--out", str(target))
    assert (code, out, err) == (0, "", "")
    table = pq.read_table(target)
    assert list(zip(*(table.column(c).to_pylist() for c in ("subject", "samples", "correct")))) == EXPECTED


def test_parquet_needs_out(output: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, str(output), JOIN_SQL, "--format", "parquet")
    assert (code, out) == (2, "")
    assert "--out" in err


def test_nested_columns_in_text_formats(output: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sql = "SELECT sample_index, step_scores FROM samples WHERE problem_id = 'p1' ORDER BY sample_index"
    _, out, _ = run(capsys, str(output), sql, "--format", "csv")
    expected = [[0.5, float(i)] for i in range(3)]
    assert [json.loads(r["step_scores"]) for r in csv.DictReader(io.StringIO(out))] == expected
    _, out, _ = run(capsys, str(output), sql, "--format", "json")
    assert [r["step_scores"] for r in json.loads(out)] == expected


def test_describe_and_files_inside_the_folder(output: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(output), "DESCRIBE samples", "--format", "json")
    assert code == 0 and "step_scores" in {r["column_name"] for r in json.loads(out)}
    sql = f"SELECT count(*) AS n FROM read_parquet('{output}/samples/**/*.parquet')"
    code, out, _ = run(capsys, str(output), sql, "--format", "json")
    assert (code, json.loads(out)) == (0, [{"n": 9}])


# --- attacks: each refused with exit 2 and one message -------------------------------------------


def attacks(tmp: Path, out: Path) -> dict[str, tuple[str, str]]:
    """name -> (SQL, what the message says)."""
    refused = "only SELECT queries are allowed"
    denied = "Permission Error"
    return {
        "create table": ("CREATE TABLE t AS SELECT 1", refused),
        "create temp table": ("CREATE TEMP TABLE t AS SELECT 1", refused),
        "replace view": ("CREATE OR REPLACE VIEW samples AS SELECT 1 AS x", refused),
        "insert": ("INSERT INTO samples SELECT * FROM samples", refused),
        "update": ("UPDATE samples SET model = 'x'", refused),
        "delete": ("DELETE FROM samples", refused),
        "drop": ("DROP VIEW samples", refused),
        "copy out": (f"COPY samples TO '{tmp}/stolen.csv'", refused),
        "copy into results": (f"COPY samples TO '{out}/samples/evil.parquet'", refused),
        "explain analyze copy": (f"EXPLAIN ANALYZE COPY samples TO '{out}/evil.csv'", refused),
        "export": (f"EXPORT DATABASE '{out}/export'", refused),
        "attach": (f"ATTACH '{tmp}/other.duckdb'", refused),
        "install": ("INSTALL httpfs", refused),
        "load": ("LOAD httpfs", refused),
        "set": ("SET threads = 1", refused),
        "raise memory limit": ("SET memory_limit = '100GB'", refused),
        "pragma": ("PRAGMA version", refused),
        "pragma settings": ("PRAGMA enable_external_access", refused),
        "unlock": ("SET lock_configuration = false", refused),
        "second statement": (f"SELECT 1; COPY samples TO '{out}/evil.csv'", "expected one SQL statement"),
        "read_csv": ("SELECT * FROM read_csv('/etc/passwd')", denied),
        "read_csv beside": (f"SELECT * FROM read_csv('{tmp}/secret.csv')", denied),
        "read_parquet elsewhere": (f"SELECT * FROM read_parquet('{tmp}/out-old/**/*.parquet')", denied),
        "dot-dot": (f"SELECT * FROM read_parquet('{out}/../out-old/samples/**/*.parquet')", denied),
        "read_text": ("SELECT * FROM read_text('/etc/hostname')", denied),
        "glob": ("SELECT * FROM glob('/*')", denied),
        "url": ("SELECT * FROM read_json('https://example.com/x.json')", denied),
    }


ATTACKS = list(attacks(Path("/t"), Path("/t/out")))


@pytest.mark.parametrize("name", ATTACKS)
def test_attack_refused(name: str, output: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tmp = output.parent
    before = sorted(tmp.rglob("*"))
    sql, message = attacks(tmp, output)[name]
    code, out, err = run(capsys, str(output), sql)
    assert (code, out) == (2, "")
    assert err.startswith("error: ") and message in err, err
    assert "Traceback" not in err
    assert sorted(tmp.rglob("*")) == before  # nothing written anywhere
    code, out, _ = run(capsys, str(output), JOIN_SQL, "--format", "json")
    assert code == 0 and [(r["subject"], r["samples"], r["correct"]) for r in json.loads(out)] == EXPECTED


def test_attack_from_the_shell(output: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "analysis.query", str(output), "SELECT * FROM read_text('/etc/hostname')"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert "Permission Error" in done.stderr and "Traceback" not in done.stderr


# --- the connection itself, without run_select's statement check ---------------------------------


@pytest.mark.parametrize(
    ("sql", "error", "message"),
    [
        ("CREATE TABLE t AS SELECT 1", duckdb.InvalidInputException, "read-only mode"),
        ("DROP VIEW samples", duckdb.InvalidInputException, "read-only mode"),
        ("ATTACH ':memory:' AS scratch", duckdb.CatalogException, "read-only mode"),
        ("SELECT * FROM read_csv('/etc/passwd')", duckdb.PermissionException, "disabled by configuration"),
        ("COPY (SELECT 1) TO '/tmp/stolen.csv'", duckdb.PermissionException, "disabled by configuration"),
        ("LOAD httpfs", duckdb.PermissionException, "disabled through configuration"),
        ("INSTALL httpfs", duckdb.PermissionException, "disabled by configuration"),
        ("SET lock_configuration = false", duckdb.InvalidInputException, "configuration has been locked"),
        ("RESET lock_configuration", duckdb.InvalidInputException, "configuration has been locked"),
        ("SET enable_external_access = true", duckdb.InvalidInputException, "configuration has been locked"),
        ("SET allowed_directories = ['/']", duckdb.InvalidInputException, "configuration has been locked"),
        ("SET memory_limit = '100GB'", duckdb.InvalidInputException, "configuration has been locked"),
        ("SET max_temp_directory_size = '1TB'", duckdb.InvalidInputException, "has been locked"),
    ],
)
@pytest.mark.parametrize("on", ["connection", "cursor"])
def test_connection_is_locked(output: Path, sql: str, error: type[Exception], message: str, on: str) -> None:
    """The connection and its cursors (the Serve app hands one to each request) are locked alike."""
    root = connect_readonly(str(output), memory_limit="300MB")
    con = root if on == "connection" else root.cursor()
    with pytest.raises(error, match=message):
        con.sql(sql)
    settings = dict(con.sql("SELECT name, value FROM duckdb_settings()").fetchall())
    assert (settings["lock_configuration"], settings["enable_external_access"]) == ("true", "false")
    assert settings["allowed_directories"].startswith(f"[{output.resolve()}/")
    assert settings["memory_limit"] == "286.1 MiB"  # 300 MB, as DuckDB spells it
    # The views still glob the results folder after the lock.
    assert con.sql("SELECT count(*) FROM samples").fetchall() == [(9,)]


# --- results folders that cannot be queried ------------------------------------------------------


def test_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, str(tmp_path / "nowhere"), "SELECT 1")
    assert (code, out) == (2, "")
    assert "does not exist" in err and "nowhere" in err


def test_corrupt_manifest(output: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (output / "manifest.json").write_text("{not json")
    code, out, err = run(capsys, str(output), "SELECT 1")
    assert (code, out) == (2, "")
    assert "corrupt manifest" in err and "Traceback" not in err


def test_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "samples").mkdir()
    (tmp_path / "manifest.json").write_text("{}")
    code, out, err = run(capsys, str(tmp_path), "SELECT 1")
    assert (code, out) == (2, "")
    assert "holds no Parquet results" in err


# --- limits: row cap, timeout, memory; no files left behind ------------------------------------

TEN_MILLION = "SELECT * FROM range(10000000) t(i)"
# A cross join of 10^12 pairs: minutes of work for DuckDB, the kind a typo in a join makes.
RUNAWAY = "SELECT sum(a.i * b.i) FROM range(1000000) a(i), range(1000000) b(i)"


def test_row_cap_cuts_a_10m_row_select(output: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, str(output), TEN_MILLION, "--format", "json")
    assert code == 0
    assert [r["i"] for r in json.loads(out)] == list(range(10_000))
    assert "result cut at 10,000 rows" in err and "--no-limit" in err

    code, out, err = run(capsys, str(output), TEN_MILLION, "--format", "csv", "--max-rows", "3")
    assert (code, out.split()) == (0, ['"i"', "0", "1", "2"])
    assert "cut at 3 rows" in err

    code, out, err = run(capsys, str(output), TEN_MILLION, "--max-rows", "3")
    assert code == 0 and "(result cut at 3 rows" in out


def test_row_cap_does_not_note_a_whole_result(output: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sql = "SELECT * FROM range(3) t(i)"
    code, out, err = run(capsys, str(output), sql, "--format", "json", "--max-rows", "3")
    assert (code, err) == (0, "") and len(json.loads(out)) == 3


def test_no_limit_and_out_lift_the_cap(
    output: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sql = "SELECT * FROM range(25000) t(i)"
    code, out, err = run(capsys, str(output), sql, "--format", "csv", "--no-limit")
    assert (code, err) == (0, "") and out.split()[-1] == "24999"
    for fmt in ("parquet", "csv"):
        target = tmp_path / f"all.{fmt}"
        code, _, err = run(capsys, str(output), sql, "--format", fmt, "--out", str(target))
        assert (code, err) == (0, "")
        rows = pq.read_table(target).num_rows if fmt == "parquet" else len(target.read_text().split()) - 1
        assert rows == 25000
    # An export can still be capped on request.
    target = tmp_path / "capped.parquet"
    code, _, err = run(capsys, str(output), sql, "--format", "parquet", "--out", str(target), "--max-rows=10")
    assert code == 0 and pq.read_table(target).num_rows == 10 and "cut at 10 rows" in err


def test_limit_flags_are_checked(output: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for flags in (["--max-rows", "0"], ["--timeout", "nan"], ["--timeout", "-1"]):
        with pytest.raises(SystemExit) as exit_:
            main([str(output), "SELECT 1", *flags])
        assert exit_.value.code == 2
    code, _, err = run(capsys, str(output), "SELECT 1", "--no-limit", "--timeout", "5")
    assert code == 2 and "--no-limit" in err


@pytest.mark.timeout(300)
def test_timeout_stops_a_runaway_join(output: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, str(output), RUNAWAY, "--timeout", "1")
    assert (code, out) == (2, "")
    assert "ran past its 1 s timeout" in err and "Traceback" not in err
    # The connection is free again: the next statement is not hit by a late interrupt.
    con = connect_readonly(str(output))
    with pytest.raises(QueryTimeout):
        run_select(con, RUNAWAY, timeout_s=0.5)
    assert run_select(con, "SELECT count(*) AS n FROM samples", timeout_s=0.5).table.to_pylist() == [{"n": 9}]


@pytest.mark.timeout(300)
def test_timeout_stops_a_runaway_join_of_the_views(output: Path) -> None:
    """A cross join of the views themselves, the way a forgotten ON clause makes one."""
    con = connect_readonly(str(output))
    joins = ", ".join(f"samples s{i}" for i in range(12))  # 9^12 rows
    sql = f"SELECT count(*), sum(s0.sample_index + s11.sample_index) FROM {joins}"
    with pytest.raises(QueryTimeout, match="0.5 s timeout"):
        run_select(con, sql, timeout_s=0.5)


def test_cancel_stops_one_cursor_and_leaves_the_others(output: Path) -> None:
    """Cancelling one request's cursor (as the Serve app does when its client goes away) stops
    only that request's statement."""
    import threading

    con = connect_readonly(str(output))
    slow, quick = con.cursor(), con.cursor()
    cancel = threading.Event()
    failures: list[BaseException] = []

    def runaway() -> None:
        try:
            run_select(slow, RUNAWAY, timeout_s=None, cancel=cancel)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion below
            failures.append(exc)

    thread = threading.Thread(target=runaway)
    thread.start()
    assert run_select(quick, "SELECT count(*) AS n FROM samples").table.to_pylist() == [{"n": 9}]
    cancel.set()  # may land before the join starts: the interrupt is repeated until it stops
    thread.join(timeout=120)
    assert not thread.is_alive() and isinstance(failures[0], QueryCancelled)
    assert run_select(slow, "SELECT count(*) AS n FROM samples").table.to_pylist() == [{"n": 9}]
    with pytest.raises(QueryCancelled, match="before it started"):
        run_select(quick, "SELECT 1", cancel=cancel)


def test_memory_limit_bounds_a_query(output: Path) -> None:
    con = connect_readonly(str(output), memory_limit="64MB")
    with pytest.raises(duckdb.OutOfMemoryException):
        run_select(con, "SELECT list(i) AS everything FROM range(20000000) t(i)")  # one 160 MB list
    assert run_select(con, "SELECT count(*) AS n FROM samples").table.to_pylist() == [{"n": 9}]


def test_no_temp_folder_is_left(output: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The scratch database goes as soon as the read-only connection holds it open: nothing is
    left by a normal exit, an error, a timeout or a spill (DuckDB removes its spill folder on close)."""
    import gc

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    con = connect_readonly(str(output), memory_limit="64MB")
    assert list(scratch.iterdir()) == []  # while the connection is open
    assert run_select(con, "SELECT count(*) AS n FROM samples").table.to_pylist() == [{"n": 9}]
    spill = "SELECT count(*) AS n FROM (SELECT i, md5(i::VARCHAR) AS h FROM range(3000000) t(i) ORDER BY h)"
    assert run_select(con, spill).table.to_pylist() == [{"n": 3_000_000}]
    with pytest.raises(QueryTimeout):
        run_select(con, RUNAWAY, timeout_s=0.2)
    con.close()
    del con
    gc.collect()
    assert list(scratch.iterdir()) == []
    with pytest.raises(QueryRefused, match="no run 'nope'"):
        connect_readonly(str(output), run="nope")
    assert list(scratch.iterdir()) == []


@pytest.mark.timeout(300)
def test_no_temp_folder_after_kill(output: Path, tmp_path: Path) -> None:
    """Even kill -9 in the middle of a query leaves nothing in the temp folder."""
    import os
    import signal
    import time

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    process = subprocess.Popen(
        [sys.executable, "-m", "analysis.query", str(output), RUNAWAY, "--no-limit"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(1)  # let it start, build the views and run into the join
            if time.monotonic() > deadline - 115:
                break
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    assert list(scratch.iterdir()) == []


def test_run_option(output: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, str(output), "SELECT 1", "--run", "nope")
    assert (code, out) == (2, "")
    assert "no run 'nope'" in err and "Traceback" not in err
    sql = "SELECT count(*) AS n FROM samples"
    code, out, _ = run(capsys, str(output), sql, "--run", "latest", "--format", "json")
    assert (code, json.loads(out)) == (0, [{"n": 9}])


# --- Rich markup in values ---------------------------------------------------------------------


def test_table_prints_values_as_written(output: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Answers are data, not Rich markup: brackets, closing tags and emoji codes print as written."""
    values = ["\\boxed{[a,b]}", "[/oops]", "[bold red]x[/]", ":smile:", "[link=http://x]y"]
    selects = " UNION ALL ".join(f"SELECT {i} AS k, '{v}' AS answer" for i, v in enumerate(values))
    code, out, err = run(capsys, str(output), f'SELECT answer AS "[b]col[/b]" FROM ({selects}) ORDER BY k')
    assert (code, err) == (0, "")
    for value in [*values, "[b]col[/b]"]:
        assert value in out, out


def test_table_prints_answers_from_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = ResultsStore(str(tmp_path / "out"))
    answers = ["\\boxed{[a,b]}", "[/oops]", "[red]7"]
    rows = [{**sample("p1", i, False), "extracted_answer": a} for i, a in enumerate(answers)]
    table = pa.Table.from_pylist(rows, schema=SAMPLES)
    store.write_table(store.samples_path("m", "s", "shard"), table, schema=SAMPLES, shard_id="shard")
    sql = "SELECT extracted_answer FROM samples ORDER BY sample_index"
    code, out, err = run(capsys, str(tmp_path / "out"), sql)
    assert (code, err) == (0, "")
    for answer in answers:
        assert answer in out
