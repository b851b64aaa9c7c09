"""On the real CPU engine: the live ``adaptive`` strategy runs in a sweep, resumes, and agrees with
the offline replay of the same rule on a fixed-n sweep of the same problems."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.timeout(900)


def test_live_adaptive_agrees_with_its_offline_replay(engine_pool: Any, tiny_config: Any) -> None:
    from analysis.estimators import compute_accuracy
    from analysis.views import connect
    from sweep.driver import run_sweep
    from sweep.inference.stopping import StoppingRule
    from sweep.inference.strategies import STRATEGIES

    dataset = tiny_config.datasets[0].model_copy(update={"levels": [0], "count": 16})
    strategies = [
        STRATEGIES["sampling"].settings.model_validate({"name": "sampling", "n": [8], "temperature": 1.0}),
        STRATEGIES["adaptive"].settings.model_validate(
            {
                "name": "adaptive",
                "n_max": 8,
                "window": 2,
                "rule": "beta",
                "threshold": 0.9,
                "temperature": 1.0,
            }
        ),
    ]
    scheduler = tiny_config.scheduler.model_copy(update={"shard_size": 8})
    config = tiny_config.model_copy(
        update={"datasets": [dataset], "strategies": strategies, "scheduler": scheduler}
    )
    outcome = run_sweep(config, show_progress=False, write_report=False)
    assert not outcome.shards_failed

    con = connect(config.output)
    stops = con.sql(
        "SELECT problem_id, count(*) AS drawn, count(DISTINCT stop_reason) AS reasons, any_value(stop_reason) AS why "
        "FROM samples WHERE strategy = 'adaptive' GROUP BY problem_id"
    ).fetchall()
    assert len(stops) == 16
    for _, drawn, reasons, why in stops:
        assert reasons == 1 and 2 <= drawn <= 8 and drawn % 2 == 0
        assert why == "rule" or drawn == 8

    accuracy = compute_accuracy(con, resamples=50, adaptive=[StoppingRule("beta", 0.9, window=2)])
    live = accuracy[(accuracy["strategy"] == "adaptive") & (accuracy["method"] == "majority_vote")].iloc[0]
    replay = accuracy[
        (accuracy["strategy"] == "sampling") & (accuracy["method"] == "adaptive_beta_0.9_r2")
    ].iloc[0]
    # Two estimates of one quantity, each with its 95% bootstrap interval: they must overlap.
    assert live["ci_low"] <= replay["ci_high"] and replay["ci_low"] <= live["ci_high"], (live, replay)
    drawn_mean = sum(d for _, d, _, _ in stops) / len(stops)
    assert live["n"] == 8 and live["flops_per_problem"] > 0
    assert live["samples_per_problem"] == pytest.approx(drawn_mean)  # what it drew, not n_max
    assert 2 <= replay["samples_per_problem"] <= 8

    again = run_sweep(config, show_progress=False, write_report=False)  # resumable: nothing to draw again
    assert again.shards_skipped == again.shards_total
