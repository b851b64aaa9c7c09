"""The Ray Serve app over a finished sweep, through real HTTP on loopback with the CPU model:
sandboxed SQL, the report, and /solve running the compute-optimal configuration."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(900)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            raw = response.read().decode()
            kind = response.headers.get("Content-Type", "")
            return response.status, json.loads(raw) if "json" in kind else raw
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read().decode())


@pytest.fixture
def served(engine_pool: Any, tiny_config: Any) -> Iterator[tuple[str, Any]]:
    from ray import serve

    from sweep.launch import run_sweep
    from sweep.serve import build_app

    outcome = run_sweep(tiny_config, show_progress=False)
    assert not outcome.shards_failed
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app(tiny_config.output), name="sweep-test", route_prefix="/")
    try:
        yield f"http://127.0.0.1:{port}", tiny_config
    finally:
        serve.shutdown()


def test_sql_report_and_solve_over_http(served: tuple[str, Any]) -> None:
    base, _ = served

    status, body = call(f"{base}/sql?q=" + urllib.parse.quote("SELECT strategy, count(*) AS n FROM samples GROUP BY 1 ORDER BY 1"))
    assert status == 200 and body["columns"] == ["strategy", "n"]
    assert body["rows"] == [["greedy", 6], ["sampling", 24]]
    status, body = call(f"{base}/sql", {"query": "SELECT count(*) FROM problems"})
    assert status == 200 and body["rows"] == [[6]]
    for refused in (
        "COPY samples TO '/tmp/stolen.csv'",
        "SELECT * FROM read_csv('/etc/passwd')",
        "CREATE TABLE t AS SELECT 1",
        "SELECT 1; SELECT 2",
    ):
        status, body = call(f"{base}/sql", {"query": refused})
        assert status == 400, refused
    assert not Path("/tmp/stolen.csv").exists()

    status, page = call(f"{base}/report")
    assert status == 200 and page.lstrip().startswith("<!DOCTYPE html>") and "plotly" in page

    question = "Tom has 3 apples. He buys 2 more apples. How many apples does Tom have now?"
    status, body = call(f"{base}/solve", {"question": question, "flops_budget": 1e15})
    assert status == 200, body
    choice = body["choice"]
    assert choice["strategy"] in {"greedy", "sampling"} and choice["model"] == "smollm2-135m-instruct"
    assert choice["flops_per_problem"] <= 1e15 and body["samples"] == (choice["n"] if choice["strategy"] == "sampling" else 1)
    assert body["policy_flops"] > 0 and body["flops"] == body["policy_flops"] + body["reward_flops"]
    assert body["answer"] is None or isinstance(body["answer"], str)

    # The cheapest configuration is what a small budget buys; nothing fits a tiny one.
    status, body = call(f"{base}/sql", {"query": "SELECT 1"})
    status, body = call(f"{base}/solve", {"question": question, "flops_budget": 1.0})
    assert status == 422 and "no configuration fits" in body["detail"]
    status, body = call(f"{base}/solve", {"question": "", "flops_budget": 1e15})
    assert status == 422  # validation: an empty question


def test_app_builder_for_serve_run(tmp_path: Path) -> None:
    """`serve run sweep.serve:app_builder output=<folder>` builds the same application."""
    from ray.serve import Application

    from sweep.serve import app_builder

    assert isinstance(app_builder({"output": str(tmp_path)}), Application)
    with pytest.raises(ValueError, match="output="):
        app_builder({})
