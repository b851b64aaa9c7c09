"""The command line of the Serve app: ``python -m sweep.serve <results> [--port …] [--replicas …]``.

It checks the folder and the options before Ray starts (a bad one exits 2 with a message naming
it), starts or joins Ray, runs the app until Ctrl-C or SIGTERM, and then takes down what it
started. What it leaves out: the options' rules (``sweep/serve/options.py``) and the app
(``sweep/serve/app.py``); ``serve run sweep.serve:app_builder …`` skips this module.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import ray
from ray import serve

from sweep.serve import app
from sweep.serve.app import build_app
from sweep.serve.options import ServeOptions

log = logging.getLogger(__name__)

APP_NAME = "scaling-sweep"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sweep.serve", description=app.__doc__.split("\n\n")[0])
    parser.add_argument("output", help="the sweep's results folder")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--run", help="run id whose grid the app reads (default: the latest)")
    parser.add_argument("--replicas", type=int, help="fixed number of replicas (default 1)")
    parser.add_argument("--min-replicas", type=int, help="autoscaling floor (with --max-replicas)")
    parser.add_argument("--max-replicas", type=int, help="autoscaling ceiling: turns autoscaling on")
    default = {name: field.default for name, field in ServeOptions.model_fields.items()}  # declared once
    parser.add_argument(
        "--target-ongoing-requests",
        type=float,
        default=default["target_ongoing_requests"],
        help="autoscaling target per replica",
    )
    parser.add_argument(
        "--max-ongoing-requests",
        type=int,
        default=default["max_ongoing_requests"],
        help="requests one replica runs at once",
    )
    parser.add_argument("--sql-max-rows", type=int, default=default["sql_max_rows"], help="/sql row cap")
    parser.add_argument(
        "--sql-timeout", type=float, default=default["sql_timeout_s"], help="/sql statement timeout, seconds"
    )
    parser.add_argument(
        "--sql-memory-limit", default=default["sql_memory_limit"], help="DuckDB memory limit per replica"
    )
    parser.add_argument("--no-sql-limit", action="store_true", help="lift /sql's row cap and timeout")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)

    from pydantic import ValidationError

    from sweep.results.runs import RunNotFound, select_run
    from sweep.results.store import ManifestError, ResultsStore

    if not (Path(args.output) / "manifest.json").is_file() and "://" not in args.output:
        print(f"error: {args.output}: no sweep results (manifest.json) there", file=sys.stderr)
        return 2
    try:
        application = build_app(
            args.output,
            run=args.run,
            num_replicas=args.replicas,
            min_replicas=args.min_replicas,
            max_replicas=args.max_replicas,
            target_ongoing_requests=args.target_ongoing_requests,
            max_ongoing_requests=args.max_ongoing_requests,
            sql_max_rows=None if args.no_sql_limit else args.sql_max_rows,
            sql_timeout_s=None if args.no_sql_limit else args.sql_timeout,
            sql_memory_limit=args.sql_memory_limit,
        )
        select_run(ResultsStore(args.output).read_manifest(), args.run)
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'options'}: {e['msg']}" for e in exc.errors())
        print(f"error: {details}", file=sys.stderr)
        return 2
    except (RunNotFound, ManifestError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    # Ctrl-C raises KeyboardInterrupt wherever the main thread waits (starting Ray, deploying,
    # serving); SIGTERM does the same. Either way the finally clause stops what was started.
    signal.signal(signal.SIGTERM, _interrupt)
    attached = _cluster_running()
    try:
        ray.init(address="auto" if attached else "local", logging_level="WARNING")
        serve.start(http_options={"host": args.host, "port": args.port})
        serve.run(application, name=APP_NAME, route_prefix="/")
        print(
            f"serving {args.output} on http://{args.host}:{args.port} (/sql, /report, /solve); Ctrl-C stops",
            flush=True,
        )
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # a second Ctrl-C while stopping exits at once
        print("stopping", file=sys.stderr, flush=True)
        _stop(attached)
    return 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _stop(attached: bool) -> None:
    """Take the app down within a few seconds.

    On a cluster this process joined, only the app goes (other apps and the engines stay), without
    waiting for its replicas' graceful shutdown. A local Ray started here goes whole: its processes,
    Serve's controller, proxy and replicas with them.
    """
    if attached:
        try:
            serve.delete(APP_NAME, _blocking=False)
        except Exception as exc:  # noqa: BLE001 - whatever the cluster says, this process is stopping
            log.warning("could not delete the Serve app: %s", exc)
    ray.shutdown()


def _cluster_running() -> bool:
    return bool(os.environ.get("RAY_ADDRESS"))
