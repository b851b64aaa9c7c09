"""End to end on the real vLLM CPU engine: sweep, rerun, resume after SIGKILL, engine killed mid-sweep."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import yaml

from sweep.results.schema import PROMPTS, SAMPLES

pytestmark = pytest.mark.timeout(900)

ROOT = Path(__file__).resolve().parent.parent


def read_samples(output: Path) -> Any:
    files = sorted((output / "samples").rglob("*.parquet"))
    return ds.dataset([str(f) for f in files], format="parquet", schema=SAMPLES).to_table()


def expected_rows(config: Any) -> int:
    problems = sum(d.count for d in config.datasets)
    return problems * sum(s.n_max for s in config.strategies)


def assert_exact(table: Any, config: Any) -> None:
    assert table.num_rows == expected_rows(config)
    keys = list(zip(table["strategy"].to_pylist(), table["problem_id"].to_pylist(), table["sample_index"].to_pylist()))
    assert len(set(keys)) == len(keys), "duplicated rows"


def run_cli(config_path: Path, output: Path, *extra: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sweep.launch", str(config_path), "--output", str(output), "--no-progress", *extra],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def test_sweep_writes_every_sample_and_summarises(engine_pool: Any, tiny_config: Any) -> None:
    from sweep.driver import run_sweep

    outcome = run_sweep(tiny_config, show_progress=False)
    output = Path(tiny_config.output)
    assert not outcome.shards_failed and outcome.shards_skipped == 0

    table = read_samples(output)
    assert_exact(table, tiny_config)
    for file in (output / "samples").rglob("*.parquet"):
        assert pq.read_schema(file).remove_metadata().equals(SAMPLES)
    assert {p.name for p in (output / "samples").iterdir()} == {"model=smollm2-135m-instruct"}

    rows = table.to_pylist()
    params = rows[0]["model_params"]
    assert params == 134_515_008
    for row in rows:
        assert row["error"] is None
        assert row["completion_flops"] == 2.0 * params * row["completion_tokens"]
        assert row["prompt_flops"] == 2.0 * params * row["prompt_tokens"] > 0
        assert row["completion_tokens"] > 0 and row["finish_reason"] in ("stop", "length")
    greedy = [r for r in rows if r["strategy"] == "greedy"]
    assert all(r["temperature"] == 0.0 and r["sample_index"] == 0 for r in greedy)

    prompts = pq.read_table(next((output / "prompts").rglob("*.parquet")))
    assert prompts.schema.remove_metadata().equals(PROMPTS)
    assert "<|im_start|>" in prompts["prompt"][0].as_py()  # the model's chat template was applied
    assert (output / "manifest.json").is_file()
    assert outcome.report is not None and Path(outcome.report) == (output / "report.html").resolve()
    assert "plotly" in Path(outcome.report).read_text()[:2_000_000]

    summary = {(r["method"], r["n"]): r for r in outcome.summary.to_pylist()}
    assert set(summary) == {("greedy", 1), ("majority_vote", 1), ("majority_vote", 2), ("majority_vote", 4)}
    for row in summary.values():
        assert row["problems"] == 6 and 0.0 <= row["accuracy"] <= 1.0 and row["flops_per_problem"] > 0
    # More samples cost more: tokens grow with n from the same stored draw.
    assert summary[("majority_vote", 4)]["tokens_per_problem"] > summary[("majority_vote", 1)]["tokens_per_problem"]

    # A second run generates nothing and leaves every file untouched.
    before = {f: f.stat().st_mtime_ns for f in (output / "samples").rglob("*.parquet")}
    again = run_sweep(tiny_config, show_progress=False, write_report=False)
    assert again.shards_skipped == again.shards_total == outcome.shards_total
    assert {f: f.stat().st_mtime_ns for f in (output / "samples").rglob("*.parquet")} == before


def test_resume_after_sigkill(engine_pool: Any, tmp_path: Path) -> None:
    raw = yaml.safe_load((ROOT / "tests" / "configs" / "tiny.yaml").read_text())
    raw["datasets"][0]["count"] = 12
    raw["scheduler"]["shard_size"] = 1
    config_path = tmp_path / "grid.yaml"
    config_path.write_text(yaml.safe_dump(raw))
    output = tmp_path / "out"
    total_shards = 24

    process = subprocess.Popen(
        [sys.executable, "-m", "sweep.launch", str(config_path), "--output", str(output), "--no-progress"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list((output / "samples").rglob("*.parquet")):
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    survivors = {f: f.stat().st_mtime_ns for f in (output / "samples").rglob("*.parquet")}
    assert 0 < len(survivors) < total_shards, "the kill must land halfway"

    result = run_cli(config_path, output)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{total_shards} shards: {len(survivors)} already complete" in result.stdout
    from sweep.config import load_config

    assert_exact(read_samples(output), load_config(config_path))
    # Files finished before the kill were kept, not regenerated.
    assert all(f.stat().st_mtime_ns == t for f, t in survivors.items())


def test_engine_killed_mid_sweep(engine_pool: Any, tiny_config: Any) -> None:
    import ray

    from sweep.driver import run_sweep

    config = tiny_config.model_copy(
        update={"scheduler": tiny_config.scheduler.model_copy(update={"shard_size": 1})}
    )
    output = Path(config.output)
    outcome: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: outcome.update(result=run_sweep(config, show_progress=False)))
    worker.start()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list((output / "samples").rglob("*.parquet")):
        time.sleep(0.05)
    ray.kill(engine_pool.handles[0], no_restart=False)  # Ray restarts it; in-flight shards re-run
    killed_at = len(list((output / "samples").rglob("*.parquet")))
    worker.join(timeout=600)
    assert killed_at < 12, "the kill must land mid-sweep"
    result = outcome["result"]
    assert not result.shards_failed
    assert result.retries >= 1, "the shards in flight on the killed engine ran again"
    assert_exact(read_samples(output), config)
    ray.get(engine_pool.handles[0].ready.remote(), timeout=300)  # restarted and serving


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda raw: "models: [unclosed", "invalid YAML"),
        (lambda raw: raw | {"typo_key": 1}, "typo_key"),
        (lambda raw: raw | {"strategies": [{"name": "beam_me_up"}]}, "unknown strategy 'beam_me_up'"),
        (lambda raw: raw | {"models": [{"name": "no-such-model"}]}, "models.no-such-model: unknown model"),
        (
            lambda raw: raw | {"datasets": [{"name": "g", "source": "gsm8k", "path": "missing.jsonl"}]},
            "datasets.g.path: no such file",
        ),
        (lambda raw: raw | {"strategies": [{"name": "sampling", "n": [0, 4]}]}, "greater than 0"),
    ],
    ids=["invalid-yaml", "unknown-key", "unknown-strategy", "unknown-model", "missing-dataset", "n-not-positive"],
)
def test_bad_config_exits_2_before_ray(tmp_path: Path, mutate: Any, expected: str) -> None:
    raw = yaml.safe_load((ROOT / "tests" / "configs" / "tiny.yaml").read_text())
    mutated = mutate(raw)
    config_path = tmp_path / "bad.yaml"
    config_path.write_text(mutated if isinstance(mutated, str) else yaml.safe_dump(mutated))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    result = subprocess.run(
        [sys.executable, "-m", "sweep.launch", str(config_path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
    )
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert result.stderr.count("error:") == 1
    assert "Started a local Ray instance" not in result.stderr + result.stdout
    assert not (tmp_path / "results").exists()


def test_engine_that_cannot_start_fails_alone(engine_pool: Any, tiny_config: Any, tmp_path: Path) -> None:
    from sweep.config import ModelConfig
    from sweep.driver import run_sweep

    # A folder that exists (so validation takes it) but holds no model: the engine fails to start.
    (tmp_path / "not-a-model").mkdir()
    broken = ModelConfig(name="broken", path=str(tmp_path / "not-a-model"), params=1_000_000)
    config = tiny_config.model_copy(update={"models": [*tiny_config.models, broken]})
    outcome = run_sweep(config, show_progress=False, write_report=False)

    assert set(outcome.dead_engines) == {"broken"}
    assert "not-a-model" in outcome.dead_engines["broken"]
    assert len(outcome.shards_failed) == outcome.shards_total // 2  # every shard of the broken model, no other
    # The working model's samples are all there, exactly once.
    assert_exact(read_samples(Path(config.output)), tiny_config)


def test_reward_model_that_cannot_start_is_blamed_not_the_policy(
    engine_pool: Any, tiny_config: Any, tmp_path: Path
) -> None:
    from sweep.config import RewardModelConfig
    from sweep.driver import run_sweep

    (tmp_path / "not-a-prm").mkdir()
    prm = RewardModelConfig(name="broken-prm", path=str(tmp_path / "not-a-prm"), params=1_000_000)
    strategies = [
        s.model_copy(update={"reward_model": "broken-prm"}) if s.name == "sampling" else s for s in tiny_config.strategies
    ]
    config = tiny_config.model_copy(update={"reward_models": [prm], "strategies": strategies})
    outcome = run_sweep(config, show_progress=False, write_report=False)

    assert set(outcome.dead_engines) == {"broken-prm"} and "not-a-prm" in outcome.dead_engines["broken-prm"]
    assert len(outcome.shards_failed) == 3  # the scored sampling shards; the policy's greedy shards ran
    rows = read_samples(Path(config.output)).to_pylist()
    assert len(rows) == 6 and {r["strategy"] for r in rows} == {"greedy"}


def test_sampling_shards_store_prm_scores(engine_pool: Any, tiny_config: Any) -> None:
    """The small model as its own step-token PRM: scores on every sample, served by the same engine."""
    from analysis.estimators import compute_accuracy
    from analysis.views import connect
    from sweep.config import RewardModelConfig
    from sweep.driver import run_sweep

    policy = tiny_config.models[0]
    prm = RewardModelConfig(
        name="smol-prm",
        path=policy.name,  # a built-in name: same weights, same engine spec, so the same actor
        engine=policy.engine,
        env=policy.env,
        tag="\nIs this step correct?",
        good=" Yes",
        bad=" No",
    )
    strategies = [
        s.model_copy(update={"reward_model": "smol-prm"}) if s.name == "sampling" else s for s in tiny_config.strategies
    ]
    config = tiny_config.model_copy(update={"reward_models": [prm], "strategies": strategies})
    outcome = run_sweep(config, show_progress=False, write_report=False)
    assert not outcome.shards_failed

    rows = read_samples(Path(config.output)).to_pylist()
    assert len(rows) == expected_rows(config)
    scored = [r for r in rows if r["strategy"] == "sampling"]
    for row in scored:
        assert row["reward_model"] == "smol-prm"
        scores = row["step_scores"]
        assert scores and all(0.0 <= s <= 1.0 for s in scores)
        assert row["score_last"] == scores[-1] and row["score_min"] == min(scores)
        assert row["score_mean"] == pytest.approx(sum(scores) / len(scores))
        assert row["reward_flops"] > 0 and row["reward_flops"] % (2.0 * row["model_params"]) == 0
    assert all(r["step_scores"] is None and r["reward_flops"] == 0.0 for r in rows if r["strategy"] == "greedy")

    methods = set(compute_accuracy(connect(config.output), resamples=20)["method"])
    assert {"best_of_n_last", "best_of_n_min", "weighted_vote_prod", "weighted_vote_mean"} <= methods


def test_file_uri_output_resumes(engine_pool: Any, tiny_config: Any, tmp_path: Path) -> None:
    """`output:` as a URI goes through pyarrow filesystems (s3://, gs://; file:// here), resume included."""
    from sweep.driver import run_sweep

    folder = tmp_path / "bucket" / "sweep"
    config = tiny_config.model_copy(update={"output": folder.as_uri()})
    outcome = run_sweep(config, show_progress=False)
    assert not outcome.shards_failed and outcome.report is None  # the report is a local file: not for URIs
    assert_exact(read_samples(folder), config)
    assert {(r["method"], r["n"]) for r in outcome.summary.to_pylist()} >= {("greedy", 1), ("majority_vote", 4)}
    assert (folder / "manifest.json").is_file() and list((folder / "prompts").rglob("*.parquet"))

    lost = min((folder / "samples").rglob("*.parquet"))
    kept = {f: f.stat().st_mtime_ns for f in (folder / "samples").rglob("*.parquet") if f != lost}
    lost.unlink()
    again = run_sweep(config, show_progress=False, write_report=False)
    assert again.shards_skipped == again.shards_total - 1 and not again.shards_failed
    assert_exact(read_samples(folder), config)
    assert all(f.stat().st_mtime_ns == t for f, t in kept.items())
