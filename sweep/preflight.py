"""Pre-flight checks: what a launch validates before Ray or any engine starts.

Every dataset is loaded and prompted (``DatasetError`` names the dataset or file), and every
token cap is checked against the context of each engine that serves it (``ConfigError`` names
the field). The launcher runs these first, so a user error exits 2 with one message.

Left out: parsing and validating the grid file itself (``sweep.config``), and the output
folder's checks (``sweep.results.store``).
"""

from __future__ import annotations

from typing import Any

from sweep.config import ConfigError, SweepConfig
from sweep.data.problems import load_problems
from sweep.data.prompting import PromptedProblem, prompt_problems


def prepare_problems(config: SweepConfig) -> dict[str, list[PromptedProblem]]:
    """Load and prompt every dataset (raises DatasetError on user errors)."""
    return {d.name: prompt_problems(load_problems(d), d) for d in config.datasets}


def check_token_caps(config: SweepConfig, *, cluster_has_gpus: bool | None) -> None:
    """Raise ConfigError when a token cap cannot fit the context of an engine that serves it.

    vLLM would otherwise stop such a sample at the context's end, silently. A cap must leave
    room for a prompt (cap < context): ``generation.max_tokens`` for flat strategies, a tree
    search's own ``max_tokens`` and ``step_max_tokens``, against each policy's context and the
    context of the reward model that reads the same text. A context is the entry's
    ``engine.max_model_len``, else the CPU engine default on a CPU engine, else (and at most)
    what the model's config.json declares, when it is on this machine. With ``device: auto``
    the device is unknown until Ray is up (``cluster_has_gpus`` None): call again then.
    """
    # Reward models with their own engine; policy scorers read the policy's.
    engines = {r.name: r for r in config.reward_engines()}
    contexts: dict[tuple[str, str], tuple[int, str] | None] = {}
    for strategy in config.strategies:
        caps = strategy.token_caps(config.generation)
        readers: list[tuple[str, Any]] = [("models", m) for m in config.models]
        prm = engines.get(strategy.reward_model or "")
        if prm is not None:
            readers.append(("reward_models", prm))
        for section, model in readers:
            key = (section, model.name)
            if key not in contexts:
                contexts[key] = _context_length(section, model, cluster_has_gpus=cluster_has_gpus)
            if contexts[key] is None:
                continue
            length, source = contexts[key]
            for field_name, cap in caps.items():
                if cap >= length:
                    raise ConfigError(
                        f"{field_name}: {cap} tokens and a prompt do not fit the context of "
                        f"{section}.{model.name} ({length} tokens, from {source}); lower {field_name}, "
                        f"or raise {section}.{model.name}.engine.max_model_len if the model allows"
                    )


def _context_length(section: str, model: Any, *, cluster_has_gpus: bool | None) -> tuple[int, str] | None:
    """A model entry's context in tokens and where that number comes from; None when unknown yet."""
    from actors.models import model_context_length

    given = model.engine.get("max_model_len")
    if isinstance(given, int) and not isinstance(given, bool) and given > 0:
        return given, f"{section}.{model.name}.engine.max_model_len"
    # The device rule of actors.spec.resolve_engine_spec: auto is a GPU when the cluster has one.
    device = model.device
    if device == "auto":
        device = None if cluster_has_gpus is None else "gpu" if cluster_has_gpus else "cpu"
    found: list[tuple[int, str]] = []
    if device == "cpu":
        from actors.spec import CPU_ENGINE_DEFAULTS

        default = int(CPU_ENGINE_DEFAULTS["max_model_len"])
        found.append((default, "the CPU engine default in actors/spec.py"))
    declared = model_context_length(model.name, model.path)
    if declared is not None:
        found.append((declared[0], declared[1]))
    return min(found) if found else None
