"""Serve load: /sql latency and throughput of the Serve app against the same query run in-process.

Starts its own local Ray (own temp folder, no dashboard) and the app of ``sweep.serve.app`` over a
results folder, then sends one group-by over ``samples``:

- in-process baseline: the query on ``analysis.views.connect`` (the analysis connection) and on a
  cursor of ``connect_readonly`` (the sandbox the app uses), p50 over repeated runs, no HTTP;
- one client: requests one after another, p50 / p99;
- N clients (default 16): each a thread with its own keep-alive HTTP connection, sending as fast
  as answers come back for ``--seconds``; p50 / p99, requests/s and errors.

The goals (issue 11, on the smoke results on 2 cores, no errors): one client p50 ≤ 3× the
in-process time; 16 clients ≥ 30 requests/s and p99 ≤ 2 s.

    .venv/bin/python benchmarks/serve_load.py /tmp/smoke-results [--clients 16] [--seconds 20] [--replicas 1]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import threading
import time
from pathlib import Path

from bench_common import local_serve, percentile

QUERY = (
    "SELECT model, strategy, count(*) AS samples, avg(correct::INT) AS accuracy, "
    "sum(completion_tokens) AS tokens, avg(latency_s) AS latency_s "
    "FROM samples GROUP BY ALL ORDER BY ALL"
)


def in_process(output: str, repeats: int) -> dict[str, float]:
    """p50 ms of the query without HTTP: on the analysis connection, and on a sandbox cursor."""
    from analysis.sandbox import connect_readonly, run_select
    from analysis.views import connect

    plain = connect(output)
    sandbox = connect_readonly(output)

    def timed(run: object) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()  # type: ignore[operator]
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1000

    return {
        "connect_p50_ms": timed(lambda: plain.sql(QUERY).to_arrow_table()),
        "sandbox_cursor_p50_ms": timed(lambda: run_select(sandbox.cursor(), QUERY)),
    }


def post(connection: http.client.HTTPConnection, body: bytes) -> tuple[int, bytes]:
    connection.request("POST", "/sql", body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, response.read()


def one_client(port: int, requests: int, *, path: str = "/sql") -> dict[str, float]:
    body = json.dumps({"query": QUERY}).encode()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    times, errors = [], 0
    for _ in range(requests):
        start = time.perf_counter()
        if path == "/sql":
            status, _ = post(connection, body)
        else:
            connection.request("GET", path)
            response = connection.getresponse()
            status, _ = response.status, response.read()
        times.append(time.perf_counter() - start)
        errors += status != 200
    connection.close()
    return {
        "p50_ms": percentile(times, 0.5) * 1000,
        "p99_ms": percentile(times, 0.99) * 1000,
        "errors": errors,
    }


def server_p50(port: int) -> float:
    """The replica's own p50 of its recent statements (cursor to JSON body), from /status."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    connection.request("GET", "/status")
    body = json.loads(connection.getresponse().read())
    connection.close()
    return float(body["sql"].get("recent_p50_ms", float("nan")))


def many_clients(port: int, clients: int, seconds: float) -> dict[str, float]:
    body = json.dumps({"query": QUERY}).encode()
    times: list[float] = []
    errors = [0]
    lock = threading.Lock()
    start_gate = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        mine, bad = [], 0
        start_gate.wait()
        while time.perf_counter() < stop_at[0]:
            start = time.perf_counter()
            try:
                status, _ = post(connection, body)
            except (OSError, http.client.HTTPException):
                status = 0
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            mine.append(time.perf_counter() - start)
            bad += status != 200
        connection.close()
        with lock:
            times.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    start_gate.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    return {
        "requests": len(times),
        "rps": len(times) / elapsed,
        "p50_ms": percentile(times, 0.5) * 1000,
        "p99_ms": percentile(times, 0.99) * 1000,
        "errors": errors[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", help="a results folder (the smoke sweep's)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the concurrent phase")
    parser.add_argument("--requests", type=int, default=100, help="requests of the one-client phase")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--max-ongoing-requests", type=int, default=32)
    args = parser.parse_args()

    from ray import serve

    from sweep.serve.app import build_app

    output = str(Path(args.output).resolve())
    with local_serve("serve-load-") as port:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(
            build_app(output, num_replicas=args.replicas, max_ongoing_requests=args.max_ongoing_requests),
            name="serve-load",
            route_prefix="/",
        )
        one_client(port, 20)  # warm-up: imports, first queries
        baseline = in_process(output, 50)
        floor = one_client(port, args.requests, path="/status")  # Serve's own cost: no query
        single = one_client(port, args.requests)
        single["server_p50_ms"] = server_p50(port)
        concurrent = many_clients(port, args.clients, args.seconds)
        baseline_after = in_process(output, 50)

    in_process_ms = min(baseline["connect_p50_ms"], baseline_after["connect_p50_ms"])
    result = {
        "query": QUERY,
        "replicas": args.replicas,
        "in_process": {"before": baseline, "after": baseline_after},
        "one_client_status_route": floor,
        "one_client": single,
        f"{args.clients}_clients": concurrent,
        "one_client_p50_over_in_process": single["p50_ms"] / in_process_ms,
    }
    print(
        f"in-process (analysis connection) p50: {baseline['connect_p50_ms']:.1f} ms before, "
        f"{baseline_after['connect_p50_ms']:.1f} ms after the load; sandbox cursor "
        f"{baseline['sandbox_cursor_p50_ms']:.1f} / {baseline_after['sandbox_cursor_p50_ms']:.1f} ms"
    )
    print(f"one client, GET /status (no query): p50 {floor['p50_ms']:.1f} ms, p99 {floor['p99_ms']:.1f} ms")
    print(
        f"one client: p50 {single['p50_ms']:.1f} ms "
        f"({result['one_client_p50_over_in_process']:.2f}x in-process), "
        f"p99 {single['p99_ms']:.1f} ms, errors {single['errors']}; "
        f"of which on the replica (cursor to JSON body) p50 {single['server_p50_ms']:.1f} ms"
    )
    print(
        f"{args.clients} clients: {concurrent['rps']:.1f} requests/s, p50 {concurrent['p50_ms']:.0f} ms, "
        f"p99 {concurrent['p99_ms']:.0f} ms, {concurrent['requests']} requests, errors {concurrent['errors']}"
    )
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
