"""On the real engine: rerun a grid with one changed setting into the same folder; readers use
only the new grid; going back to the old setting regenerates nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(900)


def with_temperature(config: Any, temperature: float) -> Any:
    strategies = [
        s.model_copy(update={"temperature": temperature}) if s.name == "sampling" else s for s in config.strategies
    ]
    return config.model_copy(update={"strategies": strategies})


def test_a_rerun_with_a_changed_setting_reads_only_its_own_grid(engine_pool: Any, tiny_config: Any) -> None:
    from analysis.estimators import compute_accuracy
    from analysis.views import connect
    from sweep.driver import run_sweep

    output = tiny_config.output
    first = run_sweep(with_temperature(tiny_config, 0.7), show_progress=False, write_report=False)
    second = run_sweep(with_temperature(tiny_config, 1.3), show_progress=False, write_report=False)
    assert not first.shards_failed and not second.shards_failed
    greedy_shards = 3  # 6 problems in shards of 2: unchanged, so reused
    assert second.shards_skipped == greedy_shards

    con = connect(output)
    temperatures = con.sql("SELECT DISTINCT temperature FROM samples WHERE strategy = 'sampling'").fetchall()
    assert temperatures == [(pytest.approx(1.3),)]
    assert con.execute("SELECT count(*) FROM samples").fetchall()[0][0] == 6 * (1 + 4)
    assert con.execute("SELECT count(*) FROM all_samples").fetchall()[0][0] == 6 * (1 + 4 + 4)
    accuracy = compute_accuracy(con, resamples=5)
    assert set(accuracy["problems"]) == {6}  # no problem counted twice
    assert {row["problems"] for row in second.summary.to_pylist()} == {6}
    old = connect(output, run=first.run_id)
    assert old.sql("SELECT DISTINCT temperature FROM samples WHERE strategy = 'sampling'").fetchall() == [
        (pytest.approx(0.7),)
    ]

    # Back to the first setting: every shard is on disk already.
    files = {f: f.stat().st_mtime_ns for f in (Path(output) / "samples").rglob("*.parquet")}
    third = run_sweep(with_temperature(tiny_config, 0.7), show_progress=False, write_report=True)
    assert third.shards_skipped == third.shards_total
    assert {f: f.stat().st_mtime_ns for f in (Path(output) / "samples").rglob("*.parquet")} == files
    back = connect(output)
    assert back.sql("SELECT DISTINCT temperature FROM samples WHERE strategy = 'sampling'").fetchall() == [
        (pytest.approx(0.7),)
    ]
    assert third.report is not None
    runs = back.sql("SELECT run_id, current FROM runs").fetchall()
    assert [r for r, current in runs if current] == [third.run_id] and len(runs) == 3
