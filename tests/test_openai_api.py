"""The OpenAI-compatible routes through the official ``openai`` client, against the Serve app on
loopback with the real CPU model: greedy, majority vote, best-of-n with the PRM, a FLOPs budget,
usage that adds up, and the 400s in OpenAI's error format."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from serve_app import QUESTION, ROOT, deploy, run_tiny_sweep, serve_on_loopback

MODEL = "smollm2-135m-instruct"
PRM = {  # the policy model as its own step-token PRM: the same engine actor serves both
    "name": "smol-prm",
    "path": MODEL,
    "engine": {"max_model_len": 1024},
    "env": {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"},
    "tag": "\nIs this step correct?",
    "good": " Yes",
    "bad": " No",
    "delimiter": "\n",
}


def score_sampling_with_the_prm(raw: dict[str, Any]) -> None:
    raw["reward_models"] = [PRM]
    raw["strategies"][1]["reward_model"] = "smol-prm"


@pytest.fixture(scope="module")
def sweep_output(engine_pool: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """tiny.yaml with its sampling scored by a PRM, run once on the real engine."""
    return run_tiny_sweep(tmp_path_factory.mktemp("openai"), edit=score_sampling_with_the_prm)


@pytest.fixture(scope="module")
def base_url(sweep_output: Any) -> Iterator[str]:
    with serve_on_loopback() as port:
        yield deploy(sweep_output.output, port=port, name="sweep-openai")


@pytest.fixture(scope="module")
def client(base_url: str) -> Any:
    import openai

    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=600)


def ask(client: Any, **extra: Any) -> Any:
    return client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": QUESTION}], extra_body=extra or None
    )


def check_usage(completion: Any) -> dict[str, Any]:
    """Usage that adds up: prompt + completion = total, FLOPs = policy + reward; its extra fields."""
    usage = completion.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    extra = usage.model_extra
    assert extra["policy_flops"] > 0 and extra["reward_flops"] >= 0
    assert math.isclose(extra["flops"], extra["policy_flops"] + extra["reward_flops"])
    assert extra["reward_tokens"] >= 0
    return extra


def test_models_lists_the_policy_models(client: Any) -> None:
    models = client.models.list()
    assert [m.id for m in models.data] == [MODEL]
    assert models.data[0].object == "model"


def test_greedy(client: Any) -> None:
    completion = ask(client)
    assert completion.object == "chat.completion" and completion.model == MODEL
    (choice,) = completion.choices
    assert choice.message.role == "assistant" and isinstance(choice.message.content, str)
    sweep = completion.model_extra["sweep"]
    assert (sweep["strategy"], sweep["method"], sweep["n"], sweep["samples"]) == ("greedy", "greedy", 1, 1)
    assert choice.message.content == (sweep["answer"] or "")
    assert sweep["accuracy"] is not None  # the sweep measured this configuration
    extra = check_usage(completion)
    assert extra["reward_tokens"] == 0 and extra["reward_flops"] == 0
    # One request: the greedy completion is at most the sweep's cap.
    assert completion.usage.completion_tokens <= 48


def test_sampling_with_majority_vote(client: Any) -> None:
    greedy = ask(client)
    completion = ask(client, strategy="sampling", method="majority", budget=4)
    sweep = completion.model_extra["sweep"]
    assert (sweep["strategy"], sweep["method"], sweep["n"], sweep["samples"]) == ("sampling", "majority_vote", 4, 4)
    extra = check_usage(completion)
    assert extra["reward_tokens"] == 0  # majority voting reads no score
    # The prompt is read once for the four samples (one request), as for greedy.
    assert completion.usage.prompt_tokens == greedy.usage.prompt_tokens
    assert completion.usage.completion_tokens <= 4 * 48


def test_best_of_n_counts_the_reward_model(client: Any) -> None:
    completion = ask(client, strategy="sampling", method="best_of_n", score="min", budget=2)
    sweep = completion.model_extra["sweep"]
    assert (sweep["method"], sweep["samples"]) == ("best_of_n_min", 2)
    extra = check_usage(completion)
    assert extra["reward_tokens"] > 0 and extra["reward_flops"] > 0


def test_flops_budget_takes_the_tables_choice(client: Any, sweep_output: Any) -> None:
    from analysis.estimators import compute_accuracy
    from analysis.views import connect
    from sweep.serve.solve import choose

    budget = 1e15
    table = compute_accuracy(connect(sweep_output.output), resamples=100, include_reward_flops=True)
    expected = choose(table, flops_budget=budget)
    completion = ask(client, flops_budget=budget)
    sweep = completion.model_extra["sweep"]
    assert (sweep["strategy"], sweep["method"], sweep["n"]) == (expected.strategy, expected.method, expected.n)
    assert sweep["flops_per_problem"] <= budget
    check_usage(completion)

    import openai

    with pytest.raises(openai.BadRequestError, match="no configuration fits"):
        ask(client, flops_budget=1.0)


@pytest.mark.parametrize(
    ("kwargs", "param", "message"),
    [
        ({"stream": True}, "stream", "streaming is not supported"),
        ({"n": 2}, "n", "one choice only"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools", "tools"),
        ({"logprobs": True}, "logprobs", "logprobs are not supported"),
        ({"response_format": {"type": "json_object"}}, "response_format", "only response_format"),
        ({"temperature": 0.3}, "temperature", "greedy runs at temperature 0"),
        ({"max_tokens": 8}, "max_tokens", "generates up to 48 tokens"),
        ({"extra_body": {"strategy": "adaptive"}}, "strategy", "adaptive"),
        ({"extra_body": {"strategy": "rebase"}}, "strategy", "it ran: greedy, sampling"),
        ({"extra_body": {"strategy": "sampling", "reward_model": "nope"}}, "reward_model", "smol-prm"),
        ({"extra_body": {"method": "weighted"}}, "method", "greedy draws one sample"),
        ({"extra_body": {"strategy": "sampling", "budget": 99}}, "budget", "at most 4 samples"),
        ({"extra_body": {"flops_budget": 1e15, "strategy": "greedy"}}, "flops_budget", "do not also pass"),
        ({"extra_body": {"top_k": 5}}, "top_k", "Unrecognized request argument"),
        (
            {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}]},
            "messages.0",
            "send one user message",
        ),
    ],
)
def test_unsupported_parameters_are_400s(client: Any, kwargs: dict[str, Any], param: str, message: str) -> None:
    import openai

    body = {"model": MODEL, "messages": [{"role": "user", "content": QUESTION}], **kwargs}
    with pytest.raises(openai.BadRequestError, match=message) as caught:
        client.chat.completions.create(**body)
    error = caught.value.body
    assert error["type"] == "invalid_request_error" and error["param"] == param, error
    assert set(error) == {"message", "type", "param", "code"}


def test_unknown_model_is_a_404(client: Any) -> None:
    import openai

    with pytest.raises(openai.NotFoundError, match=MODEL):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": QUESTION}])


def test_errors_are_in_openais_format_over_raw_http(base_url: str) -> None:
    """Without the client: the status and the exact shape of the body, for a bad JSON body too."""
    for data in (json.dumps({"model": MODEL, "messages": [], "stream": True}).encode(), b"{not json"):
        request = urllib.request.Request(
            f"{base_url}/v1/chat/completions", data=data, headers={"Content-Type": "application/json"}
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=60)
        assert caught.value.code == 400
        body = json.loads(caught.value.read())
        assert set(body) == {"error"} and body["error"]["type"] == "invalid_request_error"


# --- the mapping, without an engine ----------------------------------------------------------------


def resolve(config_name: str, **fields: Any) -> Any:
    """The Choice a request with ``fields`` maps to on a grid of tests/configs, on an empty table."""
    import pandas as pd

    from sweep.config import load_config
    from sweep.serve.openai_choice import resolve_choice
    from sweep.serve.openai_request import parse_request

    config = load_config(ROOT / "tests" / "configs" / config_name)
    request = parse_request({"model": MODEL, "messages": [{"role": "user", "content": QUESTION}], **fields})
    return resolve_choice(request, config=config, accuracy=pd.DataFrame, model_params=lambda name: 135_000_000)


def test_strategy_fields_map_to_a_choice() -> None:
    greedy = resolve("tiny.yaml")
    assert (greedy.strategy, greedy.method, greedy.n, greedy.dataset) == ("greedy", "greedy", 1, "arithmetic")
    assert math.isnan(greedy.accuracy)  # no row in the (empty) table
    sampled = resolve("tiny.yaml", strategy="sampling")
    assert (sampled.method, sampled.n) == ("majority_vote", 4)  # the sweep's n_max by default
    assert resolve("tiny.yaml", strategy="sampling", budget=3).n == 3
    rebase = resolve("tree.yaml", strategy="rebase", method="weighted", score="prod")
    assert (rebase.method, rebase.n) == ("weighted_vote_prod", 4)
    mcts = resolve("tree.yaml", strategy="mcts", method="best_of_n", reward_model="smol-prm", budget=3)
    assert (mcts.method, mcts.n) == ("best_of_n_last", 3)


@pytest.mark.parametrize(
    ("config_name", "fields", "param", "message"),
    [
        ("tiny.yaml", {"strategy": "sampling", "method": "weighted"}, "method", "without one"),
        ("tiny.yaml", {"strategy": "sampling", "method": "pass_at_n"}, "method", "an oracle"),
        ("tiny.yaml", {"strategy": "sampling", "score": "min"}, "score", "reads no score"),
        ("tree.yaml", {"strategy": "rebase", "budget": 3}, "budget", "budget 4 in this sweep, not 3"),
        ("tiny.yaml", {"budget": 2}, "budget", "greedy ran with budget 1"),
        ("tiny.yaml", {"strategy": "sampling", "budget": 5}, "budget", "draws at most 4 samples in this sweep, not 5"),
        ("tree.yaml", {"strategy": "rebase", "reward_model": "other"}, "reward_model", "smol-prm"),
        ("tree.yaml", {}, "strategy", "it ran: rebase, mcts, beam"),
        ("tiny.yaml", {"strategy": "adaptive"}, "strategy", "'adaptive'"),
        ("tiny.yaml", {"dataset": "gsm8k"}, "dataset", "arithmetic"),
    ],
)
def test_mapping_refusals_name_what_exists(
    config_name: str, fields: dict[str, Any], param: str, message: str
) -> None:
    from sweep.serve.openai_request import OpenAIError

    with pytest.raises(OpenAIError, match=message) as caught:
        resolve(config_name, **fields)
    assert caught.value.status == 400 and caught.value.param == param
