"""load_config: valid grids load; every user error is a ConfigError naming the field or path."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from sweep.config import ConfigError, FileDataset, SweepConfig, load_config
from sweep.inference.strategies.mcts import MCTSSettings
from sweep.inference.strategies.rebase import RebaseSettings
from sweep.inference.strategies.sampling import GreedySettings, SamplingSettings

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"


def base_config() -> dict[str, Any]:
    """A minimal valid grid: built-in model, built-in dataset, both registered strategies."""
    return {
        "name": "unit",
        "output": "results/unit",
        "models": [{"name": "smollm2-135m-instruct"}],
        "datasets": [{"name": "arith", "source": "arithmetic", "count": 4}],
        "strategies": [{"name": "greedy"}, {"name": "sampling", "n": [1, 2, 4]}],
    }


def write_yaml(tmp_path: Path, data: Any, name: str = "grid.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def load_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


# --- valid configs -------------------------------------------------------------------------


def test_smoke_config_loads() -> None:
    config = load_config(CONFIGS / "smoke.yaml")
    assert isinstance(config, SweepConfig)
    assert config.name == "smoke"
    assert [m.name for m in config.models] == ["smollm2-135m-instruct"]
    assert [s.name for s in config.strategies] == ["greedy", "sampling", "rebase", "mcts"]
    sampling = config.strategies[1]
    assert isinstance(sampling, SamplingSettings)
    assert sampling.n_values == [1, 2, 4, 8]
    assert sampling.n_max == 8
    assert sampling.temperature == pytest.approx(0.7)
    rebase, mcts = config.strategies[2:]
    assert isinstance(rebase, RebaseSettings) and rebase.budgets == [4] and rebase.balance_temperature == 0.1
    assert isinstance(mcts, MCTSSettings) and mcts.reward_model == "smol-prm"
    (prm,) = config.reward_models
    assert prm.delimiter == "\n" and prm.scorer_settings()["kind"] == "step_token"


def tree_config(**strategy: Any) -> dict[str, Any]:
    data = base_config()
    data["reward_models"] = [{"name": "prm", "path": "smollm2-135m-instruct"}]
    data["strategies"] = [{"name": "rebase", "budgets": [8, 2, 2], "reward_model": "prm", **strategy}]
    return data


def test_tree_search_budgets_split_into_one_search_each(tmp_path: Path) -> None:
    (rebase,) = load_config(write_yaml(tmp_path, tree_config())).strategies
    assert rebase.n_values == [2, 8]
    kinds = rebase.split()
    assert [k.budgets for k in kinds] == [[2], [8]] and [k.budget for k in kinds] == [2, 8]
    assert [k.expected_rows(5) for k in kinds] == [10, 40]
    assert kinds[0].generation_identity() != kinds[1].generation_identity()
    assert (rebase.temperature, rebase.step_max_tokens, rebase.max_tokens) == (1.0, 256, 1024)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"reward_model": "nope"}, "unknown reward model 'nope'"),
        ({"budgets": []}, "budgets"),
        ({"balance_temperature": -1}, "balance_temperature"),
        ({"name": "mcts", "root_children": {8: 4}}, "root_children must give a count for each budget"),
    ],
)
def test_bad_tree_search_entries_are_named(tmp_path: Path, change: dict[str, Any], expected: str) -> None:
    assert expected in load_error(write_yaml(tmp_path, tree_config(**change)))


def test_tree_search_needs_delimited_steps(tmp_path: Path) -> None:
    data = tree_config()
    data["reward_models"][0]["step_mode"] = "step_marker"
    assert "step_mode must be 'delimiter'" in load_error(write_yaml(tmp_path, data))


def test_self_logprob_entry_needs_no_model(tmp_path: Path) -> None:
    data = tree_config()
    data["reward_models"] = [{"name": "prm", "kind": "self_logprob", "delimiter": "\n"}]
    (prm,) = load_config(write_yaml(tmp_path, data)).reward_models
    assert prm.scorer_settings() == {"kind": "self_logprob", "step_mode": "delimiter", "delimiter": "\n"}


def test_self_logprob_entry_with_a_path_still_has_it_checked(tmp_path: Path) -> None:
    data = tree_config()
    data["reward_models"] = [{"name": "prm", "kind": "self_logprob", "path": str(tmp_path / "nowhere")}]
    assert "reward_models.prm.path" in load_error(write_yaml(tmp_path, data))


def test_greedy_refuses_the_settings_it_fixes(tmp_path: Path) -> None:
    for field, value in (("temperature", 0.5), ("top_p", 0.9), ("reward_model", "prm")):
        data = base_config()
        data["strategies"] = [{"name": "greedy", field: value}]
        assert f"greedy takes no {field}" in load_error(write_yaml(tmp_path, data))


def test_minimal_config_loads_with_defaults(tmp_path: Path) -> None:
    config = load_config(write_yaml(tmp_path, base_config()))
    assert config.seed == 0
    assert config.generation.max_tokens == 512
    assert config.scheduler.shard_size == 16
    greedy, sampling = config.strategies
    assert isinstance(greedy, GreedySettings) and greedy.n_values == [1]
    assert isinstance(sampling, SamplingSettings) and sampling.temperature == 1.0


def test_strategy_label_defaults_to_name(tmp_path: Path) -> None:
    data = base_config()
    data["strategies"].append({"name": "sampling", "label": "hot", "n": [2], "temperature": 1.5})
    config = load_config(write_yaml(tmp_path, data))
    assert [s.label for s in config.strategies] == ["greedy", "sampling", "hot"]


def test_sampling_n_sorted_and_deduplicated(tmp_path: Path) -> None:
    data = base_config()
    data["strategies"] = [{"name": "sampling", "n": [8, 1, 4, 4]}]
    (sampling,) = load_config(write_yaml(tmp_path, data)).strategies
    assert sampling.n_values == [1, 4, 8]
    assert sampling.n_max == 8


def test_relative_dataset_path_resolves_against_config_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # not the config's folder
    folder = tmp_path / "configs"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "gsm.jsonl").write_text(json.dumps({"question": "1+1?", "answer": "#### 2"}) + "\n")
    data = base_config()
    data["datasets"] = [{"name": "gsm", "source": "gsm8k", "path": "data/gsm.jsonl"}]
    (dataset,) = load_config(write_yaml(folder, data)).datasets
    assert isinstance(dataset, FileDataset)
    assert dataset.path == (folder / "data" / "gsm.jsonl").resolve()


# --- the GPU configs: valid once their data files exist -------------------------------------

GSM8K_LINE = {"question": "Tom has 3 apples and buys 2 more. How many?", "answer": "3+2=5\n#### 5"}
MATH_LINE = {
    "problem": "What is $1+1$?",
    "solution": "$1+1=\\boxed{2}$.",
    "answer": "2",
    "subject": "Prealgebra",
    "level": 1,
    "unique_id": "test/prealgebra/1.json",
}


@pytest.mark.parametrize(
    ("config_name", "line"), [("gsm8k.yaml", GSM8K_LINE), ("math500.yaml", MATH_LINE)]
)
def test_gpu_configs_load(tmp_path: Path, monkeypatch, config_name: str, line: dict[str, Any]) -> None:
    # Mirror a run from the repository root: configs/<name>.yaml with data/<file>.jsonl beside it.
    (tmp_path / "configs").mkdir()
    config_path = tmp_path / "configs" / config_name
    shutil.copy(CONFIGS / config_name, config_path)
    raw = yaml.safe_load(config_path.read_text())
    (data_file,) = [Path(d["path"]) for d in raw["datasets"]]
    assert not data_file.is_absolute() and data_file.parts[0] == "data"
    (tmp_path / data_file).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / data_file).write_text(json.dumps(line) + "\n")
    monkeypatch.chdir(tmp_path)

    config = load_config(config_path)

    assert {m.name for m in config.models} == {"llemma-7b", "llemma-34b", "mistral-7b"}
    paths = {m.name: m.path for m in config.models}
    assert paths == {
        "llemma-7b": "EleutherAI/llemma_7b",
        "llemma-34b": "EleutherAI/llemma_34b",
        "mistral-7b": "mistralai/Mistral-7B-v0.1",
    }
    for model in config.models:
        assert model.params is not None  # hub ids: no local weights to count
        assert model.device == "gpu"
        assert "model" not in model.engine
    tp = {m.name: m.tensor_parallel_size for m in config.models}
    assert tp == {"llemma-7b": 1, "llemma-34b": 4, "mistral-7b": 1}
    greedy, sampling, *trees = config.strategies
    assert isinstance(greedy, GreedySettings)
    assert isinstance(sampling, SamplingSettings)
    assert sampling.temperature == 1.0
    assert sampling.n_values == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    assert config.generation.max_tokens == 1024
    assert config.scheduler.shard_size == 50
    (dataset,) = config.datasets
    assert isinstance(dataset, FileDataset)
    assert dataset.path == (tmp_path / data_file).resolve()
    if config_name == "math500.yaml":
        assert dataset.source == "math"
        assert dataset.prompt.answer_format == "boxed"
        # The paper's search settings, guided by the Llemma-34B PRM.
        (prm,) = config.reward_models
        assert prm.tensor_parallel_size == 4 and prm.kind == "step_token" and prm.tag == " ки"
        rebase, mcts = trees
        assert isinstance(rebase, RebaseSettings) and rebase.budgets == [2, 4, 8, 16, 32, 64]
        assert rebase.balance_temperature == 0.1 and rebase.temperature == 1.0
        assert isinstance(mcts, MCTSSettings)
        assert [(k.budget, k.root_children) for k in mcts.split()] == [(32, 4), (64, 8), (128, 16)]
    else:
        assert dataset.source == "gsm8k"


def test_gpu_configs_name_missing_data_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "math500.yaml"
    shutil.copy(CONFIGS / "math500.yaml", path)
    message = load_error(path)
    assert "datasets.math500.path" in message and "math500_test.jsonl" in message


# --- user errors ---------------------------------------------------------------------------


def test_missing_config_file(tmp_path: Path) -> None:
    message = load_error(tmp_path / "nope.yaml")
    assert "nope.yaml" in message and "no such config file" in message


def test_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text("name: smoke\nmodels: [unclosed\n")
    message = load_error(path)
    assert str(path) in message and "invalid YAML" in message


def test_top_level_not_a_mapping(tmp_path: Path) -> None:
    message = load_error(write_yaml(tmp_path, ["name", "smoke"]))
    assert "grid.yaml" in message and "mapping" in message


def test_empty_file_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text("")
    assert "mapping" in load_error(path)


def test_unknown_top_level_key(tmp_path: Path) -> None:
    data = base_config()
    data["modles"] = []
    message = load_error(write_yaml(tmp_path, data))
    assert "modles" in message and "grid.yaml" in message


def test_unknown_key_in_model_entry(tmp_path: Path) -> None:
    data = base_config()
    data["models"][0]["replica"] = 2  # typo of replicas
    message = load_error(write_yaml(tmp_path, data))
    assert "models.0.replica" in message


def test_unknown_key_in_strategy_entry(tmp_path: Path) -> None:
    data = base_config()
    data["strategies"][1]["temprature"] = 0.5
    message = load_error(write_yaml(tmp_path, data))
    assert "strategies" in message and "temprature" in message


def test_unknown_strategy_name(tmp_path: Path) -> None:
    data = base_config()
    data["strategies"].append({"name": "beam_search"})
    message = load_error(write_yaml(tmp_path, data))
    assert "strategies" in message and "beam_search" in message
    assert "greedy" in message and "sampling" in message  # lists the known names


def test_strategy_without_name(tmp_path: Path) -> None:
    data = base_config()
    data["strategies"] = [{"n": [1]}]
    message = load_error(write_yaml(tmp_path, data))
    assert "strategies" in message and "name" in message


def test_unknown_model_without_path(tmp_path: Path) -> None:
    data = base_config()
    data["models"].append({"name": "gpt-9"})
    message = load_error(write_yaml(tmp_path, data))
    assert "models.gpt-9" in message and "path" in message


def test_model_with_path_need_not_be_builtin(tmp_path: Path) -> None:
    data = base_config()
    data["models"].append({"name": "other", "path": "org/other-model", "params": 1000})
    config = load_config(write_yaml(tmp_path, data))
    assert config.models[1].path == "org/other-model"


def test_missing_dataset_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = base_config()
    data["datasets"] = [{"name": "gsm", "source": "gsm8k", "path": "data/absent.jsonl"}]
    message = load_error(write_yaml(tmp_path, data))
    assert "datasets.gsm.path" in message and "absent.jsonl" in message


@pytest.mark.parametrize("n", [[0], [-1], [1, 0, 4]])
def test_nonpositive_n(tmp_path: Path, n: list[int]) -> None:
    data = base_config()
    data["strategies"] = [{"name": "sampling", "n": n}]
    message = load_error(write_yaml(tmp_path, data))
    assert "strategies" in message and "sampling" in message and "n." in message


def test_empty_n(tmp_path: Path) -> None:
    data = base_config()
    data["strategies"] = [{"name": "sampling", "n": []}]
    message = load_error(write_yaml(tmp_path, data))
    assert "strategies" in message and "n" in message


def test_zero_temperature_sampling(tmp_path: Path) -> None:
    data = base_config()
    data["strategies"] = [{"name": "sampling", "n": [1], "temperature": 0}]
    assert "temperature" in load_error(write_yaml(tmp_path, data))


def test_duplicate_model_names(tmp_path: Path) -> None:
    data = base_config()
    data["models"].append({"name": "smollm2-135m-instruct", "replicas": 2})
    message = load_error(write_yaml(tmp_path, data))
    assert "models" in message and "duplicate" in message and "smollm2-135m-instruct" in message


def test_duplicate_strategy_labels(tmp_path: Path) -> None:
    data = base_config()
    data["strategies"].append({"name": "sampling", "n": [2]})  # label defaults to "sampling" again
    message = load_error(write_yaml(tmp_path, data))
    assert "strategies" in message and "duplicate" in message


def test_engine_model_is_rejected(tmp_path: Path) -> None:
    data = base_config()
    data["models"][0]["engine"] = {"model": "HuggingFaceTB/SmolLM2-135M-Instruct"}
    message = load_error(write_yaml(tmp_path, data))
    assert "models.0.engine" in message and "path" in message


def test_bad_model_name_pattern(tmp_path: Path) -> None:
    data = base_config()
    data["models"][0]["name"] = "bad/name"
    assert "models.0.name" in load_error(write_yaml(tmp_path, data))


def test_nonpositive_shard_size(tmp_path: Path) -> None:
    data = base_config()
    data["scheduler"] = {"shard_size": 0}
    assert "scheduler.shard_size" in load_error(write_yaml(tmp_path, data))


# --- bounds, finite numbers, the YAML itself, model paths -----------------------------------


def test_bounds_admit_the_largest_real_sweeps(tmp_path: Path) -> None:
    """large_language_monkeys: 10,000 samples per problem, every power of two up to it."""
    data = base_config()
    data["strategies"] = [{"name": "sampling", "n": [2**k for k in range(14)] + [10_000]}]
    data["generation"] = {"max_tokens": 131_072}
    data["datasets"][0]["count"] = 12_500  # all of MATH
    (sampling,) = load_config(write_yaml(tmp_path, data)).strategies
    assert sampling.n_max == 10_000


@pytest.mark.parametrize(
    ("section", "change", "field"),
    [
        ("strategy", {"n": [1, 10**6]}, "n: 1000000 is above the limit 65536"),
        ("strategy", {"n": [10**18]}, "n: 1000000000000000000 is above the limit"),
        ("tree", {"budgets": [2, 10**6]}, "budgets: 1000000 is above the limit 65536"),
        ("tree", {"max_tokens": 10**7}, "max_tokens: 10000000 is above the limit 1048576"),
        ("tree", {"step_max_tokens": 10**7}, "step_max_tokens: 10000000 is above the limit"),
        ("tree", {"name": "mcts", "children": 10**6}, "children: 1000000 is above the limit"),
        ("tree", {"name": "mcts", "budgets": [8], "root_children": {8: 10**6}}, "root_children.8: 1000000"),
        ("dataset", {"count": 10**18}, "datasets.0.arithmetic.count"),
        ("dataset", {"limit": 10**18}, "datasets.0.arithmetic.limit"),
        ("dataset", {"prompt": {"few_shot": 10**9}}, "datasets.0.arithmetic.prompt.few_shot"),
        ("top", {"generation": {"max_tokens": 10**18}}, "generation.max_tokens"),
        ("top", {"scheduler": {"shard_size": 10**9}}, "scheduler.shard_size"),
        ("top", {"scheduler": {"max_inflight_per_engine": 10**9}}, "scheduler.max_inflight_per_engine"),
        ("top", {"scheduler": {"max_attempts": 10**9}}, "scheduler.max_attempts"),
        ("top", {"seed": 2**40}, "seed"),
        ("top", {"seed": -1}, "seed"),
        ("model", {"replicas": 10**9}, "models.0.replicas"),
    ],
)
def test_numbers_past_their_bound_are_named(
    tmp_path: Path, section: str, change: dict[str, Any], field: str
) -> None:
    if section == "tree":
        data = tree_config(**change)
    else:
        data = base_config()
        target = {
            "strategy": data["strategies"][1],
            "dataset": data["datasets"][0],
            "model": data["models"][0],
            "top": data,
        }[section]
        target.update(change)
    assert field in load_error(write_yaml(tmp_path, data))


def test_shard_rows_are_bounded(tmp_path: Path) -> None:
    data = base_config()
    data["strategies"] = [{"name": "sampling", "n": [10_000]}]
    data["scheduler"] = {"shard_size": 1000}
    message = load_error(write_yaml(tmp_path, data))
    assert "scheduler.shard_size" in message and "strategies.sampling" in message and "at most 104" in message


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"temperature": float("inf")}, "temperature: must be a finite number"),
        ({"temperature": float("nan")}, "temperature"),
        ({"temperature": -0.5}, "temperature"),
        ({"top_p": float("inf")}, "top_p"),
        ({"top_p": float("nan")}, "top_p"),
    ],
)
def test_sampling_floats_must_be_finite(tmp_path: Path, change: dict[str, Any], field: str) -> None:
    data = base_config()
    data["strategies"][1].update(change)
    message = load_error(write_yaml(tmp_path, data))
    assert "strategies" in message and field in message


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"temperature": float("inf")}, "temperature: must be a finite number"),
        ({"balance_temperature": float("inf")}, "balance_temperature: must be a finite number"),
        ({"name": "mcts", "exploration": float("inf")}, "exploration: must be a finite number"),
    ],
)
def test_tree_search_floats_must_be_finite(tmp_path: Path, change: dict[str, Any], field: str) -> None:
    assert field in load_error(write_yaml(tmp_path, tree_config(**change)))


def test_infinite_resource_is_refused(tmp_path: Path) -> None:
    data = base_config()
    data["models"][0]["resources"] = {"accelerator": float("inf")}
    assert "models.0.resources.accelerator" in load_error(write_yaml(tmp_path, data))


@pytest.mark.parametrize("output", ["", "  "])
def test_empty_output_is_refused(tmp_path: Path, output: str) -> None:
    data = base_config()
    data["output"] = output
    message = load_error(write_yaml(tmp_path, data))
    assert "output: empty" in message


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("name: a\noutput: out\nname: b\n", "'name'", 3),
        ("name: a\nmodels:\n  - name: m\n    replicas: 1\n    replicas: 2\n", "'replicas'", 5),
        ("name: a\nscheduler: {shard_size: 1, shard_size: 2}\n", "'shard_size'", 2),
    ],
    ids=["top-level", "nested", "flow"],
)
def test_duplicate_yaml_keys_are_named_with_their_line(
    tmp_path: Path, text: str, key: str, line: int
) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    message = load_error(path)
    assert "duplicate key" in message and key in message and f"on line {line}" in message
    assert str(path) in message


def test_merge_keys_may_be_overridden(tmp_path: Path) -> None:
    """``<<: *anchor`` then a key of the anchor is an override, not a duplicate (math500.yaml does it)."""
    path = tmp_path / "grid.yaml"
    path.write_text(
        textwrap.dedent(
            """
            name: merged
            output: out
            models:
              - name: smollm2-135m-instruct
                engine: &engine {max_model_len: 1024, dtype: float32}
              - name: other
                path: smollm2-135m-instruct
                engine:
                  <<: *engine
                  max_model_len: 512
            datasets: [{name: arith, source: arithmetic, count: 4}]
            strategies: [{name: greedy}]
            """
        )
    )
    models = load_config(path).models
    assert models[1].engine == {"max_model_len": 512, "dtype": "float32"}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (bytes(range(256)) * 4, "not a text file"),
        (b"name: a\x00\x01\x02", "not a text file"),
        (b"\x89PNG\r\n\x1a\n" + bytes(200), "not a text file"),
    ],
    ids=["binary", "nul-bytes", "png"],
)
def test_binary_grid_file_is_named(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "grid.yaml"
    path.write_bytes(content)
    message = load_error(path)
    assert str(path) in message and expected in message


def test_deeply_nested_yaml_is_an_error_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text("a: " + "[" * 100_000)
    assert "invalid YAML" in load_error(path)


def test_missing_local_model_path_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for path in ("/no/such/model", "./models/absent"):
        data = base_config()
        data["models"][0]["path"] = path
        message = load_error(write_yaml(tmp_path, data))
        assert "models.smollm2-135m-instruct.path" in message and path in message
    data = tree_config()
    data["reward_models"][0]["path"] = "/no/such/prm"
    message = load_error(write_yaml(tmp_path, data))
    assert "reward_models.prm.path: no such file or folder /no/such/prm" in message


def test_local_model_folder_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "weights").mkdir()
    monkeypatch.chdir(tmp_path)
    data = base_config()
    data["models"].append({"name": "mine", "path": "./weights", "params": 1000})
    assert load_config(write_yaml(tmp_path, data)).models[1].path == "./weights"


def test_reward_model_kind_and_reference_are_checked(tmp_path: Path) -> None:
    import yaml

    raw = yaml.safe_load((CONFIGS / "smoke.yaml").read_text())
    raw["reward_models"][0]["kind"] = "crystal_ball"
    bad_kind = tmp_path / "kind.yaml"
    bad_kind.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="unknown reward model kind 'crystal_ball'"):
        load_config(bad_kind)

    raw = yaml.safe_load((CONFIGS / "smoke.yaml").read_text())
    raw["strategies"][1]["reward_model"] = "missing-prm"
    bad_ref = tmp_path / "ref.yaml"
    bad_ref.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="reward_model: unknown reward model 'missing-prm'"):
        load_config(bad_ref)


def test_config_round_trips_through_the_manifest_record() -> None:
    """The manifest stores the config as JSON; every strategy keeps its own fields (the Serve app
    rebuilds the config from it). Plain model_dump would keep only the base class's fields."""
    config = load_config(CONFIGS / "smoke.yaml")
    record = json.loads(json.dumps(config.model_dump(mode="json", serialize_as_any=True)))
    assert SweepConfig.model_validate(record).model_dump(serialize_as_any=True) == config.model_dump(serialize_as_any=True)
