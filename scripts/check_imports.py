"""Import every module of the project alone, each in a fresh interpreter: no import cycle hides
behind an import order. Run by .ci/run beside ``lint-imports`` (the layer contract).

    .venv/bin/python scripts/check_imports.py
"""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

PACKAGES = ("sweep", "actors", "analysis")


def modules() -> list[str]:
    """Every module and package under the project's top-level packages."""
    names = []
    for package in PACKAGES:
        names.append(package)
        path = importlib.import_module(package).__path__
        names += [m.name for m in pkgutil.walk_packages(path, f"{package}.")]
    return names


def import_alone(name: str) -> str | None:
    """None when ``import name`` succeeds in a fresh interpreter, else its last error line."""
    done = subprocess.run(
        [sys.executable, "-c", f"import {name}"], capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode == 0:
        return None
    lines = done.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit {done.returncode}"


def main() -> int:
    names = modules()
    with ThreadPoolExecutor(max_workers=4) as pool:
        failures = {n: e for n, e in zip(names, pool.map(import_alone, names), strict=True) if e}
    for name, error in failures.items():
        print(f"{name}: {error}", file=sys.stderr)
    print(f"{len(names) - len(failures)}/{len(names)} modules import alone")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
