"""analysis/query.py and views.connect_readonly: real SQL on real Parquet, real attacks on the sandbox."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis.query import main
from analysis.views import connect_readonly
from sweep.schema import PROBLEMS, SAMPLES
from sweep.storage import ResultsStore

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
    ],
)
def test_connection_is_locked(output: Path, sql: str, error: type[Exception], message: str) -> None:
    con = connect_readonly(str(output))
    with pytest.raises(error, match=message):
        con.sql(sql)
    settings = dict(con.sql("SELECT name, value FROM duckdb_settings()").fetchall())
    assert (settings["lock_configuration"], settings["enable_external_access"]) == ("true", "false")
    assert settings["allowed_directories"].startswith(f"[{output.resolve()}/")
    # The views still glob the results folder after the lock.
    assert con.sql("SELECT count(*) FROM samples").fetchall() == [(9,)]


# --- results folders that cannot be queried ------------------------------------------------------


def test_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, str(tmp_path / "nowhere"), "SELECT 1")
    assert (code, out) == (2, "")
    assert "does not exist" in err and "nowhere" in err


def test_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "samples").mkdir()
    (tmp_path / "manifest.json").write_text("{}")
    code, out, err = run(capsys, str(tmp_path), "SELECT 1")
    assert (code, out) == (2, "")
    assert "holds no Parquet results" in err
