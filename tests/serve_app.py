"""What the Serve-app tests share (``tests/test_serve.py``, ``tests/test_openai_api.py``): a tiny
sweep run once on the real engine, Serve started on a free loopback port with the app deployed
on it, and plain HTTP calls.

The fixtures stay in the test modules (they name ``engine_pool``, which marks their tests
``engine``); they call these helpers. No fakes: the app runs as users run it.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "Tom has 3 apples. He buys 2 more apples. How many apples does Tom have now?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url: str, body: dict[str, Any] | bytes | None = None, *, timeout: float = 600) -> tuple[int, Any]:
    """The status and the body (parsed when it is JSON) of a GET, or of a POST of ``body``."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read().decode()
            kind = response.headers.get("Content-Type", "")
            return response.status, json.loads(raw) if "json" in kind else raw
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read().decode())


def run_tiny_sweep(folder: Path, *, edit: Callable[[dict[str, Any]], None] | None = None) -> Any:
    """tests/configs/tiny.yaml, changed by ``edit`` (its raw dict), run into ``folder``/out on the
    real engine; the loaded config."""
    from sweep.config import load_config
    from sweep.driver import run_sweep

    raw = yaml.safe_load((ROOT / "tests" / "configs" / "tiny.yaml").read_text())
    raw["output"] = str(folder / "out")
    if edit is not None:
        edit(raw)
    (folder / "grid.yaml").write_text(yaml.safe_dump(raw))
    config = load_config(folder / "grid.yaml")
    outcome = run_sweep(config, show_progress=False)
    assert not outcome.shards_failed
    return config


@contextmanager
def serve_on_loopback() -> Iterator[int]:
    """Serve's HTTP proxy on a free loopback port, shut down (with every app on it) after."""
    from ray import serve

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        yield port
    finally:
        serve.shutdown()


def deploy(output: str, *, port: int, name: str, route_prefix: str = "/", **options: Any) -> str:
    """The app over ``output`` with ``options`` (``ServeOptions``' fields), deployed as ``name``
    at ``route_prefix``; its base URL."""
    from ray import serve

    from sweep.serve import build_app

    serve.run(build_app(output, **options), name=name, route_prefix=route_prefix)
    return f"http://127.0.0.1:{port}{route_prefix.rstrip('/')}"
