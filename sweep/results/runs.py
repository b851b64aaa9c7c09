"""Runs of one output folder: every launch records its grid in ``manifest.json``; readers show one run.

An output folder accumulates files: rerun a grid with one changed setting and the old grid's
shards stay beside the new ones (they are reused if a later run goes back to the old setting).
So a launch records, before it computes anything, the run: its id, its config and its grid (the
shard ids of every cell, and the problem files of every dataset). Readers then read exactly the
files of one run's grid: the latest by default (``select_run``), or one named by its id. Files
of other runs stay readable on purpose through the ``all_*`` views (``analysis/views.py``).

What it leaves out: reading the files (``analysis.views``) and writing them (``sweep.results.store``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow.fs as pafs

from sweep.results.store import ResultsStore

LATEST = "latest"


class RunNotFound(ValueError):
    """A run id the manifest does not hold."""


@dataclass(frozen=True)
class RunFiles:
    """The files of one run's grid that exist on disk (a run cut short has fewer)."""

    run_id: str | None  # None: the folder has no recorded grid; every file is read
    samples: list[str] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    missing: int = 0  # shards of the grid with no samples file (not run yet, or failed)


def grid_record(shards: list[Any], problems: dict[str, str]) -> dict[str, Any]:
    """The grid part of a run record: shard ids per (model, strategy, dataset, config_id) cell, and the
    problems file digest of every dataset."""
    cells: dict[tuple[str, str, str, str], list[str]] = {}
    for shard in shards:
        key = (shard.model, shard.strategy.label, shard.dataset, shard.config_id)
        cells.setdefault(key, []).append(shard.shard_id)
    return {
        "grid": [
            {"model": m, "strategy": s, "dataset": d, "config_id": c, "shards": ids}
            for (m, s, d, c), ids in cells.items()
        ],
        "problems": problems,
    }


def recorded_runs(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Runs that recorded their grid, oldest first."""
    return [r for r in manifest.get("runs", []) if isinstance(r, dict) and "grid" in r]


def select_run(manifest: dict[str, Any], run: str | None = None) -> dict[str, Any] | None:
    """The record of run ``run`` (an id, or None / "latest" for the newest); None when the folder
    has no recorded grid and ``run`` asks for the latest. Raises RunNotFound for an unknown id."""
    runs = recorded_runs(manifest)
    if run is None or run == LATEST:
        return runs[-1] if runs else None
    for record in runs:
        if record["run_id"] == run:
            return record
    known = ", ".join(r["run_id"] for r in runs[-10:]) or "none"
    raise RunNotFound(f"no run {run!r} in this results folder; recorded runs (newest last): {known}")


def run_files(store: ResultsStore, record: dict[str, Any]) -> RunFiles:
    """The existing files of ``record``'s grid."""
    samples, nodes = [], []
    for cell in record["grid"]:
        for shard_id in cell["shards"]:
            samples.append(store.samples_path(cell["model"], cell["strategy"], shard_id))
            nodes.append(store.nodes_path(cell["model"], cell["strategy"], shard_id))
    problems = [store.problems_path(d, digest) for d, digest in record.get("problems", {}).items()]
    present_samples = _existing(store, samples)
    return RunFiles(
        run_id=record["run_id"],
        samples=present_samples,
        nodes=_existing(store, nodes),
        problems=_existing(store, problems),
        missing=len(samples) - len(present_samples),
    )


def _existing(store: ResultsStore, paths: list[str]) -> list[str]:
    if not paths:
        return []
    infos = store.fs.get_file_info(paths)
    return [path for info, path in zip(infos, paths, strict=True) if info.type == pafs.FileType.File]
