"""What the benchmark scripts share: the repository on ``sys.path``, the arguments of a script
that reads a finished sweep's results folder, and a local Ray with Serve on a free loopback port.

Left out: anything a benchmark measures; each script times its own thing.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def results_parser(description: str | None = None) -> argparse.ArgumentParser:
    """A parser taking a sweep's results folder and the resamples of the estimators."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("output", help="a sweep's results folder")
    parser.add_argument("--resamples", type=int, default=1000, help="orderings (and subsets) per problem")
    return parser


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@contextmanager
def local_serve(prefix: str) -> Iterator[int]:
    """A local Ray of this process's own (own temp folder, no dashboard) and a free loopback port
    for Serve; Serve and Ray are shut down on the way out."""
    import ray
    from ray import serve

    temp = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    ray.init(address="local", include_dashboard=False, _temp_dir=temp, logging_level="WARNING")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        yield port
    finally:
        serve.shutdown()
        ray.shutdown()
