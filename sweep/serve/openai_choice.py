"""The mapping of a chat-completions request to the ``Choice`` of the sweep that answers it: chosen
by the compute-optimal table for a ``flops_budget``, else built from the request's ``strategy``,
``method``, ``score``, ``budget``, ``reward_model`` and ``dataset``, each checked against what the
sweep ran; and the refusal of a temperature, top_p or token cap other than the chosen strategy's.

What it leaves out: parsing the body (``sweep/serve/openai_request.py``) and running the choice
(``sweep/serve/solve.py``, called from ``sweep/serve/openai_api.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pandas as pd

from sweep.config import SweepConfig
from sweep.inference.scorers import AGGREGATIONS
from sweep.inference.strategies import STRATEGIES
from sweep.serve.openai_request import ChatCompletionRequest, OpenAIError
from sweep.serve.solve import ORACLE_METHODS, Choice, NoChoice, choose, generation_cap

DEFAULT_SCORE = "last"  # the step-score aggregation of weighted and best_of_n when none is named
METHODS = {"majority": "majority_vote", "weighted": "weighted_vote", "best_of_n": "best_of_n"}


def resolve_choice(
    request: ChatCompletionRequest,
    *,
    config: SweepConfig,
    accuracy: Callable[[], pd.DataFrame],
    model_params: Callable[[str], int],
) -> Choice:
    """The configuration of the sweep that answers ``request``: chosen by the table for a
    ``flops_budget``, else built from the named strategy (greedy by default)."""
    models = [m.name for m in config.models]
    if request.model not in models:
        raise OpenAIError(
            f"The model {request.model!r} does not exist; the sweep's models: {', '.join(models)}",
            param="model",
            code="model_not_found",
            status=404,
        )
    datasets = [d.name for d in config.datasets]
    if request.dataset is not None and request.dataset not in datasets:
        raise OpenAIError(f"unknown dataset {request.dataset!r}; the sweep's: {', '.join(datasets)}", param="dataset")
    if request.flops_budget is not None:
        table = accuracy()
        try:
            return choose(
                table[table["model"] == request.model], flops_budget=request.flops_budget, dataset=request.dataset
            )
        except NoChoice as exc:
            raise OpenAIError(f"{exc} for {request.model}", param="flops_budget", code="no_configuration_fits") from None
    if request.dataset is None and len(datasets) > 1:
        raise OpenAIError(f"name the dataset whose prompt to use: one of {', '.join(datasets)}", param="dataset")
    dataset = request.dataset or datasets[0]
    entry = _strategy_entry(request, config)
    method = _method(request, entry)
    n = _budget(request, entry)
    measured = _measured(accuracy(), model=request.model, dataset=dataset, strategy=entry.label, method=method, n=n)
    return Choice(
        model=request.model,
        model_params=model_params(request.model),
        dataset=dataset,
        strategy=entry.label,
        method=method,
        n=n,
        accuracy=measured[0],
        flops_per_problem=measured[1],
    )


def _strategy_entry(request: ChatCompletionRequest, config: SweepConfig) -> Any:
    """The ``strategies:`` entry the request names (label first, then name), with its reward model."""
    wanted = request.strategy or "greedy"
    labels = [s.label for s in config.strategies]
    entries = [s for s in config.strategies if s.label == wanted] or [s for s in config.strategies if s.name == wanted]
    if not entries:
        if wanted not in STRATEGIES:
            known = ", ".join(sorted(STRATEGIES))
            raise OpenAIError(
                f"strategy {wanted!r} is not available (strategies: {known}); the sweep ran: {', '.join(labels)}",
                param="strategy",
            )
        raise OpenAIError(f"the sweep did not run {wanted!r}; it ran: {', '.join(labels)}", param="strategy")
    if request.reward_model is not None:
        names = [r.name for r in config.reward_models]
        if request.reward_model not in names:
            raise OpenAIError(
                f"unknown reward model {request.reward_model!r}; the sweep's: {', '.join(names) or 'none'}",
                param="reward_model",
            )
        matching = [s for s in entries if s.reward_model == request.reward_model]
        if not matching:
            used = sorted({str(s.reward_model) for s in entries})
            raise OpenAIError(
                f"the sweep ran {wanted} with reward model {', '.join(used)}, not {request.reward_model}",
                param="reward_model",
            )
        entries = matching
    if len(entries) > 1:
        raise OpenAIError(
            f"the sweep ran {wanted} as {', '.join(s.label for s in entries)}: name one label", param="strategy"
        )
    return entries[0]


def _method(request: ChatCompletionRequest, entry: Any) -> str:
    """The method name of the accuracy table (``majority_vote``, ``weighted_vote_last`` ...)."""
    if entry.name == "greedy":
        if request.method not in (None, "greedy") or request.score is not None:
            raise OpenAIError("greedy draws one sample: no method or score applies", param="method")
        return "greedy"
    wanted = request.method or "majority"
    base = METHODS.get(wanted, wanted)
    if base == "majority_vote":
        if request.score is not None:
            raise OpenAIError("majority voting reads no score; omit score", param="score")
        return base
    if base in ("weighted_vote", "best_of_n"):
        method = f"{base}_{request.score or DEFAULT_SCORE}"
    elif any(wanted == f"{b}_{a}" for b in ("weighted_vote", "best_of_n") for a in AGGREGATIONS) and not request.score:
        method = wanted
    else:
        known = ", ".join(METHODS) + " (with score: " + ", ".join(AGGREGATIONS) + ")"
        oracle = " (an oracle: it reads the reference answer)" if wanted in ORACLE_METHODS else ""
        raise OpenAIError(f"unknown method {wanted!r}{oracle}; methods: {known}", param="method")
    if entry.reward_model is None:
        raise OpenAIError(
            f"{method} reads a reward model's scores, and the sweep ran {entry.label} without one", param="method"
        )
    return method


def _budget(request: ChatCompletionRequest, entry: Any) -> int:
    """What ``Choice.n`` carries: for sampling, any sample count up to the sweep's n_max (``solve``
    draws that many); for every other strategy (greedy, a tree search's budget, adaptive's n_max)
    one of the entry's ``n_values``, since ``solve`` runs the entry as the sweep configured it."""
    values = entry.n_values
    if request.budget is None:
        return max(values)
    if entry.drawing(request.budget) is None:  # the strategy declares what it can draw
        raise OpenAIError(
            f"{entry.label} ran with budget {', '.join(map(str, values))} in this sweep, not {request.budget}",
            param="budget",
        )
    if request.budget > max(values):  # a strategy that draws any count (sampling): what was measured
        raise OpenAIError(
            f"{entry.label} draws at most {max(values)} samples in this sweep, not {request.budget}",
            param="budget",
        )
    return request.budget


def _measured(table: pd.DataFrame, **key: Any) -> tuple[float, float]:
    """The sweep's accuracy and FLOPs per problem of one configuration; NaN where it has no row."""
    if table.empty:
        return math.nan, math.nan
    rows = table
    for column, value in key.items():
        rows = rows[rows[column] == value]
    if rows.empty:
        return math.nan, math.nan
    return float(rows["accuracy"].iloc[0]), float(rows["flops_per_problem"].iloc[0])


def check_sampling(request: ChatCompletionRequest, *, settings: Any, config: SweepConfig, choice: Choice) -> None:
    """400 when the request asks for a temperature, top_p or token cap other than the chosen
    strategy's: the answer would not be the configuration the sweep measured."""
    for param in ("temperature", "top_p"):
        asked, used = getattr(request, param), getattr(settings, param)
        if asked is not None and not math.isclose(asked, used):
            raise OpenAIError(
                f"{choice.strategy} runs at {param} {used:g} (the sweep's setting); omit {param} or pass {used:g}",
                param=param,
            )
    cap = generation_cap(config, choice)
    for param in ("max_tokens", "max_completion_tokens"):
        asked = getattr(request, param)
        if asked is not None and asked < cap:
            raise OpenAIError(
                f"{choice.strategy} generates up to {cap} tokens (the sweep's setting); omit {param} or pass >= {cap}",
                param=param,
            )
