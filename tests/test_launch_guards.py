"""The launcher refuses bad input before Ray starts: exit 2, one message naming the field or
path, no traceback, nothing already written lost.

Most tests run ``python -m sweep.launch`` as a user would, without RAY_ADDRESS and with
RAY_TMPDIR pointed into the test's folder: a Ray that started would have made its session
folder there, so its absence shows that none did. The rest call the launcher's pieces
(``sweep.launch``, ``sweep.preflight``, ``sweep.driver``).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml

from sweep.config import ConfigError, load_config
from sweep.driver import SweepOutcome
from sweep.launch import _set_aside_corrupt_manifest, main, print_summary
from sweep.preflight import check_token_caps
from sweep.results.store import LOCK_NAME, ResultsStore

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "configs" / "tiny.yaml"


def tiny(**changes: Any) -> dict[str, Any]:
    raw = yaml.safe_load(TINY.read_text())
    raw["output"] = "results/tiny"
    raw.update(changes)
    return raw


def launch(tmp_path: Path, config: dict[str, Any] | bytes, *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "grid.yaml"
    if isinstance(config, bytes):
        path.write_bytes(config)
    else:
        path.write_text(yaml.safe_dump(config, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_TMPDIR"] = str(tmp_path / "ray-tmp")
    return subprocess.run(
        [sys.executable, "-m", "sweep.launch", str(path), "--no-progress", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )


def assert_refused(result: subprocess.CompletedProcess[str], tmp_path: Path, *expected: str) -> None:
    assert result.returncode == 2, result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.count("error:") == 1
    assert not (tmp_path / "ray-tmp").exists(), "Ray was started"


# --- the output folder ---------------------------------------------------------------------


def test_empty_output_in_the_grid(tmp_path: Path) -> None:
    result = launch(tmp_path, tiny(output=""))
    assert_refused(result, tmp_path, "output: empty")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.yaml"]  # nothing written here


def test_empty_output_flag(tmp_path: Path) -> None:
    assert_refused(launch(tmp_path, tiny(), "--output", ""), tmp_path, "--output: empty")


def test_output_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "results.txt").write_text("keep me")
    result = launch(tmp_path, tiny(output=str(tmp_path / "results.txt")))
    assert_refused(result, tmp_path, f"output {tmp_path / 'results.txt'}: the output path is a file")
    assert (tmp_path / "results.txt").read_text() == "keep me"


def test_output_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "results.txt").write_text("keep me")
    result = launch(tmp_path, tiny(), "--output", str(tmp_path / "results.txt" / "run"))
    assert_refused(result, tmp_path, f"{tmp_path / 'results.txt'}, above it, is a file")


def test_output_that_cannot_be_written(tmp_path: Path) -> None:
    from test_storage import unwritable_folder

    folder = unwritable_folder(tmp_path)
    result = launch(tmp_path, tiny(), "--output", str(folder))
    assert_refused(result, tmp_path, f"output {folder}: cannot write")
    result = launch(tmp_path, tiny(), "--output", str(folder / "sub" / "run"))
    assert_refused(result, tmp_path, f"output {folder / 'sub' / 'run'}: cannot create the folder")


def test_second_launch_into_a_held_folder_names_the_holder(tmp_path: Path) -> None:
    output = tmp_path / "results"
    store = ResultsStore(str(output))
    store.write_manifest({"runs": [{"run_id": "earlier"}]})
    before = (output / "manifest.json").read_bytes()
    with store.lock():
        started = json.loads((output / LOCK_NAME).read_text())["started"]
        result = launch(tmp_path, tiny(), "--output", str(output))
    assert_refused(
        result, tmp_path, "in use by another launch", f"pid {os.getpid()}", socket.gethostname(), started
    )
    assert (output / "manifest.json").read_bytes() == before


# --- the grid ------------------------------------------------------------------------------


def sampling(**changes: Any) -> dict[str, Any]:
    return tiny(strategies=[{"name": "sampling", "n": [1, 2], "temperature": 0.7, **changes}])


def tree(**changes: Any) -> dict[str, Any]:
    raw = tiny()
    prm = {"name": "prm", "path": "smollm2-135m-instruct", "engine": {"max_model_len": 1024}}
    raw["reward_models"] = [prm]
    raw["strategies"] = [{"name": "rebase", "budgets": [2], "reward_model": "prm", **changes}]
    return raw


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (sampling(n=[1, 100_000]), ["strategies", "n: 100000 is above the limit 65536"]),
        (tree(budgets=[2, 10**7]), ["strategies", "budgets: 10000000 is above the limit 65536"]),
        (
            tiny(datasets=[{"name": "a", "source": "arithmetic", "count": 10**18}]),
            ["datasets.0.arithmetic.count", "1048576"],
        ),
        (tiny(generation={"max_tokens": 10**18}), ["generation.max_tokens", "less than or equal to 1048576"]),
        (tiny(scheduler={"shard_size": 10**9}), ["scheduler.shard_size"]),
        (sampling(temperature=float("inf")), ["temperature: must be a finite number, got inf"]),
        (sampling(top_p=float("nan")), ["top_p"]),
        (tiny(models=[{"name": "local", "path": "/no/such/model"}]), ["models.local.path", "/no/such/model"]),
    ],
    ids=["n", "budgets", "count", "max_tokens", "shard_size", "temperature-inf", "top_p-nan", "model-path"],
)
def test_bad_grid_values_are_named(tmp_path: Path, config: dict[str, Any], expected: list[str]) -> None:
    assert_refused(launch(tmp_path, config), tmp_path, *expected)


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    text = yaml.safe_dump(tiny(), sort_keys=False) + "output: elsewhere\n"
    result = launch(tmp_path, text.encode())
    assert_refused(result, tmp_path, "duplicate key 'output'", "first given on line 2")


def test_binary_grid_file(tmp_path: Path) -> None:
    result = launch(tmp_path, Path(sys.executable).resolve().read_bytes()[:4096])
    assert_refused(result, tmp_path, "grid.yaml: not a text file")


# --- token caps against the model's context --------------------------------------------------


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            tiny(generation={"max_tokens": 1024}),
            "generation.max_tokens: 1024 tokens and a prompt do not fit the context of "
            "models.smollm2-135m-instruct (1024 tokens, from "
            "models.smollm2-135m-instruct.engine.max_model_len)",
        ),
        (tree(max_tokens=4000), "strategies.rebase.max_tokens: 4000 tokens"),
        (tree(step_max_tokens=2000, max_tokens=512), "strategies.rebase.step_max_tokens: 2000 tokens"),
    ],
    ids=["generation", "tree-path", "tree-step"],
)
def test_token_cap_above_the_engine_context(tmp_path: Path, config: dict[str, Any], expected: str) -> None:
    assert_refused(launch(tmp_path, config), tmp_path, expected)


def test_token_cap_above_the_reward_models_context(tmp_path: Path) -> None:
    config = tree(max_tokens=800)
    config["reward_models"][0]["engine"] = {"max_model_len": 512}
    result = launch(tmp_path, config)
    assert_refused(result, tmp_path, "strategies.rebase.max_tokens", "reward_models.prm (512")


def test_token_cap_above_the_cpu_default(tmp_path: Path) -> None:
    config = tiny(generation={"max_tokens": 5000})
    config["models"] = [{"name": "smollm2-135m-instruct", "device": "cpu"}]
    assert_refused(launch(tmp_path, config), tmp_path, "(4096 tokens, from the CPU engine default")


def test_token_cap_above_the_models_own_context(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "max_position_embeddings": 512}))
    config = tiny(generation={"max_tokens": 600})
    config["models"] = [{"name": "mine", "path": str(folder), "device": "gpu", "params": 1000}]
    assert_refused(launch(tmp_path, config), tmp_path, f"(512 tokens, from {folder / 'config.json'})")


def test_auto_device_is_checked_once_the_cluster_is_known(tmp_path: Path) -> None:
    path = tmp_path / "grid.yaml"
    config = tiny(generation={"max_tokens": 5000})
    config["models"] = [{"name": "smollm2-135m-instruct"}]  # device auto, no max_model_len
    path.write_text(yaml.safe_dump(config))
    loaded = load_config(path)
    check_token_caps(loaded, cluster_has_gpus=None)  # before Ray: the device is not known yet
    check_token_caps(loaded, cluster_has_gpus=True)  # a GPU engine: the model's own 8192
    with pytest.raises(ConfigError, match="the CPU engine default"):
        check_token_caps(loaded, cluster_has_gpus=False)


def test_caps_within_every_context_pass(tmp_path: Path) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(tree(max_tokens=1000, step_max_tokens=200)))
    check_token_caps(load_config(path), cluster_has_gpus=False)
    check_token_caps(load_config(ROOT / "configs" / "smoke.yaml"), cluster_has_gpus=False)


# --- main's exit paths release the lock -------------------------------------------------------


@pytest.mark.parametrize("failure", [KeyboardInterrupt, RuntimeError])
def test_lock_is_released_when_the_run_is_cut_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: type[BaseException]
) -> None:
    import sweep.launch

    output = tmp_path / "results"

    def cut_short() -> None:
        assert json.loads((output / LOCK_NAME).read_text())["pid"] == os.getpid()  # held while running
        raise failure()

    monkeypatch.setattr(sweep.launch, "_init_ray", cut_short)
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(tiny()))
    if failure is KeyboardInterrupt:
        assert main([str(path), "--output", str(output)]) == 130
    else:
        with pytest.raises(RuntimeError):
            main([str(path), "--output", str(output)])
    assert (output / LOCK_NAME).read_text() == ""
    ResultsStore(str(output)).lock().release()  # free for the next launch


# --- a corrupt manifest ------------------------------------------------------------------------


def test_corrupt_manifest_is_set_aside_and_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = ResultsStore(str(tmp_path / "results"))
    store.write_manifest({"runs": []})
    Path(store.manifest_path).write_bytes(b'{"runs": [{"run_id": "a", "sta')
    with caplog.at_level(logging.WARNING):
        _set_aside_corrupt_manifest(store)
    (kept,) = (tmp_path / "results").glob("manifest.corrupt-*.json")
    assert kept.read_bytes() == b'{"runs": [{"run_id": "a", "sta'
    assert store.read_manifest() == {}  # the run then writes a new one for its grid
    assert "corrupt" in caplog.text and str(kept) in caplog.text
    _set_aside_corrupt_manifest(store)  # nothing to do on a sound (or absent) manifest
    assert len(list((tmp_path / "results").glob("manifest*"))) == 1


# --- the summary prints results as text, never as markup ----------------------------------------


def test_summary_prints_markup_like_values_verbatim(capsys: pytest.CaptureFixture[str]) -> None:
    row = {
        "model": "[bold]m[/bold]",
        "dataset": "\\boxed{[a,b]}",
        "strategy": "[/oops]",
        "method": "[link=x]y",
        "n": 4,
        "problems": 2,
        "accuracy": 0.5,
        "tokens_per_problem": 10.0,
        "flops_per_problem": 1e9,
        "latency_s": 0.25,
        "errors": 0,
    }
    outcome = SweepOutcome(
        output="results/[red]x[/red]",
        shards_total=3,
        shards_skipped=1,
        shards_failed={},
        summary=pa.Table.from_pylist([row]),
        seconds=1.0,
        report="/tmp/[/]report.html",
    )
    print_summary(outcome)
    out = capsys.readouterr().out
    markup = ("[bold]m[/bold]", "\\boxed{[a,b]}", "[/oops]", "[link=x]y")  # the summary's cells
    for text in (*markup, "[red]x[/red]", "/tmp/[/]report.html"):
        assert text in out
