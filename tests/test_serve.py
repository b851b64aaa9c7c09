"""The Ray Serve app over a finished sweep, through real HTTP on loopback with the CPU model:
sandboxed and bounded SQL, the report, /solve running the compute-optimal configuration, and
``python -m sweep.serve`` stopping on Ctrl-C."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from processes import default_ctrl_c
from serve_app import QUESTION, ROOT, call, deploy, free_port, run_tiny_sweep, serve_on_loopback

# A cross join of 10^12 pairs: minutes of work for DuckDB, the kind a typo in a join makes.
RUNAWAY = "SELECT sum(a.i * b.i) FROM range(1000000) a(i), range(1000000) b(i)"


def sql(base: str, query: str) -> tuple[int, Any]:
    return call(f"{base}/sql", {"query": query})


def wait_for(condition: Callable[[], bool], *, bound_s: float, what: str) -> None:
    """Poll until ``condition`` holds; fail after ``bound_s`` (a bound proving termination, not a speed)."""
    deadline = time.monotonic() + bound_s
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {bound_s:g} s"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def sweep_output(engine_pool: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """tiny.yaml run once on the real engine; the config, with its output folder."""
    return run_tiny_sweep(tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="module")
def serve_port(sweep_output: Any) -> Iterator[int]:
    with serve_on_loopback() as port:
        yield port


@pytest.fixture(scope="module")
def served(serve_port: int, sweep_output: Any) -> str:
    """The app with its default limits, but a timeout so long that only a disconnect stops a runaway join."""
    return deploy(sweep_output.output, port=serve_port, name="sweep-test", sql_timeout_s=120)


@pytest.fixture(scope="module")
def strict(serve_port: int, sweep_output: Any) -> str:
    """A second app over the same results with small limits; it starts no engine until a test asks."""
    return deploy(
        sweep_output.output,
        port=serve_port,
        name="sweep-strict",
        route_prefix="/strict",
        sql_timeout_s=2,
        sql_max_rows=7,
        max_ongoing_requests=4,
    )


def status(base: str) -> dict[str, Any]:
    code, body = call(f"{base}/status")
    assert code == 200, body
    return body


# --- /sql -----------------------------------------------------------------------------------------


@pytest.mark.engine
def test_sql_and_report_over_http(served: str) -> None:
    base = served
    query = urllib.parse.quote("SELECT strategy, count(*) AS n FROM samples GROUP BY 1 ORDER BY 1")
    code, body = call(f"{base}/sql?q={query}")
    assert code == 200 and body["columns"] == ["strategy", "n"]
    assert body["rows"] == [["greedy", 6], ["sampling", 24]]
    assert (body["truncated"], body["note"]) == (False, None)
    code, body = sql(base, "SELECT count(*) FROM problems")
    assert code == 200 and body["rows"] == [[6]]
    for refused in (
        "COPY samples TO '/tmp/stolen.csv'",
        "SELECT * FROM read_csv('/etc/passwd')",
        "CREATE TABLE t AS SELECT 1",
        "SELECT 1; SELECT 2",
        "SET memory_limit = '100GB'",
        "PRAGMA version",
    ):
        code, body = sql(base, refused)
        assert code == 400 and body["detail"], refused
    assert not Path("/tmp/stolen.csv").exists()
    code, _ = sql(base, "")
    assert code == 422

    code, page = call(f"{base}/report")
    assert code == 200 and page.lstrip().startswith("<!DOCTYPE html>") and "plotly" in page


@pytest.mark.engine
def test_sql_row_cap_cuts_a_10m_row_select(served: str, strict: str) -> None:
    code, body = sql(served, "SELECT * FROM range(10000000) t(i)")
    assert code == 200 and len(body["rows"]) == 10_000 and body["rows"][-1] == [9_999]
    assert body["truncated"] is True and "cut at 10,000 rows" in body["note"]
    code, body = sql(strict, "SELECT * FROM range(10000000) t(i)")  # the app's own cap
    assert code == 200 and len(body["rows"]) == 7 and "cut at 7 rows" in body["note"]


@pytest.mark.engine
def test_sql_timeout_stops_a_runaway_join(strict: str) -> None:
    before = status(strict)["sql"]
    code, body = sql(strict, RUNAWAY)
    assert code == 400 and "ran past its 2 s timeout" in body["detail"]
    after = status(strict)["sql"]
    assert after["timed_out"] == before["timed_out"] + 1 and after["running"] == 0
    code, body = sql(strict, "SELECT count(*) FROM samples")  # the replica goes on serving
    assert code == 200 and body["rows"] == [[30]]


@pytest.mark.engine
def test_sql_client_disconnect_stops_the_query(served: str) -> None:
    """The server side stops: the replica's count of running statements drops back, and the stop
    is counted as a cancel, not as the (120 s) timeout."""
    host, port = urllib.parse.urlsplit(served).netloc.split(":")
    before = status(served)["sql"]
    assert before["running"] == 0
    body = json.dumps({"query": RUNAWAY}).encode()
    head = (
        f"POST /sql HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    client = socket.create_connection((host, int(port)))
    try:
        client.sendall(head.encode() + body)
        wait_for(lambda: status(served)["sql"]["running"] == 1, bound_s=60, what="the join to start")
    finally:
        client.close()
    wait_for(
        lambda: status(served)["sql"]["running"] == 0,
        bound_s=60,
        what="the join to stop after the disconnect",
    )
    after = status(served)["sql"]
    assert after["cancelled"] == before["cancelled"] + 1
    assert after["timed_out"] == before["timed_out"]
    code, body = sql(served, "SELECT count(*) FROM samples")
    assert code == 200 and body["rows"] == [[30]]


# --- /solve ---------------------------------------------------------------------------------------


@pytest.mark.engine
def test_solve_refuses_an_over_long_question_before_any_engine(strict: str) -> None:
    """413 with a message from the tokenizer alone; then the next /solve answers."""
    assert status(strict)["engines"] == []
    code, body = call(f"{strict}/solve", {"question": "How many apples? " * 400, "flops_budget": 1e15})
    assert code == 413, body
    assert "max_model_len of 1024" in body["detail"] and "shorten the question" in body["detail"]
    assert status(strict)["engines"] == []  # refused before any engine was started or found

    code, body = call(f"{strict}/solve", {"question": QUESTION, "flops_budget": 1e15})
    assert code == 200, body
    assert status(strict)["engines"]


@pytest.mark.engine
@pytest.mark.parametrize(
    "raw",
    [
        b'{"question": "q", "flops_budget": NaN}',
        b'{"question": "q", "flops_budget": Infinity}',
        b'{"question": "q", "flops_budget": -Infinity}',
        b'{"question": "q", "flops_budget": 0}',
        b'{"question": "q", "flops_budget": -1e15}',
        b'{"question": "q", "flops_budget": "lots"}',
        b'{"question": "q"}',
        b'{"question": "", "flops_budget": 1e15}',
        b'{"question": "   ", "flops_budget": 1e15}',
        b'{"question": "q", "flops_budget": 1e15, "budget": 1}',
    ],
)
def test_solve_validates_its_input(served: str, raw: bytes) -> None:
    code, body = call(f"{served}/solve", raw)
    assert code == 422 and isinstance(body["detail"], list), body


@pytest.mark.engine
def test_solve_picks_the_best_configuration_within_the_budget(served: str, sweep_output: Any) -> None:
    """A budget below the most accurate configuration's cost: the pick is the best of what fits."""
    from analysis.estimators import compute_accuracy
    from analysis.views import connect
    from sweep.serve.solve import ORACLE_METHODS

    accuracy = compute_accuracy(connect(sweep_output.output), resamples=100, include_reward_flops=True)
    rows = accuracy[~accuracy["method"].isin(ORACLE_METHODS)].dropna(subset=["accuracy"])
    rows = rows.sort_values(["accuracy", "flops_per_problem"], ascending=[False, True], kind="stable")
    costs = sorted(set(rows["flops_per_problem"]))
    best = rows.iloc[0]
    cheaper = [c for c in costs if c < best["flops_per_problem"]]
    # Just below the best configuration's cost when something cheaper exists, else between the
    # two cheapest costs: either way the budget leaves configurations out.
    budget = (cheaper[-1] + best["flops_per_problem"]) / 2 if cheaper else (costs[0] + costs[1]) / 2
    fits = rows[rows["flops_per_problem"] <= budget]
    assert 0 < len(fits) < len(rows), "the budget must exclude some configurations and admit some"
    expected = fits.iloc[0]

    code, body = call(f"{served}/solve", {"question": QUESTION, "flops_budget": budget})
    assert code == 200, body
    choice = body["choice"]
    assert (choice["model"], choice["strategy"], choice["method"], choice["n"]) == (
        expected["model"],
        expected["strategy"],
        expected["method"],
        int(expected["n"]),
    )
    assert choice["flops_per_problem"] <= budget
    assert math.isclose(choice["accuracy"], float(expected["accuracy"]))
    assert body["samples"] == (choice["n"] if choice["strategy"] == "sampling" else 1)
    assert body["policy_flops"] > 0 and body["flops"] == body["policy_flops"] + body["reward_flops"]
    assert body["answer"] is None or isinstance(body["answer"], str)

    code, body = call(f"{served}/solve", {"question": QUESTION, "flops_budget": 1.0})
    assert code == 422 and "no configuration fits" in body["detail"]


# --- the command line: options, and Ctrl-C ----------------------------------------------------------


@pytest.mark.engine
def test_ctrl_c_stops_the_server(sweep_output: Any) -> None:
    """`python -m sweep.serve` on its own local Ray: Ctrl-C (SIGINT to its process group, as a
    terminal sends it) ends the process and every Ray process it started, within a bound."""
    port = free_port()
    ray_tmp = tempfile.mkdtemp(prefix="ssw-serve-", dir="/tmp")  # short: Ray's socket paths have a limit
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_TMPDIR"] = ray_tmp
    process = subprocess.Popen(
        [sys.executable, "-m", "sweep.serve", sweep_output.output, "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=default_ctrl_c,
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:  # ends at "serving ..." or when the process dies
            lines.append(line)
            if line.startswith("serving "):
                break
        assert process.poll() is None, "".join(lines)
        code, body = sql(f"http://127.0.0.1:{port}", "SELECT count(*) FROM samples")
        assert code == 200 and body["rows"] == [[30]]

        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=30)  # today's bound: "within a few seconds" on an idle machine
        assert process.returncode == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    wait_for(lambda: not _processes_under(ray_tmp), bound_s=30, what="the Ray processes to exit")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def _processes_under(folder: str) -> list[str]:
    """Command lines of live processes that name ``folder`` (the Ray processes of one session)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = next(
                line for line in (entry / "status").read_text().splitlines() if line.startswith("State:")
            )
        except (OSError, StopIteration):
            continue
        if folder in command and "zombie" not in state:
            found.append(command)
    return found


def test_app_options(tmp_path: Path) -> None:
    """`serve run sweep.serve:app_builder output=<folder> …` and build_app take the same checked options."""
    from pydantic import ValidationError
    from ray.serve import Application

    from sweep.serve import app_builder
    from sweep.serve.options import ServeOptions

    assert isinstance(app_builder({"output": str(tmp_path)}), Application)
    assert isinstance(
        app_builder({"output": str(tmp_path), "max_replicas": "4", "sql_timeout_s": "none"}), Application
    )
    with pytest.raises(ValueError, match="output="):
        app_builder({})

    fixed = ServeOptions(output="x", num_replicas=3, max_ongoing_requests=8)
    assert fixed.deployment_options() == {"num_replicas": 3, "max_ongoing_requests": 8}
    scaled = ServeOptions.model_validate({"output": "x", "min_replicas": "0", "max_replicas": "4"})
    assert scaled.deployment_options() == {
        "autoscaling_config": {"min_replicas": 0, "max_replicas": 4, "target_ongoing_requests": 8.0},
        "max_ongoing_requests": 32,
    }
    assert ServeOptions.model_validate({"output": "x", "sql_max_rows": "none"}).sql_max_rows is None
    for bad in (
        {"replicas": "2"},  # a typo is an error, not a silent default
        {"num_replicas": "2", "max_replicas": "4"},
        {"min_replicas": "2"},
        {"min_replicas": "5", "max_replicas": "4"},
        {"sql_timeout_s": "nan"},
        {"sql_timeout_s": "0"},
        {"sql_max_rows": "0"},
    ):
        with pytest.raises(ValidationError):
            ServeOptions.model_validate({"output": "x", **bad})


def test_cli_refuses_bad_options_before_ray(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{}")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    for flags, message in (
        (["--run", "nope"], "no run 'nope'"),
        (["--replicas", "2", "--max-replicas", "3"], "not both"),
        (["--sql-timeout", "nan"], "sql_timeout_s"),
        (["--sql-max-rows", "0"], "sql_max_rows"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "sweep.serve", str(tmp_path), *flags],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=120,
            check=False,
        )
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    (tmp_path / "manifest.json").write_text("{not json")
    done = subprocess.run(
        [sys.executable, "-m", "sweep.serve", str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120, check=False,
    )
    assert done.returncode == 2 and "corrupt manifest" in done.stderr and "Traceback" not in done.stderr
