"""The built-in CPU model: GGUF → float32 safetensors conversion, the cache, parameter counts.

Uses the real files: the converted copy in the user cache (made by the first sweep or test
session) and, for the conversion itself, the GGUF kept beside it. The conversion test takes
about 20 s and writes ~0.5 GB into a temporary folder.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

from actors.models import (
    BUILTIN_MODELS,
    ModelPathError,
    cache_dir,
    convert_gguf_to_safetensors,
    count_parameters,
    ensure_builtin_model,
    is_hub_id,
    locate_model,
    model_context_length,
    resolve_model_path,
)

NAME = "smollm2-135m-instruct"
# Exact count of the converted SmolLM2-135M (tied embeddings): 30 layers of 576 wide + norms.
PARAMS = 134_515_008
# The config-only estimate counts embeddings, attention and MLP weights but not the RMSNorm
# vectors (2 per layer + the final one, 576 each).
ESTIMATE = PARAMS - (2 * 30 + 1) * 576


def gguf_path() -> Path:
    return cache_dir() / "gguf" / Path(BUILTIN_MODELS[NAME].member).name


def assert_float32_safetensors_folder(folder: Path) -> dict[str, np.ndarray]:
    """The shape vLLM needs: a plain (unquantised) config and float32 safetensors weights."""
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["hidden_size"] == 576 and config["num_hidden_layers"] == 30
    shards = sorted(folder.glob("*.safetensors"))
    assert shards
    sample: dict[str, np.ndarray] = {}
    for shard in shards:
        with safe_open(str(shard), framework="np") as handle:
            keys = list(handle.keys())
            assert keys
            assert {handle.get_slice(k).get_dtype() for k in keys} == {"F32"}
            for key in ("model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight"):
                if key in keys:
                    sample[key] = handle.get_tensor(key)
    assert sample["model.embed_tokens.weight"].shape == (config["vocab_size"], 576)
    assert np.isfinite(sample["model.layers.0.self_attn.q_proj.weight"]).all()
    return sample


def test_builtin_model_folder() -> None:
    folder = ensure_builtin_model(NAME)
    assert folder == cache_dir() / "models" / NAME
    assert_float32_safetensors_folder(folder)
    assert count_parameters(str(folder)) == PARAMS
    # A second call is a cache hit: same folder, nothing rewritten.
    weights = next(folder.glob("*.safetensors"))
    mtime = weights.stat().st_mtime_ns
    assert ensure_builtin_model(NAME) == folder
    assert weights.stat().st_mtime_ns == mtime
    assert resolve_model_path(NAME, None) == str(folder)


def test_builtin_model_carries_its_tokenizer_and_chat_template() -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(ensure_builtin_model(NAME)))
    text = "What is 12 + 30?"
    assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text
    assert tokenizer.chat_template
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
    )
    assert text in rendered and rendered.rstrip().endswith("assistant")


def test_ensure_builtin_model_uses_existing_folder_under_root(tmp_path: Path) -> None:
    source = ensure_builtin_model(NAME)
    target = tmp_path / "models" / NAME
    target.mkdir(parents=True)
    for file in source.iterdir():
        (target / file.name).symlink_to(file)
    assert ensure_builtin_model(NAME, root=tmp_path) == target


def test_resolve_model_path_passes_paths_through(tmp_path: Path) -> None:
    assert resolve_model_path("anything", "org/model") == "org/model"
    assert resolve_model_path("anything", str(tmp_path)) == str(tmp_path)


@pytest.mark.parametrize("path", ["/no/such/model", "./missing-model", "models/a/b", "~/models/x", "../up"])
def test_missing_local_model_path_is_an_error(
    path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelPathError, match="no such file or folder"):
        locate_model(path)
    with pytest.raises(ModelPathError):
        resolve_model_path("m", path)


def test_existing_relative_model_folder_is_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "models" / "mine").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert locate_model("models/mine") == "models/mine"  # unchanged: the engine reads it from here


@pytest.mark.parametrize(
    ("path", "hub"),
    [
        ("EleutherAI/llemma_7b", True),
        ("gpt2", True),
        ("ScalableMath/llemma-34b-prm-metamath-level-1to3-hf", True),
        ("/abs/path", False),
        ("./rel", False),
        ("a/b/c", False),
        ("org/../x", False),
        ("org--x/y", False),
    ],
)
def test_hub_ids_are_told_from_paths(path: str, hub: bool) -> None:
    assert is_hub_id(path) is hub


def test_hub_id_is_taken_as_given_unless_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    # Not checked here: a wrong id fails when its engine starts.
    assert locate_model("some-org/not-downloaded") == "some-org/not-downloaded"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelPathError, match="HF_HUB_OFFLINE"):
        locate_model("some-org/not-downloaded")


def write_model_config(folder: Path, **fields: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", **fields}))
    return folder


def test_model_context_length_reads_config_json(tmp_path: Path) -> None:
    folder = write_model_config(tmp_path / "m", max_position_embeddings=2048)
    assert model_context_length("m", str(folder)) == (2048, str(folder / "config.json"))
    text_config = {"max_position_embeddings": 1024, "n_positions": 512}
    nested = write_model_config(tmp_path / "vl", text_config=text_config)
    assert model_context_length("vl", str(nested))[0] == 512  # the smallest, as vLLM takes it
    scaled = write_model_config(tmp_path / "rope", max_position_embeddings=4096, rope_scaling={"factor": 4.0})
    assert model_context_length("rope", str(scaled)) is None  # vLLM may allow more: not judged here
    assert model_context_length("none", str(tmp_path / "absent")) is None
    assert model_context_length("hub", "some-org/not-downloaded") is None


def test_builtin_context_length_once_converted() -> None:
    folder = ensure_builtin_model(NAME)
    assert model_context_length(NAME, None) == (8192, str(folder / "config.json"))


def test_count_parameters_estimates_from_config_without_weights(tmp_path: Path) -> None:
    shutil.copy(ensure_builtin_model(NAME) / "config.json", tmp_path / "config.json")
    assert count_parameters(str(tmp_path)) == ESTIMATE


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    gguf = gguf_path()
    if not gguf.is_file():
        pytest.skip(f"no GGUF at {gguf}: it is kept there once ensure_builtin_model has downloaded it")
    out = tmp_path_factory.mktemp("converted") / NAME
    assert convert_gguf_to_safetensors(gguf, out) == out
    yield out
    shutil.rmtree(out, ignore_errors=True)  # ~0.5 GB


def test_convert_gguf_to_safetensors(converted: Path) -> None:
    sample = assert_float32_safetensors_folder(converted)
    assert count_parameters(str(converted)) == PARAMS
    assert (converted / "tokenizer.json").is_file()
    assert (converted / "tokenizer_config.json").is_file()
    # Dequantisation is deterministic: the same weights as the cached copy, bit for bit.
    cached = assert_float32_safetensors_folder(ensure_builtin_model(NAME))
    for key, value in sample.items():
        np.testing.assert_array_equal(value, cached[key])
